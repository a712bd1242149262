"""Aider adapter: stdout, analytics log and LLM history -> events, and the command it builds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from forgebot.agents.aider import (
    ANALYTICS_ARTIFACT,
    MODEL_SETTINGS,
    REPLIES_ARTIFACT,
    AiderAdapter,
    final_reply,
    newest_run,
)
from forgebot.agents.base import AgentEvent, AgentUnavailable, EventKind, RunRequest, RunSummary
from forgebot.core.models import AgentProfile, Price, Usage

SAMPLES = Path(__file__).parent / "samples"
HOME = "/state/homes/attempt-3"
PROMPT_FILE = f"{HOME}/prompt.md"
NO_ANSWER = "aider got no answer from the model (no message_send in its analytics log)"

# Hand-written in the shape of what aider 0.86.2 prints with --no-pretty for one SEARCH/REPLACE edit.
STDOUT = """\
Aider v0.86.2
Model: openai/fake-model with diff edit format
Git repo: .git with 1 files

I will create the file.

hello.txt
```
<<<<<<< SEARCH
=======
Hello from the fake LLM
>>>>>>> REPLACE
```

Tokens: 120 sent, 30 received. Cost: $0.00081 message, $0.00081 session.
Applied edit to hello.txt"""


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


# Hand-written in the format of aider 0.86.2's --llm-history-file: two replies, then a call that failed.
REPLIES = sample("aider-llm-history.txt")


def analytics(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(
        json.dumps({"event": name, "properties": props, "user_id": "u", "time": 1}) + "\n" for name, props in events
    )


def send(prompt: int, completion: int, cost: float, total: float) -> tuple[str, dict[str, Any]]:
    props = {"prompt_tokens": prompt, "completion_tokens": completion, "cost": cost, "total_cost": total}
    return ("message_send", props)


def run(
    lines: Iterable[str], artifacts: Mapping[str, str] | None = None, exit_code: int | None = 0
) -> tuple[list[AgentEvent], RunSummary]:
    parser = AiderAdapter().parser()
    events = [event for line in lines for event in parser.feed(line)]
    events += list(parser.finish(exit_code, artifacts or {}))
    summary = RunSummary()
    for event in events:
        summary.add(event)
    return events, summary


def progress(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.PROGRESS]


def test_sample_analytics_log_counts_only_the_newest_run() -> None:
    artifacts = {ANALYTICS_ARTIFACT: sample("aider-analytics-sample.jsonl"), REPLIES_ARTIFACT: REPLIES}
    events, summary = run(STDOUT.splitlines(), artifacts)
    assert summary.error is None
    assert summary.usage == Usage(tokens_in=120, tokens_out=30, cost_usd=0.00081, turns=1)
    assert summary.final_message == "Added the notes."
    assert summary.session_id is None
    assert progress(events) == [
        "Aider v0.86.2",
        "Model: openai/fake-model with diff edit format",
        "Git repo: .git with 1 files",
        "I will create the file.",
        "hello.txt",
        "Tokens: 120 sent, 30 received. Cost: $0.00081 message, $0.00081 session.",
        "Applied edit to hello.txt",
    ]


def test_several_llm_calls_add_up_tokens_and_keep_the_running_cost() -> None:
    log = analytics(("launched", {}), send(100, 10, 0.5, 0.5), send(200, 20, 0.25, 0.75), ("exit", {"reason": "x"}))
    _, summary = run([], {ANALYTICS_ARTIFACT: log})
    assert summary.error is None
    assert summary.usage == Usage(tokens_in=300, tokens_out=30, cost_usd=0.75, turns=2)


def test_zero_cost_means_unknown_price_not_free() -> None:
    _, summary = run([], {ANALYTICS_ARTIFACT: analytics(("launched", {}), send(120, 30, 0, 0))})
    assert summary.usage == Usage(tokens_in=120, tokens_out=30, cost_usd=None, turns=1)


def test_no_message_send_is_an_error_naming_the_api_failure() -> None:
    log = analytics(("launched", {}), ("message_send_starting", {}), ("exit", {"reason": "Completed --message-file"}))
    lines = [
        "Aider v0.86.2",
        "litellm.BadRequestError: OpenAIException - Error code: 400",
        "The API provider has refused the request due to a safety policy",
    ]
    events, summary = run(lines, {ANALYTICS_ARTIFACT: log}, exit_code=0)
    assert summary.error == f"{NO_ANSWER}: litellm.BadRequestError: OpenAIException - Error code: 400"
    assert summary.usage == Usage()
    assert [event.kind for event in events].count(EventKind.ERROR) == 1


def test_an_earlier_runs_answer_does_not_hide_a_failed_follow_up() -> None:
    log = sample("aider-analytics-sample.jsonl") + analytics(
        ("launched", {}), ("exit", {"reason": "Message file not found"})
    )
    _, summary = run([], {ANALYTICS_ARTIFACT: log})
    assert summary.error == f"{NO_ANSWER}; it exited with: Message file not found"
    assert summary.usage == Usage()


def test_error_line_after_an_unbalanced_fence_is_still_caught() -> None:
    _, summary = run(["```", "litellm.APIConnectionError: connection refused"])
    assert summary.error == f"{NO_ANSWER}: litellm.APIConnectionError: connection refused"


def test_empty_output_and_no_files_reports_no_answer() -> None:
    events, summary = run([], {})
    assert summary.error == NO_ANSWER
    assert [event.kind for event in events] == [EventKind.ERROR]


def test_malformed_analytics_lines_are_skipped() -> None:
    log = (
        "not json\n[1]\n"
        + '{"a":' * 100_000
        + "\n"
        + '{"event": 5}\n{"event": "message_send", "properties": "x"}\n'
        + '{"event": "launched"'
    )
    assert newest_run(log) == [("message_send", {})]
    _, summary = run([], {ANALYTICS_ARTIFACT: log})
    assert summary.error is None
    assert summary.usage == Usage(tokens_in=0, tokens_out=0, turns=1)


FIRST_REPLY = "I will create the file.\n\nhello.txt\n```\n<<<<<<< SEARCH\n=======\nHello\n>>>>>>> REPLACE\n```"


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (REPLIES, "Added the notes."),
        (REPLIES.split("TO LLM 2026-12-03T16:51:02")[0], FIRST_REPLY),
        ("", ""),
        ("TO LLM 2026-12-03T16:50:13\n-------\nASSISTANT quoted earlier reply\n", ""),
    ],
)
def test_final_reply_is_the_newest_non_empty_model_reply(log: str, expected: str) -> None:
    assert final_reply(log) == expected


# ---- invocation ----


def profile(**fields: Any) -> AgentProfile:
    return replace(AgentProfile(name="ai", executor="aider"), **fields)


def request(agent: AgentProfile, followup: bool = False) -> RunRequest:
    return RunRequest(agent, "Fix the bug", PROMPT_FILE, "/work/tree", HOME, followup=followup)


COMMON = (
    "--yes-always",
    "--no-check-update",
    "--no-show-model-warnings",
    "--no-pretty",
    "--no-fancy-input",
    "--no-stream",
    "--no-auto-commits",
    "--no-gitignore",
    "--no-detect-urls",
    "--no-analytics",
    "--model-settings-file",
    f"{HOME}/aider-model-settings.yml",
    "--analytics-log",
    f"{HOME}/aider-analytics.jsonl",
    "--llm-history-file",
    f"{HOME}/aider-llm-history.txt",
    "--chat-history-file",
    f"{HOME}/aider-chat-history.md",
    "--input-history-file",
    f"{HOME}/aider-input-history",
)


def test_fresh_invocation_with_the_default_model() -> None:
    adapter = AiderAdapter()
    invocation = adapter.invocation(request(profile()))
    assert invocation.argv == ("aider", "--model", AiderAdapter.default_model, *COMMON, "--message-file", PROMPT_FILE)
    assert invocation.argv[0] == adapter.binary
    assert dict(invocation.env) == {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "1000"}
    # The OpenAI client's retries are off for every model (aider's own retry loop is fixed in its code).
    assert invocation.files == {f"{HOME}/aider-model-settings.yml": MODEL_SETTINGS}
    assert yaml.safe_load(MODEL_SETTINGS) == [{"name": "aider/extra_params", "extra_params": {"max_retries": 0}}]
    assert dict(invocation.artifacts) == {
        ANALYTICS_ARTIFACT: f"{HOME}/aider-analytics.jsonl",
        REPLIES_ARTIFACT: f"{HOME}/aider-llm-history.txt",
    }
    assert invocation.stdin is None
    assert AiderAdapter.ignored_paths == (".aider*",)


def test_base_url_points_litellm_at_the_endpoint_and_describes_the_model() -> None:
    agent = profile(model="fake-model", base_url="http://127.0.0.1:9/v1", price=Price(3.0, 15.0))
    invocation = AiderAdapter().invocation(request(agent))
    metadata_file = f"{HOME}/aider-model-metadata.json"
    assert invocation.argv[:9] == (
        "aider",
        "--model",
        "openai/fake-model",
        "--openai-api-base",
        "http://127.0.0.1:9/v1",
        "--model-metadata-file",
        metadata_file,
        "--edit-format",
        "diff",
    )
    assert set(invocation.files) == {metadata_file, f"{HOME}/aider-model-settings.yml"}
    info = json.loads(invocation.files[metadata_file])["openai/fake-model"]
    assert info["litellm_provider"] == "openai"
    assert info["mode"] == "chat"
    assert info["max_input_tokens"] == 128000
    assert info["input_cost_per_token"] == pytest.approx(3e-06)
    assert info["output_cost_per_token"] == pytest.approx(1.5e-05)


def test_base_url_keeps_an_openai_prefix_and_leaves_prices_out_when_unknown() -> None:
    invocation = AiderAdapter().invocation(request(profile(model="openai/m", base_url="http://h/v1")))
    assert invocation.argv[1:3] == ("--model", "openai/m")
    info = json.loads(invocation.files[f"{HOME}/aider-model-metadata.json"])["openai/m"]
    assert "input_cost_per_token" not in info


def test_base_url_without_model_is_refused_with_a_clear_message() -> None:
    message = "agent 'ai': executor 'aider' needs `model` when base_url is set"
    with pytest.raises(AgentUnavailable, match=re.escape(message)):
        AiderAdapter().invocation(request(profile(base_url="http://h/v1")))


def test_followup_restores_the_chat_history() -> None:
    # Aider has no session ids: any follow-up, with or without one stored, re-reads the chat history.
    invocation = AiderAdapter().invocation(request(profile(model="anthropic/claude-haiku-4-5"), followup=True))
    assert invocation.argv[-3:] == ("--restore-chat-history", "--message-file", PROMPT_FILE)
    assert "--restore-chat-history" not in AiderAdapter().invocation(request(profile())).argv


def test_profile_args_come_before_the_message_file() -> None:
    invocation = AiderAdapter().invocation(request(profile(args=("--map-tokens", "0"))))
    assert invocation.argv[-4:] == ("--map-tokens", "0", "--message-file", PROMPT_FILE)


def test_no_secret_from_profile_env_is_copied() -> None:
    secrets = {"OPENAI_API_KEY": "sk-secret-1", "ANTHROPIC_API_KEY": "sk-secret-2"}
    invocation = AiderAdapter().invocation(request(profile(env=secrets, model="m", base_url="http://h/v1")))
    exposed = [*invocation.env, *invocation.env.values(), *invocation.argv, *invocation.files.values()]
    assert not [value for value in exposed if "secret" in value]
    assert set(AiderAdapter.credential_env) >= set(secrets)

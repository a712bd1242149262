"""Copilot adapter: recorded JSONL output and usage file -> events, and the command it builds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from forgebot.agents.base import AgentEvent, AgentUnavailable, EventKind, RunRequest, RunSummary
from forgebot.agents.copilot import USAGE_ARTIFACT, CopilotAdapter, usage_from_file
from forgebot.core.models import AgentProfile, Usage

SAMPLES = Path(__file__).parent / "samples"
SESSION = "fa839e05-499f-4d4a-beec-61ccbf09478e"
HOME = "/state/homes/attempt-7"
USAGE_FILE = f"{HOME}/copilot-usage.json"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def run(
    lines: Iterable[str], artifacts: Mapping[str, str] | None = None, exit_code: int | None = 0
) -> tuple[list[AgentEvent], RunSummary]:
    parser = CopilotAdapter().parser()
    events = [event for line in lines for event in parser.feed(line)]
    events += list(parser.finish(exit_code, artifacts or {}))
    summary = RunSummary()
    for event in events:
        summary.add(event)
    return events, summary


def progress(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.PROGRESS]


def line(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def test_sample_run_with_usage_file() -> None:
    events, summary = run(
        sample("copilot-json-sample.jsonl").splitlines(), {USAGE_ARTIFACT: sample("copilot-usage-output-file.json")}
    )
    assert summary.error is None
    assert summary.session_id == SESSION
    assert summary.final_message == "Done: wrote the file."
    assert summary.usage == Usage(tokens_in=480, tokens_out=120, cache_read=0, cache_write=0, turns=2)
    assert progress(events) == ["create: /tmp/exp/copilot-repo/hello.txt", "Done: wrote the file."]
    assert summary.progress == "Done: wrote the file."


def test_sample_run_without_usage_file_has_turns_but_no_tokens() -> None:
    _, summary = run(sample("copilot-json-sample.jsonl").splitlines())
    assert summary.error is None
    assert summary.usage == Usage(turns=2)


def test_stderr_noise_between_events_is_progress_not_error() -> None:
    lines = sample("copilot-json-sample.jsonl").splitlines()
    lines.insert(3, "npm warn something harmless")
    lines.insert(0, "")
    events, summary = run(lines)
    assert summary.error is None
    assert "npm warn something harmless" in progress(events)
    assert "" not in progress(events)


@pytest.mark.parametrize(
    ("error_data", "expected"),
    [
        ({"errorType": "query", "statusCode": 400}, "query error (HTTP 400)"),
        (
            {"errorType": "authentication", "statusCode": 401, "message": "bad key"},
            "authentication error (HTTP 401): bad key",
        ),
        ({}, "session error"),
    ],
)
def test_session_error_is_reported(error_data: dict[str, object], expected: str) -> None:
    lines = [
        line("assistant.turn_start", data={"turnId": "0"}),
        line("session.error", data=error_data),
        line("result", sessionId="s-1", exitCode=1, usage={"premiumRequests": 0}),
    ]
    _, summary = run(lines, exit_code=1)
    assert summary.error == expected
    assert summary.session_id == "s-1"
    assert summary.final_message is None


def test_nonzero_result_exit_code_is_an_error_even_with_a_clean_exit() -> None:
    lines = [
        line("assistant.message", data={"content": "Half done\nmore", "toolRequests": []}),
        line("result", sessionId="s-2", exitCode=1),
    ]
    events, summary = run(lines, exit_code=0)
    assert summary.error == "copilot reported exit code 1"
    assert summary.final_message == "Half done\nmore"
    assert progress(events) == ["Half done"]


def test_empty_output_reports_no_result() -> None:
    events, summary = run([], exit_code=0)
    assert summary.error == "copilot ended without a final result"
    assert [event.kind for event in events] == [EventKind.ERROR]


def test_missing_result_names_the_last_stderr_line() -> None:
    lines = [line("assistant.turn_start", data={}), "Error: No authentication information found."]
    _, summary = run(lines, exit_code=1)
    assert summary.error == "copilot ended without a final result: Error: No authentication information found."


def test_malformed_and_odd_json_lines_never_raise() -> None:
    lines = [
        '{"type": "result", "sessionId": "cut-off',
        "[1, 2, 3]",
        "42",
        '{"a":' * 100_000,
        line("assistant.message", data="not an object"),
        line("tool.execution_start", data={"toolName": "bash", "arguments": {"command": "npm test\nnpm run lint"}}),
        line("tool.execution_start", data={"arguments": {"path": 7}}),
        line("some.future.event", data={"x": 1}),
    ]
    events, summary = run(lines)
    noise = ['{"type": "result", "sessionId": "cut-off', "[1, 2, 3]", "42", '{"a":' * 40]
    assert progress(events) == [*noise, "bash: npm test", "tool"]
    assert summary.session_id is None
    assert summary.error == "copilot ended without a final result: " + '{"a":' * 40


def test_usage_file_sums_models_and_tolerates_junk() -> None:
    document = {
        "modelMetrics": {
            "a": {"usage": {"inputTokens": 10, "outputTokens": 2, "cacheReadTokens": 5}},
            "b": {"usage": {"inputTokens": 1, "outputTokens": 1, "cacheWriteTokens": True}},
            "c": "junk",
        }
    }
    assert usage_from_file(json.dumps(document)) == Usage(tokens_in=11, tokens_out=3, cache_read=5)
    assert usage_from_file("{not json") is None
    assert usage_from_file(json.dumps({"modelMetrics": {}})) is None
    assert usage_from_file(None) is None


# ---- invocation ----


def profile(**fields: Any) -> AgentProfile:
    return replace(AgentProfile(name="cp", executor="copilot"), **fields)


def request(agent: AgentProfile, resume: str | None = None, prompt: str = "Fix the bug") -> RunRequest:
    return RunRequest(agent, prompt, f"{HOME}/prompt.md", "/work/tree", HOME, resume)


def test_fresh_invocation_uses_github_auth_and_default_model() -> None:
    adapter = CopilotAdapter()
    invocation = adapter.invocation(request(profile()))
    assert invocation.argv == (
        "copilot",
        "-p",
        "Fix the bug",
        "--allow-all",
        "--no-ask-user",
        "--output-format",
        "json",
        "--usage-output-file",
        USAGE_FILE,
    )
    assert invocation.argv[0] == adapter.binary
    assert dict(invocation.env) == {
        "COPILOT_HOME": f"{HOME}/.copilot",
        "COPILOT_AUTO_UPDATE": "false",
        "COPILOT_MODEL": CopilotAdapter.default_model,
    }
    assert dict(invocation.artifacts) == {USAGE_ARTIFACT: USAGE_FILE}
    assert invocation.files == {}
    assert invocation.stdin is None


def test_base_url_switches_to_byok_offline_mode() -> None:
    invocation = CopilotAdapter().invocation(request(profile(model="fake-model", base_url="http://127.0.0.1:9/v1")))
    assert invocation.env["COPILOT_PROVIDER_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert invocation.env["COPILOT_OFFLINE"] == "true"
    assert invocation.env["COPILOT_MODEL"] == "fake-model"


def test_base_url_without_model_is_refused_with_a_clear_message() -> None:
    message = "agent 'cp': executor 'copilot' needs `model` when base_url is set"
    with pytest.raises(AgentUnavailable, match=re.escape(message)):
        CopilotAdapter().invocation(request(profile(base_url="http://127.0.0.1:9/v1")))


def test_resume_passes_the_session_and_the_new_prompt() -> None:
    invocation = CopilotAdapter().invocation(request(profile(), resume="s-9", prompt="Now add tests"))
    assert invocation.argv[1:3] == ("-p", "Now add tests")
    assert "--resume=s-9" in invocation.argv
    assert "--resume=s-9" not in CopilotAdapter().invocation(request(profile())).argv


def test_profile_args_come_last() -> None:
    invocation = CopilotAdapter().invocation(request(profile(args=("--autopilot", "--add-dir", "/x")), resume="s"))
    assert invocation.argv[-4:] == ("--resume=s", "--autopilot", "--add-dir", "/x")


def test_no_secret_from_profile_env_is_copied() -> None:
    secrets = {"COPILOT_PROVIDER_API_KEY": "sk-secret-1", "GH_TOKEN": "ghp-secret-2"}
    invocation = CopilotAdapter().invocation(request(profile(env=secrets, model="m", base_url="http://127.0.0.1:9/v1")))
    exposed = [*invocation.env, *invocation.env.values(), *invocation.argv]
    assert not [value for value in exposed if "secret" in value]
    assert set(CopilotAdapter.credential_env) >= set(secrets)

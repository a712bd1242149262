"""OpenCode adapter: recorded `opencode run --format json` output -> events, and the command and config it builds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from forgebot.agents.base import Adapter, AgentEvent, AgentUnavailable, EventKind, RunRequest, RunSummary
from forgebot.agents.opencode import OpenCodeAdapter
from forgebot.core.models import AgentProfile, Price, Usage

SAMPLES = Path(__file__).parent / "samples"
HOME = "/state/homes/attempt-5"
WORKDIR = "/state/worktrees/attempt-5"
PROMPT = "# Task: add hello.txt\n\nWork in the current directory."
SECRET = "sk-test-not-to-be-copied"


def sample_lines(name: str) -> list[str]:
    return (SAMPLES / name).read_text(encoding="utf-8").splitlines()


def run(lines: Iterable[str], exit_code: int | None = 0) -> tuple[list[AgentEvent], RunSummary]:
    parser = OpenCodeAdapter().parser()
    events = [event for line in lines for event in parser.feed(line)]
    events += list(parser.finish(exit_code, {}))
    summary = RunSummary()
    for event in events:
        summary.add(event)
    return events, summary


def line(kind: str, **part: object) -> str:
    return json.dumps({"type": kind, "timestamp": 1796316549051, "sessionID": "ses_1", "part": part})


def step_finish(tokens: dict[str, Any], cost: float = 0, reason: str = "stop") -> str:
    return line("step_finish", type="step-finish", reason=reason, tokens=tokens, cost=cost)


def errors(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.ERROR]


def progress(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.PROGRESS]


def request(
    resume: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    args: tuple[str, ...] = (),
    price: Price | None = None,
) -> RunRequest:
    profile = AgentProfile(
        name="opencode",
        executor="opencode",
        model=model,
        base_url=base_url,
        args=args,
        price=price,
        env={"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET},
    )
    return RunRequest(profile, PROMPT, f"{HOME}/prompt.md", WORKDIR, HOME, resume)


def test_sample_run() -> None:
    events, summary = run(sample_lines("opencode-run-json-sample.jsonl"))
    step = Usage(tokens_in=120, tokens_out=30, cache_read=0, cache_write=0, turns=1)
    total = Usage(tokens_in=240, tokens_out=60, cache_read=0, cache_write=0, turns=2)
    assert events == [
        AgentEvent(EventKind.SESSION, "ses_dc330babfffehbK8uq2YkaALvQ"),
        AgentEvent(EventKind.PROGRESS, "write hello.txt"),
        AgentEvent(EventKind.USAGE, usage=step),
        AgentEvent(EventKind.PROGRESS, "Done: wrote the file."),
        AgentEvent(EventKind.USAGE, usage=total),
        AgentEvent(EventKind.MESSAGE, "Done: wrote the file."),
    ]
    # The sample's model had no price: OpenCode says cost 0, which is unknown here, not free.
    assert summary == RunSummary(
        session_id="ses_dc330babfffehbK8uq2YkaALvQ",
        final_message="Done: wrote the file.",
        usage=total,
        progress="Done: wrote the file.",
    )


def test_sample_error_run() -> None:
    events, summary = run(sample_lines("opencode-json-error-sample.jsonl"), exit_code=1)
    assert errors(events) == ["APIError: fake-llm injected error 401"]
    assert summary.session_id == "ses_dc3306fc2ffeCDP5mSb885y3fW"
    assert summary.final_message is None
    assert summary.usage == Usage()


def test_error_without_details_still_reports() -> None:
    events, _ = run([json.dumps({"type": "error", "sessionID": "ses_1", "error": {}})], exit_code=1)
    assert errors(events) == ["opencode reported an error without details"]


def test_no_step_finished_is_an_error() -> None:
    events, summary = run(["Error: ProviderModelNotFoundError", line("step_start", type="step-start")], exit_code=1)
    assert errors(events) == ["opencode ended without finishing a step (exit code 1)"]
    assert summary.session_id == "ses_1"


def test_empty_output_is_an_error() -> None:
    events, _ = run([], exit_code=0)
    assert errors(events) == ["opencode ended without finishing a step (exit code 0)"]


def test_killed_run_leaves_the_cause_to_the_runner() -> None:
    events, _ = run([line("step_start", type="step-start")], exit_code=None)
    assert errors(events) == []


def test_noise_and_malformed_lines_are_ignored() -> None:
    events, summary = run(
        [
            "INFO  service=bus",
            '{"type":"step_finish","part":{"tokens":',
            "null",
            *sample_lines("opencode-run-json-sample.jsonl"),
        ]
    )
    assert summary.error is None
    assert len(events) == 6


def test_costs_reasoning_and_cache_add_up_over_steps() -> None:
    _, summary = run(
        [
            step_finish(
                {"input": 100, "output": 10, "reasoning": 5, "cache": {"read": 50, "write": 20}}, 0.25, "tool-calls"
            ),
            step_finish({"input": 200, "output": 20, "reasoning": 0, "cache": {"read": 70, "write": 0}}, 0.5),
        ]
    )
    assert summary.usage == Usage(tokens_in=300, tokens_out=35, cache_read=120, cache_write=20, cost_usd=0.75, turns=2)


def test_missing_token_fields_stay_unknown() -> None:
    _, summary = run([step_finish({"input": 7})])
    assert summary.usage == Usage(tokens_in=7, turns=1)


def test_final_message_is_the_text_of_the_last_step_with_text() -> None:
    events, summary = run(
        [
            line("step_start", type="step-start"),
            line("text", type="text", text="Let me run the tests."),
            line(
                "tool_use",
                type="tool",
                tool="bash",
                state={
                    "status": "completed",
                    "input": {"command": "npm test", "description": "Runs tests"},
                    "title": "Runs tests",
                },
            ),
            step_finish({"input": 1, "output": 1}, reason="tool-calls"),
            line("step_start", type="step-start"),
            line("text", type="text", text="All tests pass.\nNothing else to do."),
            step_finish({"input": 1, "output": 1}),
        ]
    )
    assert progress(events) == ["Let me run the tests.", "bash: npm test", "All tests pass."]
    assert summary.final_message == "All tests pass.\nNothing else to do."


def test_fresh_invocation_without_base_url() -> None:
    adapter: Adapter = OpenCodeAdapter()
    invocation = adapter.invocation(request())
    assert invocation.argv == (
        "opencode",
        "run",
        "--format",
        "json",
        "-m",
        "anthropic/claude-sonnet-4-5",
        "--dir",
        WORKDIR,
        PROMPT,
    )
    assert set(invocation.env) == {"OPENCODE_CONFIG_CONTENT", "OPENCODE_DISABLE_AUTOUPDATE"}
    config = json.loads(invocation.env["OPENCODE_CONFIG_CONTENT"])
    assert config == {"permission": {"edit": "allow", "bash": "allow"}, "autoupdate": False, "share": "disabled"}
    assert invocation.files == {}
    assert invocation.stdin is None


def test_base_url_defines_a_provider_that_reads_the_key_from_the_environment() -> None:
    invocation = OpenCodeAdapter().invocation(
        request(model="fake-model", base_url="http://127.0.0.1:4010/v1", args=("--agent", "build"), price=Price(3, 15))
    )
    argv = invocation.argv
    assert argv[argv.index("-m") + 1] == "forgebot/fake-model"
    assert argv[-3:] == ("--agent", "build", PROMPT)
    assert invocation.env["OPENCODE_DISABLE_MODELS_FETCH"] == "1"
    config = json.loads(invocation.env["OPENCODE_CONFIG_CONTENT"])
    assert config["provider"] == {
        "forgebot": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "forgebot",
            "options": {"baseURL": "http://127.0.0.1:4010/v1", "apiKey": "{env:OPENAI_API_KEY}"},
            "models": {"fake-model": {"name": "fake-model", "cost": {"input": 3, "output": 15}}},
        }
    }
    assert config["permission"] == {"edit": "allow", "bash": "allow"}
    assert SECRET not in json.dumps([argv, dict(invocation.env), dict(invocation.files)])


def test_resume_continues_the_session() -> None:
    invocation = OpenCodeAdapter().invocation(
        request(resume="ses_dc330babfffehbK8uq2YkaALvQ", args=("--agent", "build"))
    )
    assert invocation.argv[-5:] == ("--session", "ses_dc330babfffehbK8uq2YkaALvQ", "--agent", "build", PROMPT)
    assert invocation.argv[invocation.argv.index("--dir") + 1] == WORKDIR


def test_prompt_starting_with_a_dash_is_not_an_option() -> None:
    invocation = OpenCodeAdapter().invocation(
        RunRequest(AgentProfile(name="o", executor="opencode"), "- fix the bug", "/h/p.md", WORKDIR, "/h")
    )
    assert invocation.argv[-1] == " - fix the bug"


def test_model_without_provider_is_refused_without_base_url() -> None:
    with pytest.raises(AgentUnavailable, match="provider/model"):
        OpenCodeAdapter().invocation(request(model="claude-sonnet-4-5"))
    invocation = OpenCodeAdapter().invocation(request(model="gpt-x", base_url="https://gateway.example/v1"))
    assert "forgebot/gpt-x" in invocation.argv


@pytest.mark.parametrize("model", ["{file:/etc/passwd}", "  "])
def test_model_that_would_reach_into_the_config_is_refused(model: str) -> None:
    with pytest.raises(AgentUnavailable, match="model"):
        OpenCodeAdapter().invocation(request(model=model, base_url="http://127.0.0.1:4010/v1"))


def test_bad_base_url_is_refused() -> None:
    with pytest.raises(AgentUnavailable, match="base_url"):
        OpenCodeAdapter().invocation(request(base_url="http://127.0.0.1:4010/{env:HOME}"))

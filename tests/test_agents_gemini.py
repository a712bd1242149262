"""Gemini adapter: recorded `gemini -o stream-json` output -> events, and the command and settings it builds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from forgebot.agents.base import Adapter, AgentEvent, AgentUnavailable, EventKind, RunRequest, RunSummary
from forgebot.agents.gemini import GeminiAdapter
from forgebot.core.models import AgentProfile, Usage

SAMPLES = Path(__file__).parent / "samples"
HOME = "/state/homes/attempt-4"
WORKDIR = "/state/worktrees/attempt-4"
PROMPT = "# Task: add hello.txt\n\nWork in the current directory."
SECRET = "gemini-test-key-not-to-be-copied"
SESSION = "5b8c8f3b-47a7-40eb-ad38-5e0fd400a71f"


def run(lines: Iterable[str], exit_code: int | None = 0) -> tuple[list[AgentEvent], RunSummary]:
    parser = GeminiAdapter().parser()
    events = [event for line in lines for event in parser.feed(line)]
    events += list(parser.finish(exit_code, {}))
    summary = RunSummary()
    for event in events:
        summary.add(event)
    return events, summary


def line(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, "timestamp": "2026-12-03T16:46:14.703Z", **fields})


def errors(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.ERROR]


def progress(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.PROGRESS]


def request(
    resume: str | None = None, model: str | None = None, base_url: str | None = None, args: tuple[str, ...] = ()
) -> RunRequest:
    profile = AgentProfile(
        name="gemini", executor="gemini", model=model, base_url=base_url, args=args, env={"GEMINI_API_KEY": SECRET}
    )
    return RunRequest(profile, PROMPT, f"{HOME}/prompt.md", WORKDIR, HOME, resume)


STATS = {"total_tokens": 300, "input_tokens": 240, "output_tokens": 60, "cached": 0, "input": 240}


def test_sample_run() -> None:
    lines = (SAMPLES / "gemini-stream-json-sample.jsonl").read_text(encoding="utf-8").splitlines()
    events, summary = run(lines)
    usage = Usage(tokens_in=240, tokens_out=60, cache_read=0)
    assert events == [
        AgentEvent(EventKind.SESSION, SESSION),
        AgentEvent(EventKind.PROGRESS, "write_file hello.txt"),
        AgentEvent(EventKind.PROGRESS, "Done: wrote the file."),
        AgentEvent(EventKind.USAGE, usage=usage),
        AgentEvent(EventKind.MESSAGE, "Done: wrote the file."),
    ]
    assert summary == RunSummary(
        session_id=SESSION, final_message="Done: wrote the file.", usage=usage, progress="Done: wrote the file."
    )


def test_result_with_status_error_is_an_error() -> None:
    error = {"type": "FatalAuthenticationError", "message": "[API Error: 401 Unauthorized]"}
    events, summary = run(
        [line("init", session_id="s-1", model="m"), line("result", status="error", error=error, stats=STATS)],
        exit_code=145,
    )
    assert errors(events) == ["gemini reported an error: [API Error: 401 Unauthorized]"]
    assert summary.final_message is None
    assert summary.usage == Usage(tokens_in=240, tokens_out=60, cache_read=0)


def test_result_with_status_error_and_no_details_still_says_so() -> None:
    events, _ = run([line("result", status="error")], exit_code=1)
    assert errors(events) == ["gemini reported an error: status 'error'"]


def test_error_event_is_an_error_but_a_warning_is_not() -> None:
    events, summary = run(
        [
            line("error", severity="warning", message="Loop detected, stopping execution"),
            line("error", severity="error", message="Maximum session turns exceeded"),
            line("result", status="success", stats=STATS),
        ]
    )
    assert errors(events) == ["Maximum session turns exceeded"]
    assert progress(events) == ["warning: Loop detected, stopping execution"]
    assert summary.error == "Maximum session turns exceeded"


def test_no_result_is_an_error_with_the_exit_code() -> None:
    events, summary = run(["Invalid auth method selected."], exit_code=41)
    assert errors(events) == ["gemini ended without a result (exit code 41)"]
    assert summary.session_id is None


def test_empty_output_is_an_error() -> None:
    events, _ = run([], exit_code=0)
    assert errors(events) == ["gemini ended without a result (exit code 0)"]


def test_killed_run_leaves_the_cause_to_the_runner() -> None:
    events, _ = run([line("init", session_id="s-1", model="m")], exit_code=None)
    assert errors(events) == []


def test_noise_malformed_and_pretty_printed_json_are_ignored() -> None:
    pretty = json.dumps({"session_id": "s-9", "response": "hi"}, indent=2).splitlines()
    events, _ = run(
        [
            "Loaded cached credentials.",
            '{"type": "result", "status": "succ',
            *pretty,
            '["init"]',
        ]
    )
    assert errors(events) == ["gemini ended without a result (exit code 0)"]
    assert len(events) == 1


def test_final_message_is_the_text_after_the_last_tool_call() -> None:
    events, summary = run(
        [
            line("message", role="user", content="Create hello.txt"),
            line("message", role="assistant", content="I'll create ", delta=True),
            line("message", role="assistant", content="the file.", delta=True),
            line(
                "tool_use", tool_name="run_shell_command", tool_id="t1", parameters={"command": "npm test\nnpm run x"}
            ),
            line("tool_result", tool_id="t1", status="error", error={"type": "x", "message": "exit 1"}),
            line("message", role="assistant", content="\n", delta=True),
            line("message", role="assistant", content="Tests pass", delta=True),
            line("message", role="assistant", content=" now.\nAll good.", delta=True),
            line("result", status="success", stats=STATS),
        ]
    )
    assert progress(events) == ["I'll create", "run_shell_command: npm test", "Tests pass"]
    assert summary.final_message == "Tests pass now.\nAll good."
    assert summary.error is None


def test_thinking_tokens_count_as_output_and_cached_tokens_are_split() -> None:
    stats = {"total_tokens": 1500, "input_tokens": 1000, "output_tokens": 100, "cached": 300, "input": 700}
    _, summary = run([line("result", status="success", stats=stats)])
    assert summary.usage == Usage(tokens_in=700, tokens_out=500, cache_read=300)


def test_fresh_invocation_matches_the_verified_command_and_writes_settings() -> None:
    adapter: Adapter = GeminiAdapter()
    invocation = adapter.invocation(request())
    assert invocation.argv == (
        "gemini",
        "-p",
        PROMPT,
        "-o",
        "stream-json",
        "--yolo",
        "--skip-trust",
        "-m",
        "gemini-2.5-flash",
    )
    assert invocation.env == {}
    settings_path = f"{HOME}/.gemini/settings.json"
    assert list(invocation.files) == [settings_path]
    settings = json.loads(invocation.files[settings_path])
    assert settings["security"] == {"auth": {"selectedType": "gemini-api-key"}}
    assert settings["privacy"] == {"usageStatisticsEnabled": False}
    assert settings["general"] == {"maxAttempts": 3}  # retries bounded: the engine's timeout stays in charge
    assert invocation.stdin is None


def test_base_url_model_args_and_resume() -> None:
    invocation = GeminiAdapter().invocation(
        request(resume=SESSION, model="fake-model", base_url="http://127.0.0.1:4010", args=("--debug",))
    )
    assert invocation.argv[-5:] == ("-m", "fake-model", "--resume", SESSION, "--debug")
    assert invocation.argv[1:3] == ("-p", PROMPT)
    assert invocation.env == {"GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:4010"}
    assert SECRET not in json.dumps([invocation.argv, dict(invocation.env), dict(invocation.files)])


def test_prompt_starting_with_a_dash_uses_the_equals_form() -> None:
    invocation = GeminiAdapter().invocation(
        RunRequest(AgentProfile(name="g", executor="gemini"), "--fix the tests", "/h/p.md", WORKDIR, "/h")
    )
    assert invocation.argv[1] == "--prompt=--fix the tests"
    assert "-p" not in invocation.argv


def test_bad_base_url_is_refused() -> None:
    with pytest.raises(AgentUnavailable, match="base_url 'file:///etc/passwd'"):
        GeminiAdapter().invocation(request(base_url="file:///etc/passwd"))

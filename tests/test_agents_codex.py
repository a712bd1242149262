"""Codex adapter: recorded `codex exec --json` output -> events, and the commands it builds."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

from forgebot.agents.base import Adapter, AgentEvent, AgentUnavailable, EventKind, RunRequest, RunSummary
from forgebot.agents.codex import CodexAdapter
from forgebot.core.models import AgentProfile, Usage

SAMPLES = Path(__file__).parent / "samples"
HOME = "/state/homes/attempt-3"
WORKDIR = "/state/worktrees/attempt-3"
PROMPT = "# Task: add hello.txt\n\nWork in the current directory."
SECRET = "sk-test-not-to-be-copied"


def sample_lines(name: str) -> list[str]:
    return (SAMPLES / name).read_text(encoding="utf-8").splitlines()


def run(lines: Iterable[str], exit_code: int | None = 0) -> tuple[list[AgentEvent], RunSummary]:
    parser = CodexAdapter().parser()
    events = [event for line in lines for event in parser.feed(line)]
    events += list(parser.finish(exit_code, {}))
    summary = RunSummary()
    for event in events:
        summary.add(event)
    return events, summary


def line(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def item(kind: str, **fields: object) -> str:
    return line("item.started" if kind == "started" else "item.completed", item=fields)


def errors(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.ERROR]


def progress(events: list[AgentEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EventKind.PROGRESS]


def request(
    resume: str | None = None, model: str | None = None, base_url: str | None = None, args: tuple[str, ...] = ()
) -> RunRequest:
    profile = AgentProfile(
        name="codex", executor="codex", model=model, base_url=base_url, args=args, env={"OPENAI_API_KEY": SECRET}
    )
    return RunRequest(profile, PROMPT, f"{HOME}/prompt.md", WORKDIR, HOME, resume)


def config_value(override: str) -> object:
    """The value of a `-c key=value` override, parsed as Codex does: as TOML."""
    _, _, value = override.partition("=")
    document = tomllib.loads(f"value = {value}")
    return document["value"]


def test_sample_run() -> None:
    events, summary = run(sample_lines("codex-exec-json-sample.jsonl"))
    usage = Usage(tokens_in=240, tokens_out=60, cache_read=0, cache_write=0)
    assert events == [
        AgentEvent(EventKind.SESSION, "01a23ccb-2bc9-7c60-9e07-18a219db2a85"),
        AgentEvent(EventKind.PROGRESS, "Bash: printf '%s' 'Hello from the fake LLM"),
        AgentEvent(EventKind.PROGRESS, "Done: wrote the file."),
        AgentEvent(EventKind.USAGE, usage=usage),
        AgentEvent(EventKind.MESSAGE, "Done: wrote the file."),
    ]
    assert summary == RunSummary(
        session_id="01a23ccb-2bc9-7c60-9e07-18a219db2a85",
        final_message="Done: wrote the file.",
        error=None,
        usage=usage,
        progress="Done: wrote the file.",
    )


def test_sample_error_run_reports_the_failed_turn_once() -> None:
    events, summary = run(sample_lines("codex-exec-json-error-sample.jsonl"), exit_code=1)
    message = "We\u2019re currently experiencing high demand, which may cause temporary errors."
    # The model-metadata warning item and the top-level error event are not errors; turn.failed is.
    assert errors(events) == [message]
    assert summary.session_id == "01a23ccc-2c73-7361-8fdb-18ca7fcd6614"
    assert summary.final_message is None
    assert summary.usage == Usage()


def test_reconnecting_and_warnings_are_not_errors() -> None:
    events, summary = run(
        [
            line("thread.started", thread_id="t-1"),
            item("completed", id="item_0", type="error", message="Model metadata for `m` not found."),
            line("turn.started"),
            line("error", message="Reconnecting... 1/5 (stream disconnected before completion)"),
            item("completed", id="item_1", type="agent_message", text="All done."),
            line("turn.completed", usage={"input_tokens": 10, "output_tokens": 2}),
        ]
    )
    assert errors(events) == []
    assert progress(events) == ["Reconnecting... 1/5 (stream disconnected before completion)", "All done."]
    assert summary.final_message == "All done."


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (
            {"message": '{"error": {"message": "fake LLM: injected HTTP 400", "type": "invalid_request_error"}}'},
            "fake LLM: injected HTTP 400",
        ),
        ({"message": '{"detail": "Bad Gateway"}'}, '{"detail": "Bad Gateway"}'),
        ({"message": "unexpected status 401 Unauthorized"}, "unexpected status 401 Unauthorized"),
        ({}, "turn failed"),
    ],
)
def test_turn_failed_reports_the_api_message(error: dict[str, str], reported: str) -> None:
    events, _ = run([line("turn.failed", error=error)], exit_code=1)
    assert errors(events) == [reported]


def test_no_finished_turn_is_an_error_naming_the_last_warning() -> None:
    lines = [line("thread.started", thread_id="t-1"), line("error", message="Reconnecting... 5/5")]
    events, summary = run(lines, exit_code=1)
    assert errors(events) == ["codex ended without finishing its turn (exit code 1): Reconnecting... 5/5"]
    assert summary.session_id == "t-1"


def test_empty_output_is_an_error() -> None:
    events, _ = run([], exit_code=0)
    assert errors(events) == ["codex ended without finishing its turn (exit code 0)"]


def test_killed_run_leaves_the_cause_to_the_runner() -> None:
    events, _ = run([line("thread.started", thread_id="t-1")], exit_code=None)
    assert errors(events) == []


def test_noise_and_malformed_lines_are_ignored() -> None:
    noise = [
        "WARNING: proceeding, even though we could not create PATH aliases under the temporary dir",
        "Reading additional input from stdin...",
        '{"type": "turn.completed", "usage": {"input_tok',
        "[1, 2, 3]",
        "",
        '{"a": ' * 100_000,  # nesting deep enough to exhaust the JSON parser's recursion
    ]
    events, summary = run([*noise, *sample_lines("codex-exec-json-sample.jsonl")])
    assert summary.error is None
    assert summary.final_message == "Done: wrote the file."
    assert len(events) == 5


def test_cached_tokens_are_split_from_input() -> None:
    usage = {"input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": 50, "reasoning_output_tokens": 20}
    _, summary = run([line("turn.completed", usage=usage)])
    assert summary.usage == Usage(tokens_in=600, tokens_out=50, cache_read=400)


def test_last_agent_message_is_the_final_message() -> None:
    _, summary = run(
        [
            item("completed", type="agent_message", text="Looking at the tests first."),
            item("completed", type="agent_message", text="Fixed it.\n\nDetails below."),
            line("turn.completed", usage={}),
        ]
    )
    assert summary.final_message == "Fixed it.\n\nDetails below."
    assert summary.progress == "Fixed it."


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ('/bin/bash -lc "npm test"', "Bash: npm test"),
        ("bash -lc 'ls -la src'", "Bash: ls -la src"),
        ("/usr/bin/zsh -c 'make lint'", "Bash: make lint"),
        ("git status", "Bash: git status"),
    ],
)
def test_command_progress_shows_the_command_inside_the_shell(command: str, shown: str) -> None:
    events, _ = run([item("started", type="command_execution", command=command, status="in_progress")])
    assert progress(events) == [shown]


def test_edits_tools_and_searches_show_as_progress() -> None:
    changes = [{"path": "src/app.py", "kind": "update"}, {"path": "src/new.py", "kind": "add"}]
    events, _ = run(
        [
            item("completed", type="file_change", changes=changes, status="completed"),
            item("completed", type="file_change", changes=[{"path": "NEW.md", "kind": "add"}]),
            item("started", type="mcp_tool_call", server="docs", tool="lookup", status="in_progress"),
            item("started", type="web_search", query="python tomllib"),
            item("completed", type="reasoning", text="**Thinking**"),
        ]
    )
    assert progress(events) == ["Edit src/app.py (+1 more)", "Write NEW.md", "docs.lookup", "Search: python tomllib"]


def provider(base_url: str) -> dict[str, object]:
    return {
        "name": "forgebot",
        "base_url": base_url,
        "env_key": "OPENAI_API_KEY",
        "wire_api": "responses",
        "request_max_retries": 2,
        "stream_max_retries": 2,
    }


def test_fresh_invocation_matches_the_verified_command() -> None:
    adapter: Adapter = CodexAdapter()
    invocation = adapter.invocation(request())
    # Without base_url the provider serves OpenAI's API: the built-in `openai` provider takes no retry bound.
    overrides = [arg for arg in invocation.argv if arg.startswith("model_provider")]
    assert config_value(overrides[1]) == provider("https://api.openai.com/v1")
    assert invocation.argv == (
        "codex",
        "exec",
        "--json",
        "--skip-git-repo-check",
        "-m",
        "gpt-5-codex",
        "-c",
        'model_provider="forgebot"',
        "-c",
        overrides[1],
        "-C",
        WORKDIR,
        "--sandbox",
        "workspace-write",
        PROMPT,
    )
    assert invocation.env == {"CODEX_HOME": HOME}
    assert invocation.files == {}
    assert invocation.stdin is None
    assert adapter.binary == "codex"
    assert adapter.default_model == "gpt-5-codex"


def test_base_url_becomes_a_responses_provider_and_args_come_before_the_prompt() -> None:
    invocation = CodexAdapter().invocation(
        request(model="fake-model", base_url="http://127.0.0.1:4010/v1", args=("--ephemeral",))
    )
    argv = invocation.argv
    assert argv[argv.index("-m") + 1] == "fake-model"
    assert argv[-2:] == ("--ephemeral", PROMPT)
    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    assert overrides[0] == 'model_provider="forgebot"'
    assert overrides[1].startswith("model_providers.forgebot=")
    assert config_value(overrides[0]) == "forgebot"
    assert config_value(overrides[1]) == provider("http://127.0.0.1:4010/v1")
    assert SECRET not in json.dumps([argv, dict(invocation.env), dict(invocation.files)])


def test_resume_uses_exec_resume_with_a_writable_sandbox() -> None:
    invocation = CodexAdapter().invocation(
        request(resume="01a23ccb-2bc9", base_url="http://127.0.0.1:4010/v1", args=("--ephemeral",))
    )
    argv = invocation.argv
    assert argv[:3] == ("codex", "exec", "resume")
    assert argv[-3:] == ("--ephemeral", "01a23ccb-2bc9", PROMPT)
    assert "--sandbox" not in argv
    assert "-C" not in argv
    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    assert 'sandbox_mode="workspace-write"' in overrides
    assert 'model_provider="forgebot"' in overrides
    assert invocation.env == {"CODEX_HOME": HOME}


def test_prompt_starting_with_a_dash_is_not_an_option() -> None:
    invocation = CodexAdapter().invocation(
        RunRequest(AgentProfile(name="c", executor="codex"), "-v fix it", "/h/p.md", WORKDIR, "/h")
    )
    assert invocation.argv[-1] == " -v fix it"


@pytest.mark.parametrize(
    "url", ["ftp://host/v1", 'http://host/v1",evil="x', "http://host/{env:HOME}", "http://host /v1", "localhost:8080"]
)
def test_bad_base_url_is_refused(url: str) -> None:
    with pytest.raises(AgentUnavailable, match="base_url"):
        CodexAdapter().invocation(request(base_url=url))

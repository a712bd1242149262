"""The `command` executor: any program, argv from the profile with placeholders, run in the worktree.

Plain output lines become progress. A program may also report structured facts on lines of the form
`::forgebot {"usage": {"tokens_in": 10, "tokens_out": 5, "cost_usd": 0.01}, "session": "s1",
"message": "done", "error": "..."}` (any subset of keys), so scripted agents show tokens and cost too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from forgebot.agents.base import (
    AgentEvent,
    AgentUnavailable,
    EventKind,
    Invocation,
    LineParser,
    RunRequest,
    render_argv,
)
from forgebot.core.models import Usage

DIRECTIVE = "::forgebot "
_USAGE_KEYS = ("tokens_in", "tokens_out", "cache_read", "cache_write", "cost_usd", "turns")


class CommandParser(LineParser):
    def feed(self, line: str) -> Iterator[AgentEvent]:
        text = line.strip()
        if not text:
            return
        if text.startswith(DIRECTIVE):
            yield from _directive(text[len(DIRECTIVE) :])
        else:
            yield AgentEvent(EventKind.PROGRESS, text[:200])


def _directive(payload: str) -> Iterator[AgentEvent]:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        yield AgentEvent(EventKind.PROGRESS, payload[:200])
        return
    if not isinstance(data, dict):
        return
    usage = data.get("usage")
    if isinstance(usage, dict):
        fields = {k: usage[k] for k in _USAGE_KEYS if isinstance(usage.get(k), int | float)}
        for key in ("tokens_in", "tokens_out", "cache_read", "cache_write", "turns"):
            if key in fields:
                fields[key] = int(fields[key])
        yield AgentEvent(EventKind.USAGE, usage=Usage(**fields))
    for key, kind in (
        ("session", EventKind.SESSION),
        ("message", EventKind.MESSAGE),
        ("error", EventKind.ERROR),
    ):
        if isinstance(data.get(key), str):
            yield AgentEvent(kind, data[key])


class CommandAdapter:
    executor = "command"
    binary: str | None = None
    default_model: str | None = None
    install_hint = "set `command` to the argv of any program"
    credential_env: tuple[str, ...] = ()
    ignored_paths: tuple[str, ...] = ()
    session_usage = False

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        if not profile.command:
            raise AgentUnavailable(f"agent {profile.name!r}: executor 'command' needs a `command` argv list")
        values = {
            "prompt": request.prompt,
            "prompt_file": request.prompt_file,
            "workdir": request.workdir,
            "model": profile.model or "",
        }
        argv = render_argv((*profile.command, *profile.args), values)
        env = {"FORGEBOT_SESSION": request.resume_session} if request.resume_session else {}
        return Invocation(argv=argv, env=env)

    def parser(self) -> CommandParser:
        return CommandParser()

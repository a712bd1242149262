"""Cursor CLI (`cursor-agent -p`), with stream-json output (reference §2.8).

Not installable here, so this follows Cursor's documented output format: the Claude shape plus `tool_call`
events (`started`/`completed`) whose `tool_call` holds one `<kind>ToolCall` object with `args` (or a
`function` with JSON `arguments`). On failure it exits non-zero with a message on stderr and no result line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from forgebot.agents.base import AgentEvent, AgentUnavailable, EventKind, Invocation, RunRequest
from forgebot.agents.streamjson import StreamJsonParser, argv_prompt, describe_tool

BINARY = "cursor-agent"


class CursorParser(StreamJsonParser):
    cli = BINARY

    def on_record(self, record: dict[str, Any]) -> Iterator[AgentEvent]:
        if record.get("type") != "tool_call":
            yield from super().on_record(record)
        elif record.get("subtype") == "started":
            text = describe_cursor_tool(record.get("tool_call"), self.cwd)
            if text:
                yield AgentEvent(EventKind.PROGRESS, text)


def describe_cursor_tool(call: object, cwd: str) -> str:
    """`{"shellToolCall": {"args": {"command": ...}}}` -> `Shell: ...`; `{"function": {...}}` -> its name."""
    if not isinstance(call, dict) or not call:
        return ""
    kind, body = next(iter(call.items()))
    if not isinstance(body, dict):
        return ""
    if kind == "function":
        name = body.get("name")
        return describe_tool(name if isinstance(name, str) else kind, _json_object(body.get("arguments")), cwd)
    name = kind.removesuffix("ToolCall")
    return describe_tool(name[:1].upper() + name[1:], body.get("args"), cwd)


def _json_object(text: object) -> object:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


class CursorAdapter:
    executor = "cursor"
    binary: str | None = BINARY
    install_hint = "curl https://cursor.com/install -fsS | bash (installs cursor-agent; see cursor.com/docs/cli)"
    credential_env: tuple[str, ...] = ("CURSOR_API_KEY",)
    ignored_paths: tuple[str, ...] = ()
    session_usage = False
    default_model: str | None = None  # Cursor picks its own default model

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        if profile.base_url:
            raise AgentUnavailable(
                f"agent {profile.name!r}: cursor-agent talks only to Cursor's own service and cannot use "
                f"base_url {profile.base_url!r}; remove base_url from the profile"
            )
        argv = [BINARY, "-p", argv_prompt(request.prompt), "--output-format", "stream-json"]
        # --force runs commands without asking; --trust skips the workspace trust prompt; forgebot isolates.
        argv += ["--force", "--trust", "--sandbox", "disabled", "--workspace", request.workdir]
        if profile.model:
            argv += ["--model", profile.model]
        if request.resume_session:
            argv += ["--resume", request.resume_session]
        return Invocation(argv=(*argv, *profile.args))

    def parser(self) -> CursorParser:
        return CursorParser()

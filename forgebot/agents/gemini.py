"""Gemini CLI (`gemini -p ... -o stream-json`): `init`, `message` deltas, `tool_use`/`tool_result`, `error`
and a final `result` carrying the status and token stats.

Errors come as a result with status "error" (the exit code is then non-zero, e.g. 144/145 for HTTP 400/401) or as
an `error` event of severity "error"; severity "warning" (loop detection) is not fatal. No result at all is an
error too: the CLI always ends a run it completed with one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from forgebot.agents.base import AgentEvent, EventKind, Invocation, LineParser, RunRequest
from forgebot.agents.helpers import checked_base_url, integer, json_object, mapping
from forgebot.agents.streamjson import describe_tool, first_line
from forgebot.core.models import Usage

DEFAULT_MODEL = "gemini-2.5-flash"
# Tries per model request: the first and 2 retries. The default, 10 with a backoff from 5 s up to 30 s, keeps a
# failing API busy for minutes; the backoff itself is fixed, so this bound (about 15 s of waiting) is the knob.
MAX_ATTEMPTS = 3
# API-key auth chosen explicitly: with GOOGLE_GEMINI_BASE_URL set, the auth type derived from the environment is
# "gateway", which non-interactive mode rejects ("Invalid auth method selected.", exit 41).
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"maxAttempts": MAX_ATTEMPTS},
}


class GeminiAdapter:
    executor = "gemini"
    binary: str | None = "gemini"
    install_hint = "npm install -g @google/gemini-cli@0.61.0 (or scripts/install-agents.sh)"
    default_model: str | None = DEFAULT_MODEL
    credential_env: tuple[str, ...] = ("GEMINI_API_KEY",)
    ignored_paths: tuple[str, ...] = ()
    session_usage = False

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        base_url = checked_base_url(profile)
        resume = ("--resume", request.resume_session) if request.resume_session else ()
        argv = (
            "gemini",
            *_prompt_flag(request.prompt),
            "-o",
            "stream-json",
            # --skip-trust: in an untrusted folder (every fresh worktree) yolo is downgraded to "default".
            "--yolo",
            "--skip-trust",
            "-m",
            profile.model or DEFAULT_MODEL,
            *resume,
            *profile.args,
        )
        env = {"GOOGLE_GEMINI_BASE_URL": base_url} if base_url else {}
        settings = os.path.join(request.home, ".gemini", "settings.json")
        return Invocation(argv=argv, env=env, files={settings: json.dumps(SETTINGS)})

    def parser(self) -> GeminiParser:
        return GeminiParser()


def _prompt_flag(prompt: str) -> tuple[str, ...]:
    # After `-p`, a value starting with a dash would be read as an option; in `--prompt=...` it cannot be.
    return (f"--prompt={prompt}",) if prompt.startswith("-") else ("-p", prompt)


class GeminiParser(LineParser):
    def __init__(self) -> None:
        self._answer: list[str] = []  # assistant text since the last tool call: the final answer at the end
        self._answer_shown = False
        self._result_seen = False

    def feed(self, line: str) -> Iterator[AgentEvent]:
        event = json_object(line)
        if event is None:
            return
        kind = event.get("type")
        if kind == "init" and isinstance(event.get("session_id"), str):
            yield AgentEvent(EventKind.SESSION, event["session_id"])
        elif kind == "message" and event.get("role") == "assistant" and isinstance(event.get("content"), str):
            yield from self._text(event["content"])
        elif kind == "tool_use" and isinstance(event.get("tool_name"), str):
            self._answer, self._answer_shown = [], False
            yield AgentEvent(EventKind.PROGRESS, describe_tool(event["tool_name"], event.get("parameters")))
        elif kind == "error":
            yield from _error_event(event)
        elif kind == "result":
            yield from self._result(event)

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterator[AgentEvent]:
        # A None exit code means killed (timeout, cancel): the runner reports that cause itself.
        if not self._result_seen and exit_code is not None:
            yield AgentEvent(EventKind.ERROR, f"gemini ended without a result (exit code {exit_code})")

    def _text(self, chunk: str) -> Iterator[AgentEvent]:
        self._answer.append(chunk)
        # Deltas stream in pieces: the live table gets the first line once, when the text starts.
        if not self._answer_shown and first_line(chunk):
            self._answer_shown = True
            yield AgentEvent(EventKind.PROGRESS, first_line(chunk))

    def _result(self, event: dict[str, Any]) -> Iterator[AgentEvent]:
        self._result_seen = True
        stats = mapping(event.get("stats"))
        if stats:
            yield AgentEvent(EventKind.USAGE, usage=_usage(stats))
        if event.get("status") == "success":
            answer = "".join(self._answer).strip()
            if answer:
                yield AgentEvent(EventKind.MESSAGE, answer)
            return
        message = mapping(event.get("error")).get("message")
        detail = message if isinstance(message, str) and message.strip() else f"status {event.get('status')!r}"
        yield AgentEvent(EventKind.ERROR, f"gemini reported an error: {detail}")


def _error_event(event: dict[str, Any]) -> Iterator[AgentEvent]:
    message = event.get("message")
    text = message.strip() if isinstance(message, str) and message.strip() else "unspecified error"
    if event.get("severity") == "warning":
        yield AgentEvent(EventKind.PROGRESS, first_line(f"warning: {text}"))
    else:
        yield AgentEvent(EventKind.ERROR, text)


def _usage(stats: dict[str, Any]) -> Usage:
    """`input` is the uncached part of `input_tokens`. `total_tokens` also counts thinking tokens, which
    `output_tokens` leaves out although they are billed as output, so output is what the total leaves over."""
    prompt, cached, total = (
        integer(stats.get("input_tokens")),
        integer(stats.get("cached")),
        integer(stats.get("total_tokens")),
    )
    tokens_in = integer(stats.get("input"))
    if tokens_in is None and prompt is not None:
        tokens_in = max(0, prompt - (cached or 0))
    tokens_out = integer(stats.get("output_tokens"))
    if total is not None and prompt is not None:
        tokens_out = max(tokens_out or 0, total - prompt)
    return Usage(tokens_in=tokens_in, tokens_out=tokens_out, cache_read=cached)

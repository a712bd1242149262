"""GitHub Copilot CLI (`copilot -p`): JSONL events on stdout; token counts only in the `--usage-output-file`.

With a profile `base_url` Copilot runs in BYOK mode against that OpenAI-compatible endpoint: no GitHub sign-in,
and COPILOT_OFFLINE keeps it from sending telemetry or checking for updates.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from forgebot.agents.base import AgentEvent, AgentUnavailable, EventKind, Invocation, LineParser, RunRequest
from forgebot.agents.helpers import json_object, mapping
from forgebot.core.models import AgentProfile, Usage

USAGE_ARTIFACT = "usage"
_TEXT_LIMIT = 200
# Argument keys whose value best describes a tool call in one line, in order of preference.
_TOOL_DETAIL_KEYS = ("command", "path", "pattern", "url", "query")
_USAGE_FIELDS = {
    "tokens_in": "inputTokens",
    "tokens_out": "outputTokens",
    "cache_read": "cacheReadTokens",
    "cache_write": "cacheWriteTokens",
}


DEFAULT_MODEL = "claude-sonnet-4.5"


class CopilotAdapter:
    executor = "copilot"
    binary: str | None = "copilot"
    install_hint = "npm install -g @github/copilot@1.0.102 (or scripts/install-agents.sh)"
    credential_env: tuple[str, ...] = (
        "COPILOT_GITHUB_TOKEN",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "COPILOT_PROVIDER_API_KEY",
        "COPILOT_PROVIDER_BEARER_TOKEN",
    )
    ignored_paths: tuple[str, ...] = ()
    session_usage = True  # the usage file counts the whole session
    default_model: str | None = DEFAULT_MODEL

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        usage_file = os.path.join(request.home, "copilot-usage.json")
        argv = ["copilot", "-p", request.prompt, "--allow-all", "--no-ask-user", "--output-format", "json"]
        argv += ["--usage-output-file", usage_file]
        if request.resume_session:
            argv.append(f"--resume={request.resume_session}")
        env = {
            "COPILOT_HOME": os.path.join(request.home, ".copilot"),
            "COPILOT_AUTO_UPDATE": "false",
            "COPILOT_MODEL": self._model(profile),
        }
        if profile.base_url:
            env |= {"COPILOT_PROVIDER_BASE_URL": profile.base_url, "COPILOT_OFFLINE": "true"}
        return Invocation(argv=(*argv, *profile.args), env=env, artifacts={USAGE_ARTIFACT: usage_file})

    def _model(self, profile: AgentProfile) -> str:
        if profile.model:
            return profile.model
        if profile.base_url:
            # A gateway serves its own model names: guessing one would only fail later and less clearly.
            raise AgentUnavailable(f"agent {profile.name!r}: executor 'copilot' needs `model` when base_url is set")
        return DEFAULT_MODEL

    def parser(self) -> CopilotParser:
        return CopilotParser()


class CopilotParser(LineParser):
    def __init__(self) -> None:
        self._turns = 0
        self._last_text = ""
        self._result_seen = False
        self._last_noise = ""

    def feed(self, line: str) -> Iterator[AgentEvent]:
        event = json_object(line)
        if event is None:
            yield from self._noise(line)
            return
        kind = event.get("type")
        data = mapping(event.get("data"))
        if kind == "assistant.turn_start":
            self._turns += 1
            yield AgentEvent(EventKind.USAGE, usage=Usage(turns=self._turns))
        elif kind == "assistant.message":
            yield from self._message(data)
        elif kind == "tool.execution_start":
            yield AgentEvent(EventKind.PROGRESS, _tool_text(data))
        elif kind == "session.error":
            yield AgentEvent(EventKind.ERROR, _error_text(data))
        elif kind == "result":
            yield from self._result(event)

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterator[AgentEvent]:
        usage = usage_from_file(artifacts.get(USAGE_ARTIFACT))
        if usage is not None:
            yield AgentEvent(EventKind.USAGE, usage=usage)
        if not self._result_seen:
            detail = f": {self._last_noise}" if self._last_noise else ""
            yield AgentEvent(EventKind.ERROR, f"copilot ended without a final result{detail}")

    def _noise(self, line: str) -> Iterator[AgentEvent]:
        text = line.strip()
        if text:
            # Kept: when no result follows, this stderr line is usually the reason (a bad token, a bad flag).
            self._last_noise = text[:_TEXT_LIMIT]
            yield AgentEvent(EventKind.PROGRESS, self._last_noise)

    def _message(self, data: dict[str, Any]) -> Iterator[AgentEvent]:
        content = data.get("content")
        if isinstance(content, str) and content.strip():
            self._last_text = content.strip()
            yield AgentEvent(EventKind.PROGRESS, _first_line(content))

    def _result(self, event: dict[str, Any]) -> Iterator[AgentEvent]:
        self._result_seen = True
        session = event.get("sessionId")
        if isinstance(session, str) and session:
            yield AgentEvent(EventKind.SESSION, session)
        if self._last_text:
            yield AgentEvent(EventKind.MESSAGE, self._last_text)
        code = event.get("exitCode")
        if isinstance(code, int) and code != 0:
            yield AgentEvent(EventKind.ERROR, f"copilot reported exit code {code}")


def usage_from_file(text: str | None) -> Usage | None:
    """Token totals over all models in Copilot's usage file (`modelMetrics.<model>.usage`); None if unusable."""
    document = json_object(text or "")
    metrics = document.get("modelMetrics") if document else None
    if not isinstance(metrics, dict):
        return None
    totals: dict[str, int] = {}
    for model in metrics.values():
        usage = model.get("usage") if isinstance(model, dict) else None
        if not isinstance(usage, dict):
            continue
        for field, key in _USAGE_FIELDS.items():
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                totals[field] = totals.get(field, 0) + value
    return Usage(**totals) if totals else None


def _tool_text(data: dict[str, Any]) -> str:
    name = data.get("toolName")
    name = name if isinstance(name, str) and name else "tool"
    arguments = data.get("arguments")
    if isinstance(arguments, dict):
        for key in _TOOL_DETAIL_KEYS:
            value = arguments.get(key)
            if isinstance(value, str) and value.strip():
                return _first_line(f"{name}: {value.strip()}")
    return name


def _error_text(data: dict[str, Any]) -> str:
    kind = data.get("errorType")
    text = f"{kind if isinstance(kind, str) and kind else 'session'} error"
    status = data.get("statusCode")
    if isinstance(status, int):
        text += f" (HTTP {status})"
    message = data.get("message")
    if isinstance(message, str) and message.strip():
        text += f": {message.strip()}"
    return text


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:_TEXT_LIMIT] if text.strip() else ""

"""Claude-shaped stream-json, spoken by Claude Code, Qwen Code, Cursor CLI and Amp.

One JSON object per line: `system/init` (session id, cwd), `assistant` (a message whose content blocks are text,
tool_use or thinking, with that message's usage), `user` (tool results) and a final `result` (totals, the final
text, `is_error`). The `json` output variants (a lone result object, or Qwen's JSON array of every event) go through
the same path, one record at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from forgebot.agents.base import AgentEvent, EventKind, LineParser
from forgebot.core.models import Usage

PROGRESS_LIMIT = 200
ERROR_LIMIT = 500
# Anthropic names first; the camelCase ones are Cursor's (and Claude's modelUsage).
_TOKEN_KEYS: dict[str, tuple[str, ...]] = {
    "tokens_in": ("input_tokens", "inputTokens"),
    "tokens_out": ("output_tokens", "outputTokens"),
    "cache_read": ("cache_read_input_tokens", "cacheReadInputTokens", "cacheReadTokens"),
    "cache_write": ("cache_creation_input_tokens", "cacheCreationInputTokens", "cacheWriteTokens"),
}
_COMMAND_KEYS = ("command", "cmd")
_TARGET_KEYS = ("file_path", "path", "filePath", "notebook_path", "pattern", "url")


def argv_prompt(prompt: str) -> str:
    """The prompt as one argument; a leading dash would be parsed as an option, so it gets a space in front."""
    return f" {prompt}" if prompt.startswith("-") else prompt


def first_line(text: object) -> str:
    if isinstance(text, str):
        for line in text.splitlines():
            if line.strip():
                return line.strip()[:PROGRESS_LIMIT]
    return ""


def token_counts(raw: object) -> dict[str, int]:
    """The token fields of a usage object that are present, under Usage's names."""
    counts: dict[str, int] = {}
    if not isinstance(raw, Mapping):
        return counts
    for field, names in _TOKEN_KEYS.items():
        value = next((raw[name] for name in names if _is_int(raw.get(name))), None)
        if value is not None:
            counts[field] = value
    return counts


def describe_tool(name: str, args: object, cwd: str = "") -> str:
    """`Bash: npm test`, `Write src/app.py`: the tool and what it acts on, paths relative to the agent's cwd."""
    if isinstance(args, Mapping):
        command = next((args[key] for key in _COMMAND_KEYS if isinstance(args.get(key), str)), None)
        if command is not None:
            return f"{name}: {first_line(command)}"[:PROGRESS_LIMIT]
        target = next((args[key] for key in _TARGET_KEYS if isinstance(args.get(key), str)), None)
        if target is not None:
            prefix = cwd.rstrip("/") + "/"
            relative = target[len(prefix) :] if cwd and target.startswith(prefix) else target
            return f"{name} {relative}"[:PROGRESS_LIMIT]
    return name[:PROGRESS_LIMIT]


class StreamJsonParser(LineParser):
    """Parses the shared shape; subclasses name their CLI and add its quirks."""

    cli = "agent"

    def __init__(self) -> None:
        self.cwd = ""
        self._session: str | None = None
        # Assistant usage per message id: Claude repeats one message's usage on every content block line.
        self._per_message: dict[str, dict[str, int]] = {}
        self.message_totals: dict[str, int] = {}  # the running sums over this run's messages
        self._result_seen = False
        self._stray = ""
        self._stray_is_error = False

    def feed(self, line: str) -> list[AgentEvent]:
        text = line.strip()
        if not text:
            return []
        records = _records(text)
        if records is None:
            self._note_stray(text)
            return []
        return [event for record in records for event in self.on_record(record)]

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> list[AgentEvent]:
        # A None exit code means killed (timeout, cancel): the runner reports that cause itself.
        if self._result_seen or exit_code is None:
            return []
        message = f"{self.cli} ended without a final result (exit code {exit_code})"
        return [AgentEvent(EventKind.ERROR, f"{message}: {self._stray}" if self._stray else message)]

    def on_record(self, record: dict[str, Any]) -> Iterator[AgentEvent]:
        kind = record.get("type")
        if kind == "system" and record.get("subtype") == "init":
            if isinstance(record.get("cwd"), str):
                self.cwd = record["cwd"]
            yield from self._session_event(record.get("session_id"))
        elif kind == "assistant" and isinstance(record.get("message"), dict):
            yield from self._assistant(record["message"])
        elif kind == "result":
            yield from self._result(record)

    def result_error(self, record: dict[str, Any]) -> str | None:
        """The error a result reports. Claude keeps subtype "success" on API errors, so is_error decides too."""
        subtype = record.get("subtype")
        subtype = subtype if isinstance(subtype, str) else ""
        if record.get("is_error") is not True and not subtype.startswith("error"):
            return None
        detail = _error_detail(record)
        label = "" if subtype in ("", "success") else subtype
        if label and detail:
            return f"{label}: {detail}"
        return detail or label or f"{self.cli} reported an error without details"

    def result_tokens(self, record: dict[str, Any]) -> dict[str, int]:
        """The run's token totals from the result, which replace the running sums of the messages."""
        return token_counts(record.get("usage"))

    def _session_event(self, session: object) -> Iterator[AgentEvent]:
        if isinstance(session, str) and session and session != self._session:
            self._session = session
            yield AgentEvent(EventKind.SESSION, session)

    def _assistant(self, message: dict[str, Any]) -> Iterator[AgentEvent]:
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and first_line(block.get("text")):
                yield AgentEvent(EventKind.PROGRESS, first_line(block.get("text")))
            elif block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                yield AgentEvent(EventKind.PROGRESS, describe_tool(block["name"], block.get("input"), self.cwd))
        yield from self._count(message)

    def _count(self, message: dict[str, Any]) -> Iterator[AgentEvent]:
        """Running totals from per-message usage, so the live table moves before the final result."""
        counts = token_counts(message.get("usage"))
        if not counts:
            return
        key = message["id"] if isinstance(message.get("id"), str) else f"#{len(self._per_message)}"
        self._per_message[key] = counts
        totals: dict[str, int] = {}
        for tokens in self._per_message.values():
            for field, value in tokens.items():
                totals[field] = totals.get(field, 0) + value
        if totals != self.message_totals:
            self.message_totals = totals
            yield AgentEvent(EventKind.USAGE, usage=Usage(**totals))

    def _result(self, record: dict[str, Any]) -> Iterator[AgentEvent]:
        self._result_seen = True
        yield from self._session_event(record.get("session_id"))
        fields: dict[str, Any] = dict(self.result_tokens(record))
        cost = record.get("total_cost_usd", record.get("cost_usd"))
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            fields["cost_usd"] = float(cost)
        if _is_int(record.get("num_turns")):
            fields["turns"] = record["num_turns"]
        if fields:
            yield AgentEvent(EventKind.USAGE, usage=Usage(**fields))
        error = self.result_error(record)
        if error is not None:
            yield AgentEvent(EventKind.ERROR, error)
        elif isinstance(record.get("result"), str) and record["result"].strip():
            yield AgentEvent(EventKind.MESSAGE, record["result"])

    def _note_stray(self, text: str) -> None:
        """Keep the line that best explains a crash: the last one mentioning an error, else the last one."""
        is_error = "error" in text.lower()
        if is_error or not self._stray_is_error:
            self._stray = text[:ERROR_LIMIT]
            self._stray_is_error = is_error


def _records(text: str) -> list[dict[str, Any]] | None:
    """The JSON objects on a line, or None when it is not JSON (stderr noise interleaved with the stream)."""
    if text[0] not in "{[":
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict):
        return [data]
    return [item for item in data if isinstance(item, dict)]


def _error_detail(record: Mapping[str, Any]) -> str:
    result, error, errors = record.get("result"), record.get("error"), record.get("errors")
    if isinstance(error, Mapping):
        error = error.get("message")
    if isinstance(errors, list):
        errors = "; ".join(item for item in errors if isinstance(item, str))
    detail = next((text.strip() for text in (result, error, errors) if isinstance(text, str) and text.strip()), "")
    return detail[:ERROR_LIMIT]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""OpenAI Codex CLI (`codex exec --json`): a thread of turns whose items are commands, file edits and messages.

Only `turn.failed`, or a run that never finishes its turn, is an error. Codex also prints `error` events and
`error` items for warnings (unknown model metadata) and for "Reconnecting... n/5" retries it survives.

Every run uses a model provider configured through `-c` overrides (values are TOML): the only place Codex takes a
retry bound (`request_max_retries`, `stream_max_retries`); its built-in `openai` provider cannot be overridden
("reserved built-in provider IDs"). It serves the profile's base_url, else OpenAI's own API URL; the key comes
from OPENAI_API_KEY either way (OPENAI_BASE_URL, which only the built-in provider reads, has no effect: use base_url).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from forgebot.agents.base import AgentEvent, EventKind, Invocation, LineParser, RunRequest
from forgebot.agents.helpers import checked_base_url, integer, json_object, mapping
from forgebot.agents.streamjson import argv_prompt, describe_tool, first_line
from forgebot.core.models import Usage

DEFAULT_MODEL = "gpt-5-codex"
PROVIDER_ID = "forgebot"
SANDBOX = "workspace-write"
OPENAI_API_URL = "https://api.openai.com/v1"  # what the built-in provider uses when OPENAI_BASE_URL is unset
# A flaky API gets a second chance, a dead one fails within seconds: forgebot's own timeout stays in charge.
MAX_RETRIES = 2
# `bash -lc "..."`: Codex wraps every command; the live table shows what runs inside.
_SHELL_WRAPPER = re.compile(r"(?:\S*/)?(?:ba|z)?sh\s+-l?c\s+(.*)", re.DOTALL)
_CHANGE_VERBS = {"add": "Write", "update": "Edit", "delete": "Delete"}


class CodexAdapter:
    executor = "codex"
    binary: str | None = "codex"
    install_hint = "npm install -g @openai/codex@0.171.0 (or scripts/install-agents.sh)"
    default_model: str | None = DEFAULT_MODEL
    credential_env: tuple[str, ...] = ("OPENAI_API_KEY",)
    ignored_paths: tuple[str, ...] = ()
    session_usage = True

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        common = (
            "--json",
            "--skip-git-repo-check",
            "-m",
            profile.model or DEFAULT_MODEL,
            *provider_overrides(checked_base_url(profile) or OPENAI_API_URL),
        )
        prompt = argv_prompt(request.prompt)
        if request.resume_session:
            # `exec resume` has no --sandbox flag; without a sandbox setting it falls back to read-only.
            sandbox = ("-c", f'sandbox_mode="{SANDBOX}"')
            argv = ("codex", "exec", "resume", *common, *sandbox, *profile.args, request.resume_session, prompt)
        else:
            argv = ("codex", "exec", *common, "-C", request.workdir, "--sandbox", SANDBOX, *profile.args, prompt)
        # Codex refuses a CODEX_HOME that does not exist; the attempt's private HOME always does.
        return Invocation(argv=argv, env={"CODEX_HOME": request.home})

    def parser(self) -> CodexParser:
        return CodexParser()


def provider_overrides(base_url: str) -> tuple[str, ...]:
    """`-c` flags selecting a Responses-API provider at `base_url` whose key Codex reads from OPENAI_API_KEY, with
    retries bounded."""
    provider = (
        f'{{name="{PROVIDER_ID}",base_url="{base_url}",env_key="OPENAI_API_KEY",wire_api="responses",'
        f"request_max_retries={MAX_RETRIES},stream_max_retries={MAX_RETRIES}}}"
    )
    return ("-c", f'model_provider="{PROVIDER_ID}"', "-c", f"model_providers.{PROVIDER_ID}={provider}")


class CodexParser(LineParser):
    def __init__(self) -> None:
        self._message = ""
        self._turn_over = False
        self._last_warning = ""

    def feed(self, line: str) -> Iterator[AgentEvent]:
        event = json_object(line)
        if event is None:
            return
        kind = event.get("type")
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            yield AgentEvent(EventKind.SESSION, event["thread_id"])
        elif kind in ("item.started", "item.completed"):
            yield from self._item(kind, mapping(event.get("item")))
        elif kind == "turn.completed":
            self._turn_over = True
            yield AgentEvent(EventKind.USAGE, usage=_usage(mapping(event.get("usage"))))
            if self._message:
                yield AgentEvent(EventKind.MESSAGE, self._message)
        elif kind == "turn.failed":
            self._turn_over = True
            yield AgentEvent(EventKind.ERROR, _readable(mapping(event.get("error")).get("message")))
        elif kind == "error" and first_line(event.get("message")):
            # Not terminal: retries and warnings. Shown live, and kept to explain a run that stops here.
            self._last_warning = first_line(event.get("message"))
            yield AgentEvent(EventKind.PROGRESS, self._last_warning)

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterator[AgentEvent]:
        # A None exit code means killed (timeout, cancel): the runner reports that cause itself.
        if self._turn_over or exit_code is None:
            return
        message = f"codex ended without finishing its turn (exit code {exit_code})"
        yield AgentEvent(EventKind.ERROR, f"{message}: {self._last_warning}" if self._last_warning else message)

    def _item(self, kind: str, item: dict[str, Any]) -> Iterator[AgentEvent]:
        item_type = item.get("type")
        if kind == "item.started" and item_type == "command_execution" and isinstance(item.get("command"), str):
            yield AgentEvent(EventKind.PROGRESS, describe_tool("Bash", {"command": _unwrap(item["command"])}))
        elif kind == "item.completed" and item_type == "agent_message" and isinstance(item.get("text"), str):
            self._message = item["text"].strip() or self._message
            if first_line(item["text"]):
                yield AgentEvent(EventKind.PROGRESS, first_line(item["text"]))
        elif kind == "item.completed" and item_type == "file_change":
            yield from _file_change(item.get("changes"))
        elif kind == "item.started" and item_type == "mcp_tool_call":
            yield AgentEvent(EventKind.PROGRESS, f"{item.get('server', 'mcp')}.{item.get('tool', 'tool')}")
        elif kind == "item.started" and item_type == "web_search" and first_line(item.get("query")):
            yield AgentEvent(EventKind.PROGRESS, f"Search: {first_line(item.get('query'))}")


def _readable(message: object) -> str:
    """Codex passes an API's JSON error body on verbatim; the message inside it is what a person needs."""
    if not isinstance(message, str) or not message.strip():
        return "turn failed"
    inner = mapping(mapping(json_object(message)).get("error")).get("message")
    return inner if isinstance(inner, str) and inner.strip() else message


def _unwrap(command: str) -> str:
    match = _SHELL_WRAPPER.fullmatch(command.strip())
    if match is None:
        return command
    inner = match.group(1).strip()
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
        return inner[1:-1]
    return inner


def _file_change(changes: object) -> Iterator[AgentEvent]:
    entries = [change for change in changes if isinstance(change, dict)] if isinstance(changes, list) else []
    if not entries or not isinstance(entries[0].get("path"), str):
        return
    verb = _CHANGE_VERBS.get(str(entries[0].get("kind")), "Edit")
    more = f" (+{len(entries) - 1} more)" if len(entries) > 1 else ""
    yield AgentEvent(EventKind.PROGRESS, describe_tool(verb, {"path": entries[0]["path"]}) + more)


def _usage(raw: dict[str, Any]) -> Usage:
    """Codex counts cached tokens inside input_tokens; forgebot's tokens_in are the uncached ones."""
    total_in, cached = integer(raw.get("input_tokens")), integer(raw.get("cached_input_tokens"))
    tokens_in = total_in if total_in is None or cached is None else max(0, total_in - cached)
    return Usage(
        tokens_in=tokens_in,
        tokens_out=integer(raw.get("output_tokens")),
        cache_read=cached,
        cache_write=integer(raw.get("cache_write_input_tokens")),
    )

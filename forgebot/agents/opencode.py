"""OpenCode (`opencode run --format json`): JSONL events `step_start`, `text`, `tool_use`, `step_finish` (that
step's tokens and cost) and `error`; every event carries the `sessionID`.

OpenCode has no final result event: a run that finishes no step and reports no error is an error. Settings come
through OPENCODE_CONFIG_CONTENT; with a profile base_url it also defines an OpenAI-compatible provider whose key
OpenCode substitutes from the environment (`{env:OPENAI_API_KEY}`), so the config text holds no secret.

Retries: OpenCode 1.18 sends each model request without the AI SDK's own retries and retries a failed one 5 times
(backoff 2 s doubling to 30 s, about a minute), a count fixed in its code that no setting or variable changes;
so a dead API fails the run after about a minute, and the engine's timeout bounds the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from forgebot.agents.base import AgentEvent, AgentUnavailable, EventKind, Invocation, LineParser, RunRequest
from forgebot.agents.helpers import checked_base_url, integer, json_object, mapping
from forgebot.agents.streamjson import argv_prompt, describe_tool, first_line
from forgebot.core.models import AgentProfile, Price, Usage

DEFAULT_MODEL = "anthropic/claude-sonnet-4-5"
PROVIDER_ID = "forgebot"
KEY_REFERENCE = "{env:OPENAI_API_KEY}"
# Edits and shell commands allowed without asking: nobody answers a prompt in a headless run.
BASE_CONFIG: dict[str, Any] = {
    "permission": {"edit": "allow", "bash": "allow"},
    "autoupdate": False,
    "share": "disabled",
}


class OpenCodeAdapter:
    executor = "opencode"
    binary: str | None = "opencode"
    install_hint = "npm install -g opencode-ai@1.18.33 (or scripts/install-agents.sh)"
    default_model: str | None = DEFAULT_MODEL
    credential_env: tuple[str, ...] = (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENROUTER_API_KEY",
        "GOOGLE_GENERATIVE_AI_API_KEY",
        "OPENCODE_API_KEY",
    )
    ignored_paths: tuple[str, ...] = ()
    session_usage = False

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        model = _model(profile)
        base_url = checked_base_url(profile)
        config = dict(BASE_CONFIG)
        env = {"OPENCODE_DISABLE_AUTOUPDATE": "1"}
        if base_url is not None:
            config["provider"] = {PROVIDER_ID: _provider(base_url, model, profile.price)}
            # The provider is fully described here: no need for the models.dev catalog (nor its download).
            env["OPENCODE_DISABLE_MODELS_FETCH"] = "1"
            model = f"{PROVIDER_ID}/{model}"
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
        session = ("--session", request.resume_session) if request.resume_session else ()
        argv = (
            "opencode",
            "run",
            "--format",
            "json",
            "-m",
            model,
            "--dir",
            request.workdir,
            *session,
            *profile.args,
            argv_prompt(request.prompt),
        )
        return Invocation(argv=argv, env=env)

    def parser(self) -> OpenCodeParser:
        return OpenCodeParser()


def _model(profile: AgentProfile) -> str:
    model = profile.model or DEFAULT_MODEL
    if "{" in model or "}" in model or not model.strip():
        raise AgentUnavailable(f"agent {profile.name!r}: model {model!r} is not a valid OpenCode model name")
    if profile.base_url is None and "/" not in model:
        raise AgentUnavailable(
            f"agent {profile.name!r}: OpenCode needs the model as provider/model (e.g. {DEFAULT_MODEL}), got {model!r}"
        )
    return model


def _provider(base_url: str, model: str, price: Price | None) -> dict[str, Any]:
    """An OpenAI-compatible provider serving `model`; a profile price becomes OpenCode's cost table (USD per
    million tokens, the same unit), so OpenCode reports dollars."""
    entry: dict[str, Any] = {"name": model}
    if price is not None:
        entry["cost"] = {"input": price.input_per_mtok, "output": price.output_per_mtok}
    return {
        "npm": "@ai-sdk/openai-compatible",
        "name": PROVIDER_ID,
        "options": {"baseURL": base_url, "apiKey": KEY_REFERENCE},
        "models": {model: entry},
    }


class OpenCodeParser(LineParser):
    def __init__(self) -> None:
        self._session = ""
        self._step_text: list[str] = []
        self._steps = 0
        self._totals: dict[str, int] = {}  # only the fields OpenCode reported: the others stay unknown
        self._cost = 0.0
        self._errored = False

    def feed(self, line: str) -> Iterator[AgentEvent]:
        event = json_object(line)
        if event is None:
            return
        session = event.get("sessionID")
        if isinstance(session, str) and session and session != self._session:
            self._session = session
            yield AgentEvent(EventKind.SESSION, session)
        kind, part = event.get("type"), mapping(event.get("part"))
        if kind == "step_start":
            self._step_text = []
        elif kind == "text" and isinstance(part.get("text"), str):
            self._step_text.append(part["text"])
            if first_line(part["text"]):
                yield AgentEvent(EventKind.PROGRESS, first_line(part["text"]))
        elif kind == "tool_use" and isinstance(part.get("tool"), str):
            yield AgentEvent(EventKind.PROGRESS, _tool_text(part["tool"], mapping(part.get("state"))))
        elif kind == "step_finish":
            yield from self._step_finish(part)
        elif kind == "error":
            self._errored = True
            yield AgentEvent(EventKind.ERROR, _error_text(mapping(event.get("error"))))

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterator[AgentEvent]:
        # A None exit code means killed (timeout, cancel): the runner reports that cause itself.
        if self._steps == 0 and not self._errored and exit_code is not None:
            yield AgentEvent(EventKind.ERROR, f"opencode ended without finishing a step (exit code {exit_code})")

    def _step_finish(self, part: dict[str, Any]) -> Iterator[AgentEvent]:
        self._steps += 1
        tokens = mapping(part.get("tokens"))
        cache = mapping(tokens.get("cache"))
        # Reasoning is counted apart from output but billed as output.
        for field, value in (
            ("tokens_in", tokens.get("input")),
            ("tokens_out", tokens.get("output")),
            ("tokens_out", tokens.get("reasoning")),
            ("cache_read", cache.get("read")),
            ("cache_write", cache.get("write")),
        ):
            count = integer(value)
            if count is not None:
                self._totals[field] = self._totals.get(field, 0) + count
        cost = part.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self._cost += cost
        # OpenCode reports 0 when it has no price for the model: that is unknown, not free.
        usage = Usage(**self._totals, cost_usd=self._cost or None, turns=self._steps)
        yield AgentEvent(EventKind.USAGE, usage=usage)
        text = "".join(self._step_text).strip()
        if text:
            yield AgentEvent(EventKind.MESSAGE, text)


def _tool_text(tool: str, state: dict[str, Any]) -> str:
    """A command says most; otherwise OpenCode's own title (a path relative to the project), else the input."""
    tool_input = mapping(state.get("input"))
    title = state.get("title")
    if "command" not in tool_input and isinstance(title, str) and title.strip():
        return f"{tool} {first_line(title)}"
    return describe_tool(tool, tool_input)


def _error_text(error: dict[str, Any]) -> str:
    name = error.get("name")
    message = mapping(error.get("data")).get("message")
    parts = [text.strip() for text in (name, message) if isinstance(text, str) and text.strip()]
    return ": ".join(parts) or "opencode reported an error without details"

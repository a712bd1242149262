"""Aider (`aider --message-file`): human text on stdout; facts come from files it writes under the attempt's HOME.

Aider exits 0 even when every LLM call failed, so success is judged by its analytics log: a run without a
`message_send` event got no answer from the model. Tokens and cost come from those events, the final answer from
the LLM history file. The chat and input histories live under HOME, so the worktree only gets `.aider*` caches.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from forgebot.agents.base import AgentEvent, AgentUnavailable, EventKind, Invocation, LineParser, RunRequest
from forgebot.agents.helpers import json_object, mapping
from forgebot.core.models import AgentProfile, Price, Usage

ANALYTICS_ARTIFACT = "analytics"
REPLIES_ARTIFACT = "llm_history"
_TEXT_LIMIT = 200
# Unattended, plain output, no network side trips, and no changes to .gitignore or commits: forgebot commits.
_FLAGS = (
    "--yes-always",
    "--no-check-update",
    "--no-show-model-warnings",
    "--no-pretty",
    "--no-fancy-input",
    "--no-stream",
    "--no-auto-commits",
    "--no-gitignore",
    "--no-detect-urls",
    "--no-analytics",
)
# Aider logs each model reply as this header line followed by the reply, every line prefixed "ASSISTANT ".
_REPLY_HEADER = re.compile(r"^LLM RESPONSE \d{4}-\d\d-\d\dT")
_REPLY_PREFIX = "ASSISTANT "
_ERROR_LINE = re.compile(r"^(litellm\.\w+|\w*Error|\w*Exception)\b")
# Retries bounded where aider 0.86 lets them be: the OpenAI client under litellm retries each call twice, inside
# aider's own loop (backoff 0.25 s doubling to 32 s, about 64 s in all) that is fixed in its code. `aider/extra_params`
# applies to every model; with the client's retries off, a dead API costs 9 requests instead of 27.
MODEL_SETTINGS = "- name: aider/extra_params\n  extra_params:\n    max_retries: 0\n"


DEFAULT_MODEL = "anthropic/claude-sonnet-4-5"


class AiderAdapter:
    executor = "aider"
    binary: str | None = "aider"
    install_hint = "pip install aider-chat==0.86.2 (or scripts/install-agents.sh)"
    credential_env: tuple[str, ...] = (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "DEEPSEEK_API_KEY",
        "OPENROUTER_API_KEY",
    )
    ignored_paths: tuple[str, ...] = (".aider*",)
    session_usage = False
    default_model: str | None = DEFAULT_MODEL

    def invocation(self, request: RunRequest) -> Invocation:
        profile, home = request.profile, request.home
        model = self._model(profile)
        analytics = os.path.join(home, "aider-analytics.jsonl")
        replies = os.path.join(home, "aider-llm-history.txt")
        argv = ["aider", "--model", model]
        settings = os.path.join(home, "aider-model-settings.yml")
        files = {settings: MODEL_SETTINGS}
        if profile.base_url:
            metadata = os.path.join(home, "aider-model-metadata.json")
            files[metadata] = model_metadata(model, profile.price)
            # An unknown model gets aider's "whole" edit format; SEARCH/REPLACE blocks are cheaper and widely handled.
            argv += ["--openai-api-base", profile.base_url, "--model-metadata-file", metadata, "--edit-format", "diff"]
        argv += [*_FLAGS, "--model-settings-file", settings]
        argv += ["--analytics-log", analytics, "--llm-history-file", replies]
        argv += ["--chat-history-file", os.path.join(home, "aider-chat-history.md")]
        argv += ["--input-history-file", os.path.join(home, "aider-input-history")]
        if request.followup:
            # Aider has no session ids: a follow-up re-reads the chat history instead.
            argv.append("--restore-chat-history")
        argv += [*profile.args, "--message-file", request.prompt_file]
        return Invocation(
            argv=tuple(argv),
            # litellm: the price list it ships, not a download at every start. COLUMNS: without a terminal, aider's
            # console wraps at 80 columns, which would cut error lines in two.
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "1000"},
            files=files,
            artifacts={ANALYTICS_ARTIFACT: analytics, REPLIES_ARTIFACT: replies},
        )

    def _model(self, profile: AgentProfile) -> str:
        if profile.base_url:
            if not profile.model:
                raise AgentUnavailable(f"agent {profile.name!r}: executor 'aider' needs `model` when base_url is set")
            # litellm sends only "openai/..." models to --openai-api-base.
            return profile.model if profile.model.startswith("openai/") else f"openai/{profile.model}"
        return profile.model or DEFAULT_MODEL

    def parser(self) -> AiderParser:
        return AiderParser()


def model_metadata(model: str, price: Price | None) -> str:
    """litellm metadata that makes a gateway's model known to aider; prices only when the profile has them."""
    info: dict[str, Any] = {
        "max_input_tokens": 128000,
        "max_output_tokens": 8192,
        "litellm_provider": "openai",
        "mode": "chat",
    }
    if price is not None:
        info["input_cost_per_token"] = price.input_per_mtok / 1_000_000
        info["output_cost_per_token"] = price.output_per_mtok / 1_000_000
    return json.dumps({model: info}, indent=2) + "\n"


class AiderParser(LineParser):
    def __init__(self) -> None:
        self._in_fence = False
        self._error_line = ""

    def feed(self, line: str) -> Iterator[AgentEvent]:
        text = line.strip()
        if _ERROR_LINE.match(text):
            # Checked before the fence state: an unbalanced fence in a reply must not hide a later API error.
            self._error_line = text[:_TEXT_LIMIT]
        if text.startswith("```"):
            # Code and SEARCH/REPLACE blocks inside fences would drown the live progress line.
            self._in_fence = not self._in_fence
        elif text and not self._in_fence:
            yield AgentEvent(EventKind.PROGRESS, text[:_TEXT_LIMIT])

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterator[AgentEvent]:
        events = newest_run(artifacts.get(ANALYTICS_ARTIFACT, ""))
        sends = [properties for name, properties in events if name == "message_send"]
        if sends:
            yield AgentEvent(EventKind.USAGE, usage=usage_of(sends))
        reply = final_reply(artifacts.get(REPLIES_ARTIFACT, ""))
        if reply:
            yield AgentEvent(EventKind.MESSAGE, reply)
        if not sends:
            yield AgentEvent(EventKind.ERROR, self._no_answer(events))

    def _no_answer(self, events: list[tuple[str, dict[str, Any]]]) -> str:
        text = "aider got no answer from the model (no message_send in its analytics log)"
        if self._error_line:
            return f"{text}: {self._error_line}"
        reasons = [str(properties.get("reason", "")) for name, properties in events if name == "exit"]
        if reasons and reasons[-1] and not reasons[-1].startswith("Completed"):
            return f"{text}; it exited with: {reasons[-1]}"
        return text


def newest_run(log: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, properties) of the last run in an analytics log: aider appends, and a follow-up reuses the file."""
    events: list[tuple[str, dict[str, Any]]] = []
    for line in log.splitlines():
        entry = json_object(line)
        if entry is None or not isinstance(entry.get("event"), str):
            continue
        if entry["event"] == "launched":
            events = []
        events.append((entry["event"], mapping(entry.get("properties"))))
    return events


def usage_of(sends: list[dict[str, Any]]) -> Usage:
    """One `message_send` per LLM call: tokens add up; `total_cost` is already the run's running total."""
    total_cost = sends[-1].get("total_cost")
    # Aider reports 0 for a model without a known price; that is an unknown cost, not a free run.
    cost = None
    if isinstance(total_cost, int | float) and not isinstance(total_cost, bool) and total_cost > 0:
        cost = float(total_cost)
    return Usage(
        tokens_in=sum(_count(send.get("prompt_tokens")) for send in sends),
        tokens_out=sum(_count(send.get("completion_tokens")) for send in sends),
        cost_usd=cost,
        turns=len(sends),
    )


def final_reply(log: str) -> str:
    """The newest non-empty model reply in aider's LLM history (a failed last call logs an empty one)."""
    replies: list[list[str]] = []
    reading = False
    for line in log.splitlines():
        if _REPLY_HEADER.match(line):
            replies.append([])
            reading = True
        elif reading and (line.startswith(_REPLY_PREFIX) or line == _REPLY_PREFIX.rstrip()):
            replies[-1].append(line[len(_REPLY_PREFIX) :])
        else:
            # Anything else starts the next request ("TO LLM ..."), whose quoted history is not a reply.
            reading = False
    texts = ["\n".join(reply).strip() for reply in replies]
    return next((text for text in reversed(texts) if text), "")


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

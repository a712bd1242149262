"""Qwen Code (`qwen PROMPT`), a Gemini CLI fork speaking the OpenAI API, with Claude-shaped stream-json
(reference §1.2, §2.4)."""

from __future__ import annotations

import json
import os
from typing import Any

from forgebot.agents.base import Invocation, RunRequest
from forgebot.agents.helpers import checked_base_url
from forgebot.agents.streamjson import StreamJsonParser, argv_prompt

BINARY = "qwen"
DEFAULT_MODEL = "qwen3-coder-plus"
# Qwen 0.15 reports a failed API call as a successful result whose text starts with this.
API_ERROR_PREFIX = "[API Error"
# Retries bounded where Qwen 0.15 lets them be: its OpenAI client retries each request 3 times by default, inside
# an outer loop of 7 tries (backoff 1.5 s doubling to 30 s) that is fixed in the code. With the client's retries
# off, a dead API fails after 7 requests in about 75 s instead of 28 requests in about 95 s.
SETTINGS = {"model": {"generationConfig": {"maxRetries": 0}}}


class QwenParser(StreamJsonParser):
    cli = BINARY

    def result_error(self, record: dict[str, Any]) -> str | None:
        error = super().result_error(record)
        text = record.get("result")
        if error is None and isinstance(text, str) and text.lstrip().startswith(API_ERROR_PREFIX):
            return text.strip()
        return error

    def result_tokens(self, record: dict[str, Any]) -> dict[str, int]:
        # After a resume the result counts the whole session (earlier runs too); the runner wants this run's,
        # which are the sums over this run's messages.
        return self.message_totals or super().result_tokens(record)


class QwenAdapter:
    executor = "qwen"
    binary: str | None = BINARY
    install_hint = "npm install -g @qwen-code/qwen-code@0.15.10 (or scripts/install-agents.sh)"
    credential_env: tuple[str, ...] = ("OPENAI_API_KEY",)
    ignored_paths: tuple[str, ...] = ()
    session_usage = False
    default_model: str | None = DEFAULT_MODEL

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        # The prompt goes first: options given later in profile.args may take several values.
        argv = [BINARY, argv_prompt(request.prompt), "--auth-type", "openai", "-o", "stream-json", "--yolo"]
        if request.resume_session:
            argv += ["--resume", request.resume_session]
        env = {"OPENAI_MODEL": profile.model or DEFAULT_MODEL}
        base_url = checked_base_url(profile)
        if base_url:
            env["OPENAI_BASE_URL"] = base_url
        settings = os.path.join(request.home, ".qwen", "settings.json")
        return Invocation(argv=(*argv, *profile.args), env=env, files={settings: json.dumps(SETTINGS)})

    def parser(self) -> QwenParser:
        return QwenParser()

"""Amp (`amp -x PROMPT --stream-json`), Sourcegraph's agent, with Claude-compatible stream-json (reference §2.9).

Amp cannot be driven by a fake LLM (its LLM calls go through the Amp service), so it is tested on fixtures;
the flags were checked against `amp --help` of 0.0.1790142911 (the CLI parses them offline).
Sessions are threads (`T-<uuid>`); a follow-up runs `amp threads continue <thread> -x PROMPT`.
"""

from __future__ import annotations

import json
import os

from forgebot.agents.base import Invocation, RunRequest
from forgebot.agents.helpers import checked_base_url
from forgebot.agents.streamjson import StreamJsonParser, argv_prompt

BINARY = "amp"
SETTINGS = {
    "amp.dangerouslyAllowAll": True,  # run tools without confirmation prompts: no one is there to answer
    "amp.updates.mode": "disabled",
    "amp.notifications.enabled": False,
}


class AmpParser(StreamJsonParser):
    cli = BINARY


class AmpAdapter:
    executor = "amp"
    binary: str | None = BINARY
    # Not in scripts/install-agents.sh: Amp cannot run offline, so the end-to-end tests have no use for it.
    install_hint = "npm install -g @sourcegraph/amp@0.0.1790142911 (then set AMP_API_KEY; see ampcode.com/manual)"
    credential_env: tuple[str, ...] = ("AMP_API_KEY",)
    ignored_paths: tuple[str, ...] = ()
    session_usage = False
    # Amp chooses models by mode (`--mode low|medium|high|ultra`); None keeps the account's default mode.
    default_model: str | None = None

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        settings_file = os.path.join(request.home, ".config", "amp", "settings.json")
        start = ["threads", "continue", request.resume_session] if request.resume_session else []
        # -x takes the message as its own value, so the prompt must follow it directly.
        argv = [BINARY, *start, "-x", argv_prompt(request.prompt), "--stream-json"]
        argv += ["--settings-file", settings_file]
        if profile.model:
            argv += ["--mode", profile.model]
        # AMP_URL is the Amp service (which proxies the LLM): the closest thing Amp has to an API base URL.
        base_url = checked_base_url(profile)
        env = {"AMP_URL": base_url} if base_url else {}
        files = {settings_file: json.dumps(SETTINGS, indent=2) + "\n"}
        return Invocation(argv=(*argv, *profile.args), env=env, files=files)

    def parser(self) -> AmpParser:
        return AmpParser()

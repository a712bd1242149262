"""Claude Code (`claude -p`), headless with stream-json output (reference §1.2, §2.1)."""

from __future__ import annotations

import os

from forgebot.agents.base import Invocation, RunRequest
from forgebot.agents.helpers import checked_base_url
from forgebot.agents.streamjson import StreamJsonParser, argv_prompt

BINARY = "claude"
DEFAULT_MODEL = "claude-sonnet-4-5"
# Bounded so a persistent API error fails in seconds instead of the default minutes of backoff.
MAX_RETRIES = "2"


class ClaudeParser(StreamJsonParser):
    cli = BINARY


class ClaudeAdapter:
    executor = "claude"
    binary: str | None = BINARY
    install_hint = "npm install -g @anthropic-ai/claude-code@2.1.197 (or scripts/install-agents.sh)"
    credential_env: tuple[str, ...] = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
    ignored_paths: tuple[str, ...] = ()
    session_usage = False
    default_model: str | None = DEFAULT_MODEL

    def invocation(self, request: RunRequest) -> Invocation:
        profile = request.profile
        argv = [
            BINARY,
            "-p",
            argv_prompt(request.prompt),
            "--output-format",
            "stream-json",
            "--verbose",  # stream-json with --print refuses to run without it
            "--permission-mode",
            "bypassPermissions",
            "--model",
            profile.model or DEFAULT_MODEL,
        ]
        if request.resume_session:
            argv += ["--resume", request.resume_session]
        env = {
            # bypassPermissions is refused for root unless the CLI is told it runs in a sandbox (the worktree).
            "IS_SANDBOX": "1",
            "CLAUDE_CONFIG_DIR": os.path.join(request.home, ".claude"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": MAX_RETRIES,
        }
        base_url = checked_base_url(profile)
        if base_url:
            env["ANTHROPIC_BASE_URL"] = base_url
        return Invocation(argv=(*argv, *profile.args), env=env)

    def parser(self) -> ClaudeParser:
        return ClaudeParser()

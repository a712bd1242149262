"""Agent adapters by executor name."""

from __future__ import annotations

from forgebot.agents.aider import AiderAdapter
from forgebot.agents.amp import AmpAdapter
from forgebot.agents.base import Adapter, AgentUnavailable
from forgebot.agents.claude import ClaudeAdapter
from forgebot.agents.codex import CodexAdapter
from forgebot.agents.command import CommandAdapter
from forgebot.agents.copilot import CopilotAdapter
from forgebot.agents.cursor import CursorAdapter
from forgebot.agents.gemini import GeminiAdapter
from forgebot.agents.opencode import OpenCodeAdapter
from forgebot.agents.qwen import QwenAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.executor: adapter
    for adapter in (
        CommandAdapter(),
        ClaudeAdapter(),
        CodexAdapter(),
        GeminiAdapter(),
        QwenAdapter(),
        OpenCodeAdapter(),
        CopilotAdapter(),
        AiderAdapter(),
        CursorAdapter(),
        AmpAdapter(),
    )
}


def adapter_for(executor: str) -> Adapter:
    try:
        return ADAPTERS[executor]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise AgentUnavailable(f"unknown executor {executor!r} (known: {known})") from None

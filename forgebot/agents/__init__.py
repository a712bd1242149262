"""Agent adapters by executor name."""

from __future__ import annotations

from forgebot.agents.base import Adapter, AgentUnavailable
from forgebot.agents.command import CommandAdapter

ADAPTERS: dict[str, Adapter] = {adapter.executor: adapter for adapter in (CommandAdapter(),)}


def adapter_for(executor: str) -> Adapter:
    try:
        return ADAPTERS[executor]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise AgentUnavailable(f"unknown executor {executor!r} (known: {known})") from None

"""(event, action) → handlers, run in order, each failure isolated and logged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WebhookEvent:
    delivery: str
    event: str  # X-GitHub-Event
    payload: dict[str, Any]

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def repo(self) -> str | None:
        repository = self.payload.get("repository")
        name = repository.get("full_name") if isinstance(repository, dict) else None
        return name if isinstance(name, str) else None

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation")
        value = installation.get("id") if isinstance(installation, dict) else None
        return value if isinstance(value, int) else None


Handler = Callable[[WebhookEvent], Awaitable[None]]
Relevant = Callable[[WebhookEvent], bool]  # pure and cheap: whether the handler would do anything at all


class Router:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str | None], list[tuple[Handler, Relevant | None]]] = defaultdict(list)

    def add(self, event: str, action: str | None, handler: Handler, *, relevant: Relevant | None = None) -> None:
        """`action=None` matches every action of the event. `relevant` tells, from the payload alone, whether the
        handler has anything to do (a comment with no command has not): deliveries no handler wants are
        acknowledged without being recorded or run."""
        self._routes[(event, action)].append((handler, relevant))

    def _matching(self, event: str, action: str | None) -> list[tuple[Handler, Relevant | None]]:
        specific = self._routes.get((event, action), []) if action is not None else []
        return [*specific, *self._routes.get((event, None), [])]

    def handlers(self, event: str, action: str | None) -> list[Handler]:
        return [handler for handler, _ in self._matching(event, action)]

    def events(self) -> set[tuple[str, str | None]]:
        """Every (event, action) some handler is registered for (action None: all of the event's actions)."""
        return {key for key, routes in self._routes.items() if routes}

    def wants(self, event: str, action: str | None) -> bool:
        return bool(self.handlers(event, action))

    def relevant(self, event: WebhookEvent) -> bool:
        """Whether any handler of this delivery has something to do; when a check fails, it is assumed so."""
        for _, check in self._matching(event.event, event.action):
            try:
                if check is None or check(event):
                    return True
            except Exception:
                log.exception("relevance_check_failed", delivery=event.delivery, gh_event=event.event)
                return True
        return False

    async def dispatch(self, event: WebhookEvent) -> list[str]:
        """Runs every handler; returns one line per handler that failed (empty when all succeeded)."""
        failures = []
        for handler in self.handlers(event.event, event.action):
            name = getattr(handler, "__qualname__", repr(handler))
            try:
                await handler(event)
            except Exception as error:
                log.exception("handler_failed", handler=name, delivery=event.delivery, gh_event=event.event)
                failures.append(f"{name}: {type(error).__name__}: {error}")
        return failures

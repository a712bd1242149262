"""In-process publish/subscribe for engine events. The engine knows nothing of its listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

from forgebot.core.models import Attempt

log = structlog.get_logger(__name__)


class EventKind(StrEnum):
    TASK_CREATED = "task_created"
    ATTEMPT_ADDED = "attempt_added"
    ATTEMPT_STATUS = "attempt_status"  # every status change, written to the store first
    ATTEMPT_PROGRESS = "attempt_progress"  # live progress text and usage; not necessarily stored yet
    TASK_FINISHED = "task_finished"  # no attempt of the task is queued or active any more


@dataclass(frozen=True)
class EngineEvent:
    kind: EventKind
    task_id: int
    attempt: Attempt | None = None


Listener = Callable[[EngineEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def subscribe_queue(self, maxsize: int = 10_000) -> tuple[asyncio.Queue[EngineEvent], Callable[[], None]]:
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue(maxsize)

        def put(event: EngineEvent) -> None:
            if queue.full() and event.kind is EventKind.ATTEMPT_PROGRESS:
                return  # a slow reader loses progress ticks, never status changes
            queue.put_nowait(event)

        return queue, self.subscribe(put)

    def publish(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken listener (a UI, a publisher) must not stop the engine or the other listeners.
                log.exception("event_listener_failed", kind=event.kind, task=event.task_id)

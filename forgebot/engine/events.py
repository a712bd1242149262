"""In-process publish/subscribe for engine events. The engine knows nothing of its listeners."""

from __future__ import annotations

import asyncio
import contextlib
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
        """Returns the function that unsubscribes (calling it again does nothing)."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def subscribe_queue(
        self, maxsize: int = 10_000
    ) -> tuple[asyncio.Queue[EngineEvent | None], Callable[[], None]]:
        """A queue that receives every event. A reader `maxsize` events behind loses progress ticks; when a status
        change finds no room, the subscription ends: it is unsubscribed and its queue's last item is None. (A gap
        in the status changes would mislead; an ended stream is reopened and the state read afresh.)"""
        queue: asyncio.Queue[EngineEvent | None] = asyncio.Queue(maxsize + 1)  # one slot kept for the None

        def put(event: EngineEvent) -> None:
            if queue.qsize() < maxsize:
                queue.put_nowait(event)
            elif event.kind is not EventKind.ATTEMPT_PROGRESS:
                unsubscribe()
                queue.put_nowait(None)
                log.warning("event_subscriber_too_slow", queued=maxsize, kind=event.kind, task=event.task_id)

        unsubscribe = self.subscribe(put)
        return queue, unsubscribe

    def publish(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken listener (a UI, a publisher) must not stop the engine or the other listeners.
                log.exception("event_listener_failed", kind=event.kind, task=event.task_id)

"""GET /events: the engine's events as server-sent events, one JSON object per event, with keep-alive comments.

Each stream subscribes its own queue to the engine's bus and unsubscribes when the client goes, the server
stops, its token is revoked (looked up again every TOKEN_RECHECK seconds at most), or anything fails; a slow client
loses progress ticks, never status changes (EventBus.subscribe_queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from forgebot.api.auth import PUBLIC_READER, token_of
from forgebot.api.context import ApiContext, repo_names
from forgebot.api.lookup import context, int_list_query, task_named
from forgebot.api.serialize import event_json
from forgebot.engine.events import EngineEvent
from forgebot.engine.housekeeping import EngineError
from forgebot.store.tokens import ApiToken

HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # a reverse proxy must not hold the stream back
}
TOKEN_RECHECK = 5.0  # seconds between looks at whether the stream's token was revoked meanwhile


async def _next(queue: asyncio.Queue[EngineEvent], stopping: asyncio.Event, wait: float) -> EngineEvent | None:
    """The next event, or None after `wait` seconds or when the server is stopping."""
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({getter, stopper}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not getter.done():
            getter.cancel()
    return getter.result() if getter.done() and not getter.cancelled() else None


class _Visibility:
    """Whether a token may see a task's events, looked up once per task."""

    def __init__(self, ctx: ApiContext, token: ApiToken) -> None:
        self.ctx, self.token = ctx, token
        self.seen: dict[int, bool] = {}

    async def allows(self, task_id: int) -> bool:
        if not self.token.limited:
            return True
        if task_id not in self.seen:
            try:
                self.seen[task_id] = self.token.allows(*repo_names(await self.ctx.engine.task(task_id)))
            except EngineError:
                self.seen[task_id] = False
        return self.seen[task_id]


async def _revoked(ctx: ApiContext, token: ApiToken) -> bool:
    if token is PUBLIC_READER:
        return False
    current = await asyncio.to_thread(ctx.tokens.by_id, token.id)
    return current is None or current.revoked


async def stream_events(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    wanted = {(await task_named(request, task_id)).id for task_id in int_list_query(request, "task")}
    token = token_of(request)
    visibility = _Visibility(ctx, token)
    queue, unsubscribe = ctx.engine.bus.subscribe_queue(maxsize=1000)
    response = web.StreamResponse(headers=HEADERS)
    clock = asyncio.get_running_loop().time
    try:
        await response.prepare(request)
        await response.write(b": subscribed\n\n")  # the subscription is live: events from now on arrive
        sequence = 0
        checked = wrote = clock()
        while not ctx.stopping.is_set():
            event = await _next(queue, ctx.stopping, min(ctx.heartbeat, TOKEN_RECHECK))
            if event is None or clock() - checked >= TOKEN_RECHECK:
                if await _revoked(ctx, token):
                    await response.write(b": token revoked\n\n")
                    break
                checked = clock()
            if event is None:
                if clock() - wrote >= ctx.heartbeat:
                    await response.write(b": keep-alive\n\n")
                    wrote = clock()
                continue
            if (wanted and event.task_id not in wanted) or not await visibility.allows(event.task_id):
                continue
            sequence += 1
            data = json.dumps(event_json(event, ctx.clock(), ctx.redact), separators=(",", ":"))
            await response.write(f"id: {sequence}\ndata: {data}\n\n".encode())
            wrote = clock()
    except ConnectionError:
        pass  # the client went away
    finally:
        unsubscribe()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def add_routes(api: web.Application) -> None:
    api.router.add_get("/events", stream_events)

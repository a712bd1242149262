"""GET /events: the engine's events as server-sent events, one JSON object per event, with keep-alive comments.

Each stream subscribes its own queue to the engine's bus and unsubscribes when the client goes, the server
stops, its token is revoked (looked up again every TOKEN_RECHECK seconds at most), or anything fails. A slow client
loses progress ticks, never status changes: its stream ends instead when it falls too far behind
(EventBus.subscribe_queue) or a write waits longer than ApiContext.write_timeout (it stopped reading).
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


async def _next(
    queue: asyncio.Queue[EngineEvent | None], stopping: asyncio.Event, wait: float
) -> tuple[bool, EngineEvent | None]:
    """(True, the next item: an event, or None when the bus ended the subscription), or (False, None) after
    `wait` seconds or when the server is stopping."""
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({getter, stopper}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return True, getter.result()
    return False, None


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


class _Stuck(Exception):
    """The client stopped reading: a write did not finish within ApiContext.write_timeout."""


async def _send(response: web.StreamResponse, data: bytes, within: float) -> None:
    try:
        await asyncio.wait_for(response.write(data), within)
    except TimeoutError:
        raise _Stuck from None


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
        await _send(response, b": subscribed\n\n", ctx.write_timeout)  # events from now on arrive
        sequence = 0
        checked = wrote = clock()
        while not ctx.stopping.is_set():
            got, event = await _next(queue, ctx.stopping, min(ctx.heartbeat, TOKEN_RECHECK))
            if got and event is None:
                await _send(response, b": too far behind: reconnect\n\n", ctx.write_timeout)
                break
            if event is None or clock() - checked >= TOKEN_RECHECK:
                if await _revoked(ctx, token):
                    await _send(response, b": token revoked\n\n", ctx.write_timeout)
                    break
                checked = clock()
            if event is None:
                if clock() - wrote >= ctx.heartbeat:
                    await _send(response, b": keep-alive\n\n", ctx.write_timeout)
                    wrote = clock()
                continue
            if (wanted and event.task_id not in wanted) or not await visibility.allows(event.task_id):
                continue
            sequence += 1
            data = json.dumps(event_json(event, ctx.clock(), ctx.redact), separators=(",", ":"))
            await _send(response, f"id: {sequence}\ndata: {data}\n\n".encode(), ctx.write_timeout)
            wrote = clock()
    except ConnectionError:
        pass  # the client went away
    except _Stuck:
        if request.transport is not None:
            request.transport.abort()  # drop what it never read; a write_eof would wait for it too
        return response
    finally:
        unsubscribe()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(response.write_eof(), ctx.write_timeout)
    return response


def add_routes(api: web.Application) -> None:
    api.router.add_get("/events", stream_events)

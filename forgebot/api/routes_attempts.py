"""/attempts: fork, read with live progress and log tail, cancel, retry, follow up, delete by status; /compare."""

from __future__ import annotations

import asyncio
import dataclasses
import os

from aiohttp import web

from forgebot.api.auth import token_of
from forgebot.api.bodies import CompareMany, CreateAttempt, Followup, read_body
from forgebot.api.errors import ApiError
from forgebot.api.lookup import (
    attempt_in_path,
    context,
    int_query,
    statuses_query,
    task_in_path,
    task_named,
    visible_tasks,
)
from forgebot.api.routes_tasks import pick_profiles
from forgebot.api.serialize import attempt_json, comparison_json

LOG_TAIL_BYTES = 64 * 1024


def read_log_tail(path: str | None, lines: int) -> str:
    """The last `lines` lines of an attempt's log (blocking; run it in a thread)."""
    if not path or lines <= 0:
        return ""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def create_attempt(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    body = await read_body(request, CreateAttempt)
    settings = await asyncio.to_thread(ctx.settings_for, task.repo)
    profile = pick_profiles(settings, [body.agent])[0]
    if body.model:
        profile = dataclasses.replace(profile, model=body.model)
    attempt = await ctx.engine.fork(task.id, profile, start=body.start)
    return web.json_response(attempt_json(attempt, ctx.clock(), ctx.redact), status=201)


async def get_attempt(request: web.Request) -> web.Response:
    ctx = context(request)
    _, attempt = await attempt_in_path(request)
    tail = await asyncio.to_thread(read_log_tail, attempt.log_path, ctx.log_tail_lines)
    return web.json_response(attempt_json(attempt, ctx.clock(), ctx.redact, log_tail=tail))


async def cancel_attempt(request: web.Request) -> web.Response:
    ctx = context(request)
    task, attempt = await attempt_in_path(request)
    (cancelled,) = await ctx.engine.cancel(task.id, attempt.id)
    return web.json_response(attempt_json(cancelled, ctx.clock(), ctx.redact))


async def retry_attempt(request: web.Request) -> web.Response:
    ctx = context(request)
    _, attempt = await attempt_in_path(request)
    retried = await ctx.engine.retry(attempt.id)
    return web.json_response(attempt_json(retried, ctx.clock(), ctx.redact))


async def followup_attempt(request: web.Request) -> web.Response:
    ctx = context(request)
    _, attempt = await attempt_in_path(request)
    body = await read_body(request, Followup)
    queued = await ctx.engine.followup(attempt.id, body.text, start=body.start)
    return web.json_response(attempt_json(queued, ctx.clock(), ctx.redact))


async def delete_attempts(request: web.Request) -> web.Response:
    """DELETE /attempts?status=failed[&status=...][&task=N]: finished attempts with those statuses."""
    ctx = context(request)
    statuses = statuses_query(request)
    if not statuses:
        raise ApiError(422, "invalid", "status: name at least one status to delete (e.g. ?status=failed)")
    if unfinished := [s.value for s in statuses if not s.terminal]:
        raise ApiError(422, "invalid", f"status: only finished attempts can be deleted, not {unfinished[0]} ones")
    task_id = int_query(request, "task")
    if task_id is not None:
        scopes: list[int | None] = [(await task_named(request, task_id)).id]
    elif token_of(request).limited:
        scopes = [task.id for task in await visible_tasks(request)]
    else:
        scopes = [None]
    deleted = []
    for scope in scopes:
        deleted += await ctx.engine.delete_attempts(statuses, task_id=scope)
    return web.json_response({"deleted": [attempt_json(a, ctx.clock(), ctx.redact) for a in deleted]})


async def compare_many(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_body(request, CompareMany)
    tasks = [await task_named(request, task_id) for task_id in body.task_ids]
    comparisons = [comparison_json(task.id, await ctx.engine.compare(task.id)) for task in tasks]
    return web.json_response({"comparisons": comparisons})


def add_routes(api: web.Application) -> None:
    api.router.add_post(r"/tasks/{id:\d+}/attempts", create_attempt)
    api.router.add_get(r"/attempts/{id:\d+}", get_attempt)
    api.router.add_post(r"/attempts/{id:\d+}/cancel", cancel_attempt)
    api.router.add_post(r"/attempts/{id:\d+}/retry", retry_attempt)
    api.router.add_post(r"/attempts/{id:\d+}/followup", followup_attempt)
    api.router.add_delete("/attempts", delete_attempts)
    api.router.add_post("/compare", compare_many)

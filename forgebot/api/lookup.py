"""Finding what a request names (a task, an attempt, query parameters) and checking the token may see it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from forgebot.api.auth import require_task_access, token_of
from forgebot.api.bodies import MAX_ID
from forgebot.api.context import API_CONTEXT, ApiContext, repo_names
from forgebot.api.errors import ApiError, not_found
from forgebot.core.models import Attempt, AttemptStatus, Task
from forgebot.store import NotFound

EVERY_TASK = 10**6  # how many tasks a look over "all of them" reads at most


def context(request: web.Request) -> ApiContext:
    return request.app[API_CONTEXT]


async def visible_tasks(request: web.Request, repo: str | None = None, window: int = EVERY_TASK) -> list[Task]:
    """The newest `window` tasks (of `repo`, when given), less those the request's token may not see."""
    tasks = await asyncio.to_thread(context(request).store.list_tasks, limit=window, repo=repo)
    token = token_of(request)
    return [task for task in tasks if token.allows(*repo_names(task))]


async def task_named(request: web.Request, task_id: int) -> Task:
    ctx = context(request)
    try:
        task = await asyncio.to_thread(ctx.store.get_task, task_id)
    except NotFound:
        raise not_found(f"task {task_id} not found") from None
    return require_task_access(request, task)


def _path_id(request: web.Request, what: str) -> int:
    """The {id} of the path (the route admits digits only); one no row can have is 404 like any missing one."""
    raw = request.match_info["id"]
    value = int(raw) if len(raw) <= len(str(MAX_ID)) else 0
    if not 1 <= value <= MAX_ID:
        raise not_found(f"{what} {raw[:30]}{'...' if len(raw) > 30 else ''} not found")
    return value


async def task_in_path(request: web.Request) -> Task:
    return await task_named(request, _path_id(request, "task"))


async def attempt_in_path(request: web.Request) -> tuple[Task, Attempt]:
    ctx = context(request)
    attempt_id = _path_id(request, "attempt")
    try:
        attempt = await asyncio.to_thread(ctx.store.get_attempt, attempt_id)
        task = await asyncio.to_thread(ctx.store.get_task, attempt.task_id)
    except NotFound:
        raise not_found(f"attempt {attempt_id} not found") from None
    try:
        require_task_access(request, task)
    except ApiError:
        raise not_found(f"attempt {attempt_id} not found") from None
    return task, attempt


def int_query(
    request: web.Request, name: str, default: int | None = None, *, low: int = 1, high: int = 10**9
) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    return _int(name, raw, low, high)


def int_list_query(request: web.Request, name: str) -> list[int]:
    return [_int(name, raw, 1, 10**12) for value in request.query.getall(name, []) for raw in value.split(",")]


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid", f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ApiError(422, "invalid", f"{name}: must be between {low} and {high}")
    return value


def statuses_query(request: web.Request, name: str = "status") -> list[AttemptStatus]:
    raw = [part for value in request.query.getall(name, []) for part in value.split(",") if part]
    known = {s.value for s in AttemptStatus}
    unknown = [value for value in raw if value not in known]
    if unknown:
        raise ApiError(422, "invalid", f"{name}: unknown status {unknown[0]!r} (one of {', '.join(sorted(known))})")
    return [AttemptStatus(value) for value in raw]

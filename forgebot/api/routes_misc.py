"""/worktrees (list with sizes, cleanup) and /progress (aggregated over a set of tasks)."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from forgebot.api.auth import token_of
from forgebot.api.bodies import Cleanup, read_body
from forgebot.api.errors import ApiError
from forgebot.api.lookup import context, int_list_query, task_named, visible_tasks
from forgebot.api.serialize import cleanup_json, progress_json, worktree_json
from forgebot.core.models import Attempt


async def list_worktrees(request: web.Request) -> web.Response:
    ctx = context(request)
    visible = {task.id for task in await visible_tasks(request)}
    attempts = await asyncio.to_thread(ctx.store.list_attempts)
    mine = [a for a in attempts if a.task_id in visible]

    def measure(rows: list[Attempt]) -> list[tuple[Attempt, int]]:
        disk = ctx.engine.workspaces.disk_usage
        return [(a, disk(a.worktree)) for a in rows if os.path.isdir(a.worktree)]

    sized = await asyncio.to_thread(measure, mine)
    return web.json_response({"worktrees": [worktree_json(a, size) for a, size in sized]})


async def cleanup_worktrees(request: web.Request) -> web.Response:
    ctx = context(request)
    token = token_of(request)
    if token.limited:
        raise ApiError(403, "forbidden", "worktree cleanup spans every repository: use a token without --repo limits")
    body = await read_body(request, Cleanup, optional=True)
    report = await ctx.engine.cleanup_worktrees(dry_run=body.dry_run, older_than=body.seconds())
    return web.json_response(cleanup_json(report))


async def progress(request: web.Request) -> web.Response:
    """GET /progress?task=1&task=2 (or task=1,2), or ?repo=PATH; with neither, every task the token sees."""
    ctx = context(request)
    task_ids = int_list_query(request, "task")
    repo = request.query.get("repo")
    if task_ids and repo:
        raise ApiError(422, "invalid", "task, repo: give tasks or a repository, not both")
    tasks = [await task_named(request, i) for i in task_ids] if task_ids else await visible_tasks(request, repo)
    per_task = [await ctx.engine.attempts(task.id) for task in tasks]
    return web.json_response(progress_json(per_task))


def add_routes(api: web.Application) -> None:
    api.router.add_get("/worktrees", list_worktrees)
    api.router.add_post("/worktrees/cleanup", cleanup_worktrees)
    api.router.add_get("/progress", progress)

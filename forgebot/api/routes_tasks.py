"""/tasks: create, list, read, start, cancel, delete, merge, compare."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from aiohttp import web

from forgebot.api.auth import PUBLIC_READER, require_repo_access, token_of
from forgebot.api.bodies import CreateTask, Merge, TaskOptions, read_body
from forgebot.api.context import ApiContext
from forgebot.api.errors import ApiError
from forgebot.api.links import github_of, github_one
from forgebot.api.lookup import context, int_query, task_in_path, visible_tasks
from forgebot.api.serialize import comparison_json, merge_json, task_json
from forgebot.config import Settings, to_checks, to_profiles
from forgebot.core.models import AgentProfile, Task, TaskStatus, task_status

LIST_WINDOW = 1000  # tasks read before filtering by status and token


def pick_profiles(settings: Settings, names: Sequence[str]) -> list[AgentProfile]:
    known = to_profiles(settings)
    names = list(names) or list(settings.defaults.agents)
    if not names:
        raise ApiError(422, "unknown_agent", "agents: name at least one agent (none are configured as the default)")
    unknown = [name for name in names if name not in known]
    if unknown:
        configured = ", ".join(sorted(known)) or "none"
        raise ApiError(422, "unknown_agent", f"agents: unknown agent {unknown[0]!r} (configured: {configured})")
    return [known[name] for name in names]


async def _task_response(ctx: ApiContext, task: Task) -> web.Response:
    attempts = await ctx.engine.attempts(task.id)
    return web.json_response(task_json(task, attempts, ctx.clock(), ctx.redact, await github_one(ctx, task)))


async def create_task(request: web.Request) -> web.Response:
    body = await read_body(request, CreateTask)
    return await submit_task(request, body, title=body.title, description=body.description, agents=body.agents)


async def submit_task(
    request: web.Request, body: TaskOptions, *, title: str, description: str, agents: Sequence[str]
) -> web.Response:
    """Create a task on `body.repo` after the token's repository check; 201 with the task. Shared by /tasks
    and /templates/{name}/use."""
    ctx = context(request)
    root = await repo_root_for(request, body.repo)
    settings = await asyncio.to_thread(ctx.settings_for, root)
    defaults = settings.defaults
    task = await ctx.engine.submit(
        title=title,
        description=description,
        repo=root,
        profiles=pick_profiles(settings, agents),
        base=body.base or defaults.base,
        strategy=body.strategy or defaults.strategy,
        quality_threshold=defaults.quality_threshold if body.quality_threshold is None else body.quality_threshold,
        checks=to_checks(settings),
        source="api",
        start=body.start,
    )
    attempts = await ctx.engine.attempts(task.id)
    return web.json_response(task_json(task, attempts, ctx.clock(), ctx.redact), status=201)


async def repo_root_for(request: web.Request, repo: str) -> str:
    """The work tree's root for an absolute path the token may use (422 or 403 otherwise). The public reader of a
    public dashboard gets 401: it must not make the server look at (and run git in) paths of its choosing."""
    if token_of(request) is PUBLIC_READER:
        raise ApiError(401, "unauthorized", "repo: naming a repository needs a token (Authorization: Bearer <token>)")
    if not os.path.isabs(repo):
        raise ApiError(422, "invalid", "repo: must be an absolute path of a git repository on the server")
    require_repo_access(request, os.path.normpath(repo))  # noqa: ASYNC240  (a string operation)
    root = await asyncio.to_thread(context(request).engine.workspaces.repo_root, repo)
    require_repo_access(request, root)
    return root


async def list_tasks(request: web.Request) -> web.Response:
    ctx = context(request)
    limit = int_query(request, "limit", 50, high=LIST_WINDOW) or 50
    repo = request.query.get("repo")
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in TaskStatus}:
        known = ", ".join(s.value for s in TaskStatus)
        raise ApiError(422, "invalid", f"status: unknown task status {status!r} (one of {known})")
    rows = []
    for task in await visible_tasks(request, repo, window=LIST_WINDOW):
        attempts = await ctx.engine.attempts(task.id)
        if status is not None and task_status([a.status for a in attempts]).value != status:
            continue
        rows.append((task, attempts))
        if len(rows) == limit:
            break
    github = await github_of(ctx, [task for task, _ in rows])
    now = ctx.clock()
    listed = [task_json(t, attempts, now, ctx.redact, github.get(t.id)) for t, attempts in rows]
    return web.json_response({"tasks": listed})


async def get_task(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    return await _task_response(ctx, task)


async def start_task(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    await ctx.engine.serve(task.id)
    return await _task_response(ctx, task)


async def cancel_task(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    await ctx.engine.cancel(task.id)
    return await _task_response(ctx, task)


async def delete_task(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    deleted = await ctx.engine.delete_task(task.id)
    return web.json_response({"task_id": task.id, "deleted_attempts": [a.id for a in deleted]})


async def merge_task(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    body = await read_body(request, Merge)
    attempt = await asyncio.to_thread(ctx.store.get_attempt, body.attempt)
    if attempt.task_id != task.id:
        raise ApiError(422, "invalid", f"attempt: attempt {body.attempt} belongs to another task")
    result = await ctx.engine.merge(task.id, attempt.id, rebase=body.rebase)
    return web.json_response(merge_json(result))


async def compare_task(request: web.Request) -> web.Response:
    ctx = context(request)
    task = await task_in_path(request)
    return web.json_response(comparison_json(task.id, await ctx.engine.compare(task.id)))


def add_routes(api: web.Application) -> None:
    api.router.add_post("/tasks", create_task)
    api.router.add_get("/tasks", list_tasks)
    api.router.add_get(r"/tasks/{id:\d+}", get_task)
    api.router.add_delete(r"/tasks/{id:\d+}", delete_task)
    api.router.add_post(r"/tasks/{id:\d+}/start", start_task)
    api.router.add_post(r"/tasks/{id:\d+}/cancel", cancel_task)
    api.router.add_post(r"/tasks/{id:\d+}/merge", merge_task)
    api.router.add_get(r"/tasks/{id:\d+}/compare", compare_task)

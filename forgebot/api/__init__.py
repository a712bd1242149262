"""The REST API under /api/v1: bearer tokens, JSON, server-sent events, an OpenAPI document.

`add_api(app, ctx)` mounts it on any aiohttp application (the daemon's, or a test's)."""

from __future__ import annotations

from aiohttp import web

from forgebot.api import events, openapi, routes_attempts, routes_misc, routes_tasks, routes_templates, session
from forgebot.api.auth import require_token
from forgebot.api.context import API_CONTEXT, ApiContext, worktree_settings
from forgebot.api.errors import errors

PREFIX = "/api/v1"

__all__ = ["PREFIX", "ApiContext", "add_api", "worktree_settings"]


def add_api(app: web.Application, ctx: ApiContext) -> web.Application:
    """Mount the API under /api/v1 on `app`; returns the sub-application (its router lists the routes)."""
    api = web.Application(middlewares=[errors, require_token])
    api[API_CONTEXT] = ctx
    for module in (routes_tasks, routes_attempts, routes_templates, routes_misc, events, openapi, session):
        module.add_routes(api)

    async def stop_streams(_app: web.Application) -> None:
        ctx.stopping.set()  # event streams end, so a graceful shutdown does not wait for them

    api.on_shutdown.append(stop_streams)
    app.add_subapp(PREFIX, api)
    return api

"""Bearer-token authentication for /api/v1 and the repository limits a token carries."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from forgebot.api.context import API_CONTEXT, ApiContext, repo_names
from forgebot.api.errors import ApiError, not_found
from forgebot.api.tokens import hash_secret
from forgebot.core.models import Task
from forgebot.store.tokens import ApiToken

PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})
TOUCH_INTERVAL = 60.0  # seconds between last_used_at writes for one token
TOKEN = web.RequestKey("forgebot_api_token", ApiToken)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


async def authenticate(ctx: ApiContext, header: str) -> ApiToken:
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("send a token: Authorization: Bearer <token> (create one with `forgebot tokens create`)")
    presented = hash_secret(secret)
    found = await asyncio.to_thread(ctx.tokens.by_hash, presented)
    # The lookup is by hash (an attacker cannot steer it); compare the stored hash in constant time all the same.
    if found is None or not hmac.compare_digest(found[1], presented):
        raise _unauthorized("unknown token")
    token = found[0]
    if token.revoked:
        raise _unauthorized("this token was revoked")
    now = ctx.clock()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        await asyncio.to_thread(ctx.tokens.touch, token.id, now)
    return token


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    token = await authenticate(request.app[API_CONTEXT], request.headers.get("Authorization", ""))
    request[TOKEN] = token
    return await handler(request)


def token_of(request: web.Request) -> ApiToken:
    return request[TOKEN]


def require_task_access(request: web.Request, task: Task) -> Task:
    """A token limited to other repositories does not see the task at all (404, not 403: no existence leak)."""
    if not token_of(request).allows(*repo_names(task)):
        raise not_found(f"task {task.id} not found")
    return task


def require_repo_access(request: web.Request, repo: str) -> None:
    token = token_of(request)
    if not token.allows(repo):
        raise ApiError(403, "forbidden", f"token {token.name!r} may not act on repository {repo}")

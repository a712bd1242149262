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

PUBLIC_PATHS = frozenset({"/api/v1/openapi.json", "/api/v1/session"})
# The dashboard's session cookie holds a token (HttpOnly, SameSite=Strict: forgebot/api/session.py). A write it
# authenticates must also carry this header, which a cross-site form cannot send.
SESSION_COOKIE = "forgebot_session"
WRITE_HEADER, WRITE_HEADER_VALUE = "X-Requested-With", "forgebot-dashboard"
SAFE_METHODS = frozenset({"GET", "HEAD"})
# Who reads when `api.dashboard_public` is on and no token came: every repository, nothing but GETs.
PUBLIC_READER = ApiToken(id=0, name="public", repos=(), created_at=0.0, last_used_at=None, revoked=False)
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


async def cookie_token(ctx: ApiContext, request: web.Request) -> ApiToken | None:
    """The token in the session cookie, if there is one and it is still valid."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    if not secret:
        return None
    try:
        return await authenticate(ctx, f"Bearer {secret}")
    except ApiError:
        return None


async def identify(ctx: ApiContext, request: web.Request) -> ApiToken:
    """The bearer header; else the session cookie; else, for reads when the dashboard is public, PUBLIC_READER."""
    header = request.headers.get("Authorization")
    if header is not None:
        return await authenticate(ctx, header)
    safe = request.method in SAFE_METHODS
    has_cookie = bool(request.cookies.get(SESSION_COOKIE))
    if has_cookie and not safe and request.headers.get(WRITE_HEADER) != WRITE_HEADER_VALUE:
        raise ApiError(403, "forbidden", f"a write signed in by cookie must send {WRITE_HEADER}: {WRITE_HEADER_VALUE}")
    token = await cookie_token(ctx, request) if has_cookie else None
    if token is not None:
        return token
    if safe and ctx.public_reads:
        return PUBLIC_READER
    if has_cookie:
        raise _unauthorized("the session has ended (unknown or revoked token): sign in again")
    return await authenticate(ctx, "")


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    token = await identify(request.app[API_CONTEXT], request)
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

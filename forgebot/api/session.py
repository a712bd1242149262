"""/session: the dashboard signs in by exchanging a token for an HttpOnly, SameSite=Strict cookie that the API
accepts in place of the bearer header (an EventSource cannot send headers), and signs out by clearing it."""

from __future__ import annotations

from aiohttp import web

from forgebot.api.auth import SESSION_COOKIE, authenticate, cookie_token
from forgebot.api.bodies import CreateSession, read_body
from forgebot.api.lookup import context
from forgebot.store.tokens import ApiToken

COOKIE_MAX_AGE = 30 * 24 * 3600  # a browser stays signed in this long; revoking the token ends it at once


def _session(request: web.Request, token: ApiToken | None) -> web.Response:
    body = {"authenticated": token is not None, "token": token.name if token else None,
            "public": context(request).public_reads}  # fmt: skip
    response = web.json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _https(request: web.Request) -> bool:
    # Behind a TLS-terminating proxy the scheme arrives in X-Forwarded-Proto; trusting it only adds Secure.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


async def get_session(request: web.Request) -> web.Response:
    return _session(request, await cookie_token(context(request), request))


async def create_session(request: web.Request) -> web.Response:
    body = await read_body(request, CreateSession)
    token = await authenticate(context(request), f"Bearer {body.token.strip()}")
    response = _session(request, token)
    response.set_cookie(
        SESSION_COOKIE,
        body.token.strip(),
        path="/",
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=_https(request),
    )
    return response


async def delete_session(request: web.Request) -> web.Response:
    response = _session(request, None)
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=_https(request))
    return response


def add_routes(api: web.Application) -> None:
    api.router.add_get("/session", get_session)
    api.router.add_post("/session", create_session)
    api.router.add_delete("/session", delete_session)

"""The HTTP side of the fake: serving, authentication, the request log and fault injection."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any

import jwt
from aiohttp import web

from tests.fake_github.handlers import DOCS, ApiError, Call, Handlers, Principal, Reply, route
from tests.fake_github.hooks import send
from tests.fake_github.shapes import Shapes
from tests.fake_github.state import GitHubState

REQUEST_LOG_ENV = "FAKE_GITHUB_REQUEST_LOG"  # when set, each fake appends its request log there on close


@dataclass
class Fault:
    """An injected answer for requests matching `method` ("*" = any) and `pattern` (re.search on the path)."""

    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None  # None: every time
    headers: dict[str, str]
    body: Any
    after: bool  # True: the request is processed (state changes) and then answered with the fault
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        live = self.times is None or self.hits < self.times
        return live and self.method in ("*", method) and self.pattern.search(path) is not None

    def reply(self) -> Reply:
        body = (
            self.body
            if self.body is not None
            else {"message": HTTPStatus(self.status).phrase, "documentation_url": DOCS}
        )
        return Reply(self.status, body, dict(self.headers))


@dataclass
class Slow:
    method: str
    pattern: re.Pattern[str]
    seconds: float
    times: int | None
    hits: int = 0


class FakeGitHub(GitHubState):
    """A stateful fake of GitHub's REST API on 127.0.0.1.

    `async with FakeGitHub() as gh:` serves on the running loop; `with FakeGitHub() as gh:` (or the `fake_github`
    fixture) serves from a background thread. Point PyGithub at `gh.url`. `prefix="/api/v3"` mounts it like GHES.
    """

    def __init__(self, *, prefix: str = "", port: int = 0, **state: Any) -> None:
        super().__init__(**state)
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []  # tracebacks of bugs in the fake's handlers (answered with 500)
        self.jwts: list[dict[str, Any]] = []  # verified App JWT claims, in order
        self.faults: list[Fault] = []
        self.slows: list[Slow] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- addresses

    @property
    def root(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake GitHub is not running: use `async with FakeGitHub()` or `with FakeGitHub()`")
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The API root to give PyGithub as base_url."""
        return self.root + self.prefix

    @property
    def shapes(self) -> Shapes:
        return Shapes(self, self.url, self.root)

    # ---- faults

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        after: bool = False,
    ) -> Fault:
        """Answer the next `times` matching requests with `status`; `after=True` processes them first."""
        fault = Fault(method.upper(), re.compile(path), status, times, dict(headers or {}), body, after)
        self.faults.append(fault)
        return fault

    def rate_limit(
        self,
        method: str,
        path: str,
        *,
        status: int = 403,
        reset_in: float | None = None,
        retry_after: float | None = None,
        times: int | None = 1,
    ) -> Fault:
        """A primary rate limit (`reset_in`: x-ratelimit-remaining 0 and -reset) or a secondary one (`retry_after`)."""
        headers: dict[str, str] = {}
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        if reset_in is not None:
            reset = str(int(time.time() + reset_in))
            headers |= {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
            message = "API rate limit exceeded for installation ID 1."
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        return self.fail(
            method, path, status, times=times, headers=headers, body={"message": message, "documentation_url": DOCS}
        )

    def slow(self, method: str, path: str, seconds: float, *, times: int | None = None) -> Slow:
        slow = Slow(method.upper(), re.compile(path), seconds, times)
        self.slows.append(slow)
        return slow

    # ---- request log

    def reset(self) -> None:
        """Forget recorded requests and actions (state stays)."""
        self.requests.clear()
        self.actions.clear()

    def requests_to(self, method: str, path: str) -> list[dict[str, Any]]:
        """Recorded requests with this method whose path (with query) matches `path` (re.search)."""
        return [r for r in self.requests if r["method"] == method.upper() and re.search(path, r["path"])]

    def request_log(self) -> str:
        """JSON lines of {"method", "path", "json", "status"}: the format validate_requests.py checks."""
        keys = ("method", "path", "json", "status")
        return "".join(json.dumps({k: r[k] for k in keys}) + "\n" for r in self.requests)

    def write_request_log(self, path: str | Path) -> None:
        Path(path).write_text(self.request_log(), encoding="utf-8")

    # ---- serving

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake GitHub is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def settle_hooks(self) -> None:
        """Wait until the redeliveries asked for so far have been sent and answered."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _send_outbox(self) -> None:
        while self.outbox:
            task = asyncio.create_task(send(self.outbox.pop(0), self.hook_url, self.hook_secret))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log = os.environ.get(REQUEST_LOG_ENV)
            if log:  # opt-in, to check every test's requests with validate_requests.py
                with open(log, "a", encoding="utf-8") as out:
                    out.write(self.request_log())

    async def __aenter__(self) -> FakeGitHub:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start_thread(self) -> FakeGitHub:
        """Serve from a background thread with its own event loop (for synchronous tests)."""
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fake-github", daemon=True)
        self._thread.start()
        self._loop = loop
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
        except BaseException:
            self.stop_thread()
            raise
        return self

    def stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self if self._thread is not None else self.start_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        path = self._api_path(request.path)
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.raw_path[len(self.prefix) :] if path is not None else request.raw_path,
            "json": None,
            "status": None,
            "time": time.time(),
            "auth": None,
        }
        self.requests.append(entry)
        try:
            entry["json"] = json.loads(raw) if raw else None
        except ValueError:
            reply = Reply(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        else:
            reply = await self._reply(request, path, entry)
        self._send_outbox()
        entry["status"] = reply.status
        headers = {**self._rate_headers(), **reply.headers}
        if reply.body is None:
            return web.Response(status=reply.status, headers=headers)
        if isinstance(reply.body, str):
            return web.Response(status=reply.status, text=reply.body, headers=headers, content_type="text/html")
        return web.json_response(reply.body, status=reply.status, headers=headers)

    def _api_path(self, path: str) -> str | None:
        """The path below the API root; GitHub Enterprise serves GraphQL beside /api/v3, at /api/graphql."""
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix) :]
        if self.prefix.endswith("/v3") and path == self.prefix[: -len("/v3")] + "/graphql":
            return "/graphql"
        return None

    async def _reply(self, request: web.Request, path: str | None, entry: dict[str, Any]) -> Reply:
        method = request.method
        for slow in self.slows:
            if (
                slow.method in ("*", method)
                and slow.pattern.search(path or "")
                and (slow.times is None or slow.hits < slow.times)
            ):
                slow.hits += 1
                await asyncio.sleep(slow.seconds)
        fault = next((f for f in self.faults if f.matches(method, path or "")), None)
        if fault is not None:
            fault.hits += 1
            if not fault.after:
                return fault.reply()
        reply = self._dispatch(request, path, entry)
        return fault.reply() if fault is not None else reply

    def _dispatch(self, request: web.Request, path: str | None, entry: dict[str, Any]) -> Reply:
        try:
            found = route(request.method, path) if path is not None else None
            if found is None:
                raise ApiError(404, "Not Found")
            handler, auth, params = found
            principal = self._authenticate(request.headers.get("Authorization"), auth)
            entry["auth"] = principal.login
            call = Call(request.method, path or "", params, dict(request.query), entry["json"], principal)
            return handler(Handlers(self, self.shapes), call)
        except ApiError as exc:
            return Reply(exc.status, exc.body())
        except Exception:
            self.errors.append(traceback.format_exc())
            return Reply(500, {"message": "fake GitHub: handler error (see FakeGitHub.errors)"})

    def _authenticate(self, header: str | None, auth: str) -> Principal:
        scheme, _, value = (header or "").partition(" ")
        if not value or scheme.lower() not in ("token", "bearer"):
            raise ApiError(401, "Requires authentication")
        if scheme.lower() == "bearer" and value.count(".") == 2:
            principal = self._app(value)
        else:
            token = self.tokens.get(value)
            if token is None or (token.expires_at is not None and token.expires_at <= time.time()):
                raise ApiError(401, "Bad credentials")
            principal = Principal(token.login, token=token)
        if auth == "app" and principal.app_id is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        if auth == "token" and principal.app_id is not None:
            raise ApiError(401, "Bad credentials")
        return principal

    def _app(self, token: str) -> Principal:
        """An App's JWT: RS256, signed by a registered app's key, iss = its id, at most 10 minutes long."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app = self.apps.get(int(claims.get("iss", 0)))
            if app is None:
                raise ApiError(401, "A JSON web token could not be decoded")
            claims = jwt.decode(token, app.public_key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        if claims["exp"] - claims["iat"] > 600:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        self.jwts.append(claims)
        return Principal(f"{app.slug}[app]", app_id=app.id)

    @staticmethod
    def _rate_headers() -> dict[str, str]:
        reset = str(int(time.time()) + 3600)
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": reset,
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
        }


def run_in_thread(**options: Any) -> FakeGitHub:
    """A FakeGitHub (same keyword options) served from a background thread; `.stop_thread()` or use `with`."""
    return FakeGitHub(**options).start_thread()

"""A REST API server for tests: a real engine (serving everything, like the daemon) and store, the API mounted
on a real aiohttp server on 127.0.0.1, fake agent programs, and every response checked against the OpenAPI
document as it goes out.

    async with ApiServer.start(tmp_path) as server:
        token = server.token("ci")
        async with server.session(token) as http:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from forgebot.api import PREFIX, ApiContext, add_api
from forgebot.api.dashboard import add_dashboard
from forgebot.api.openapi import document
from forgebot.api.tokens import hash_secret, new_secret
from forgebot.app import engine_settings
from forgebot.config import Settings
from forgebot.engine.engine import Engine
from forgebot.engine.layout import Layout
from forgebot.engine.workspaces import Workspaces
from forgebot.store import SqlStore, open_store
from tests.support import FAKE_AGENT, PYTHON, make_repo

DOC_URI = "urn:forgebot:openapi"


def fake(*steps: str, **extra: Any) -> dict[str, Any]:
    return {"executor": "command", "command": [PYTHON, FAKE_AGENT, *steps], **extra}


AGENTS: dict[str, Any] = {
    "fast": fake("sleep", "0.2", "write", "fast.txt", "fast", "usage", "100", "20",
                 price={"input_per_mtok": 1.0, "output_per_mtok": 2.0}),
    "slow": fake("sleep", "0.8", "write", "slow.txt", "a\nb\nc"),
    "broken": fake("write", "app.py", "def answer() -> int:\n    return 0"),
    "idle": fake("say", "nothing to do"),
    "chatty": fake("say", "using s3cret-in-logs now", "write", "chatty.txt", "x"),
    "stuck": fake("hang"),
}  # fmt: skip


def settings(**overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "agents": AGENTS,
        "defaults": {"agents": ["fast"]},
        "checks": [{"name": "tests", "run": [PYTHON, "-m", "unittest", "-q"], "timeout": 60}],
        "limits": {"attempt_timeout": "2m"},
        **overrides,
    }
    return Settings.model_validate(data)


# -- conformance: every response the tests cause is checked against the document -----------------------------


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Conformance:
    def __init__(self) -> None:
        self.doc = document()
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
        self.problems: list[str] = []
        self.seen: set[tuple[str, str, int]] = set()

    def schema_pointer(self, template: str, method: str, status: int, content_type: str) -> str | None:
        """Where the schema of this response sits in the document (a problem is recorded when nowhere)."""
        operation = self.doc["paths"].get(template, {}).get(method)
        if operation is None:
            self.problems.append(f"{method.upper()} {template}: not in the OpenAPI document")
            return None
        response = operation["responses"].get(str(status))
        if response is None:
            self.problems.append(f"{method.upper()} {template}: status {status} not documented")
            return None
        pointer = f"/paths/{_escape(template)}/{method}/responses/{status}"
        if "$ref" in response:
            pointer = response["$ref"].removeprefix("#")
            response = self.doc["components"]["responses"][pointer.rsplit("/", 1)[1]]
        if content_type not in response.get("content", {}):
            self.problems.append(f"{method.upper()} {template} {status}: content type {content_type} not documented")
            return None
        return f"{pointer}/content/{_escape(content_type)}/schema"

    def check(self, template: str, method: str, status: int, content_type: str, body: Any) -> None:
        self.seen.add((method, template, status))
        pointer = self.schema_pointer(template, method, status, content_type)
        if pointer is None or content_type != "application/json":
            return
        validator = Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=self.registry)
        for error in validator.iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path)
            self.problems.append(f"{method.upper()} {template} {status} at {where or 'top'}: {error.message}")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource
        if resource is None or not request.path.startswith(PREFIX):
            return response
        template = resource.canonical.removeprefix(PREFIX)
        content_type = response.content_type
        body: Any = None
        if isinstance(response, web.Response) and content_type == "application/json":
            assert isinstance(response.body, bytes)
            body = json.loads(response.body)
        self.check(template, request.method.lower(), response.status, content_type, body)
        return response


# -- the server ---------------------------------------------------------------------------------------------


@dataclass
class ApiServer:
    root: Path
    repo: Path
    store: SqlStore
    engine: Engine
    ctx: ApiContext
    api: web.Application
    url: str
    conformance: Conformance
    names: list[str] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        root: Path,
        config: Settings | None = None,
        heartbeat: float = 0.2,
        *,
        dashboard: bool = False,
        **extra: Any,
    ) -> AsyncIterator[ApiServer]:
        """`extra`: more ApiContext fields (web_url, public_reads...); `dashboard`: serve the page too, with the
        GitHub links of the bot's store."""
        config = config or settings()
        repo = make_repo(root / "repo")
        store = open_store(f"sqlite:///{root / 'data' / 'forgebot.db'}")
        engine = Engine(
            store,
            Workspaces(),
            settings=dataclasses.replace(engine_settings(config), kill_grace=0.5, cancel_poll=0.1),
            layout=Layout(state_root=str(root / "data")),
            environ={"PATH": os.environ["PATH"]},
            serve_all=True,
        )
        if dashboard:
            extra.setdefault("bot_store", store.bot_store())
        ctx = ApiContext(
            engine, store.token_store(), config, heartbeat=heartbeat, secrets=("s3cret-in-logs",), **extra
        )
        conformance = Conformance()
        app = web.Application(middlewares=[conformance.middleware])
        api = add_api(app, ctx)
        if dashboard:
            add_dashboard(app)
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await engine.start()
        server = cls(root, repo, store, engine, ctx, api, f"http://127.0.0.1:{port}", conformance)
        try:
            yield server
        finally:
            await runner.cleanup()
            await engine.shutdown(grace=0)
            store.close()
        assert not conformance.problems, "responses that do not match the OpenAPI document:\n" + "\n".join(
            conformance.problems
        )

    def token(self, name: str, repos: tuple[str, ...] = ()) -> str:
        secret = new_secret()
        self.ctx.tokens.create(name=name, token_hash=hash_secret(secret), repos=repos, now=1.0)
        return secret

    def session(self, token: str | None) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return aiohttp.ClientSession(base_url=self.url, headers=headers)

    async def until_idle(self, task_id: int, timeout: float = 60) -> None:
        await asyncio.wait_for(self.engine.wait_task(task_id), timeout)

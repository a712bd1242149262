"""Token authentication of the REST API: missing, malformed, unknown, revoked and repository-limited tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forgebot.api.tokens import PREFIX, hash_secret, new_secret
from tests.api_support import ApiServer
from tests.support import make_repo


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer.start(tmp_path) as server:
        yield server


def test_secrets_are_prefixed_random_and_hashed() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith(PREFIX) and len(first) > 40 and first != second
    assert hash_secret(first) == hash_secret(first) != hash_secret(second)
    assert first not in hash_secret(first) and len(hash_secret(first)) == 64


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "send a token"),
        ("Basic dXNlcjpwYXNz", "send a token"),
        ("Bearer", "send a token"),
        ("Bearer fgb_not-a-real-token", "unknown token"),
    ],
)
async def test_requests_without_a_valid_token_get_401(server: ApiServer, header: str | None, message: str) -> None:
    server.token("real")
    async with server.session(None) as http:
        headers = {"Authorization": header} if header else {}
        for method, path in (("GET", "/api/v1/tasks"), ("POST", "/api/v1/tasks"), ("GET", "/api/v1/events")):
            async with http.request(method, path, headers=headers) as response:
                assert response.status == 401
                body = await response.json()
                assert body["error"]["code"] == "unauthorized" and message in body["error"]["message"]


async def test_a_valid_token_works_and_its_use_is_recorded(server: ApiServer) -> None:
    token = server.token("ci")
    async with server.session(token) as http, http.get("/api/v1/tasks") as response:
        assert response.status == 200 and await response.json() == {"tasks": []}
    (stored,) = server.ctx.tokens.list()
    assert stored.last_used_at is not None and stored.last_used_at > 1.0


async def test_a_revoked_token_is_refused(server: ApiServer) -> None:
    token = server.token("old")
    server.ctx.tokens.revoke("old")
    async with server.session(token) as http, http.get("/api/v1/tasks") as response:
        assert response.status == 401
        assert (await response.json())["error"]["message"] == "this token was revoked"


async def test_the_openapi_document_needs_no_token(server: ApiServer) -> None:
    async with server.session(None) as http, http.get("/api/v1/openapi.json") as response:
        assert response.status == 200
        assert (await response.json())["openapi"].startswith("3.1")


async def test_a_repository_limited_token_sees_and_touches_only_its_repositories(server: ApiServer) -> None:
    other = make_repo(server.root / "other")
    full = server.token("admin")
    limited = server.token("team", repos=(str(server.repo),))
    async with server.session(full) as http, http.post(
        "/api/v1/tasks", json={"title": "Elsewhere", "repo": str(other), "agents": ["fast"], "start": False}
    ) as response:
        assert response.status == 201, await response.text()
        foreign = (await response.json())["id"]
    async with server.session(limited) as http:
        async with http.post(
            "/api/v1/tasks", json={"title": "Mine", "repo": str(server.repo), "agents": ["fast"], "start": False}
        ) as response:
            assert response.status == 201
            mine = (await response.json())["id"]
        async with http.post("/api/v1/tasks", json={"title": "No", "repo": str(other), "agents": ["fast"]}) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "forbidden"
        # a path that climbs out of the allowed repository is judged by where it lands
        sneaky = f"{server.repo}/../other"
        async with http.post("/api/v1/tasks", json={"title": "No", "repo": sneaky, "agents": ["fast"]}) as response:
            assert response.status == 403
        async with http.get("/api/v1/tasks") as response:
            assert [t["id"] for t in (await response.json())["tasks"]] == [mine]
        foreign_attempt = (await asyncio.to_thread(server.store.list_attempts, task_id=foreign))[0].id
        for method, path in (
            ("GET", f"/api/v1/tasks/{foreign}"),
            ("POST", f"/api/v1/tasks/{foreign}/start"),
            ("POST", f"/api/v1/tasks/{foreign}/cancel"),
            ("DELETE", f"/api/v1/tasks/{foreign}"),
            ("GET", f"/api/v1/tasks/{foreign}/compare"),
            ("GET", f"/api/v1/attempts/{foreign_attempt}"),
            ("POST", f"/api/v1/attempts/{foreign_attempt}/retry"),
            ("GET", f"/api/v1/progress?task={foreign}"),
        ):
            async with http.request(method, path) as response:
                assert response.status == 404, (method, path)
        async with http.post("/api/v1/worktrees/cleanup", json={}) as response:
            assert response.status == 403
        async with http.get("/api/v1/progress") as response:
            assert (await response.json())["tasks"] == 1
    # the foreign task was never touched
    assert [a.status.value for a in server.store.list_attempts(task_id=foreign)] == ["queued"]

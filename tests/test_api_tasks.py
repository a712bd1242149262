"""The REST API's task endpoints on a real server, real repositories and real agent processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api_support import ApiServer
from tests.support import git


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer.start(tmp_path) as server:
        yield server


@pytest.fixture
async def http(server: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with server.session(server.token("test")) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, expect: int, **kwargs: Any) -> Any:
    async with http.request(method, "/api/v1" + path, **kwargs) as response:
        body = await response.json()
        assert response.status == expect, body
        return body


async def create(http: aiohttp.ClientSession, server: ApiServer, expect: int = 201, **fields: Any) -> Any:
    return await call(http, "POST", "/tasks", expect, json={"title": "Add things", "repo": str(server.repo), **fields})


async def test_create_runs_agents_and_get_shows_attempts_and_derived_status(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    task = await create(http, server, agents=["fast", "broken"], description="Please")
    assert task["status"] in ("queued", "running") and task["source"] == "api"
    assert [a["agent"] for a in task["attempts"]] == ["fast", "broken"]
    assert task["checks"][0]["name"] == "tests"
    await server.until_idle(task["id"])
    done = await call(http, "GET", f"/tasks/{task['id']}", 200)
    assert done["status"] == "succeeded"
    by_agent = {a["agent"]: a for a in done["attempts"]}
    assert by_agent["fast"]["status"] == "succeeded" and by_agent["fast"]["usage"]["tokens_in"] == 100
    assert by_agent["broken"]["status"] == "failed" and "checks failed" in by_agent["broken"]["error"]
    assert by_agent["fast"]["diff"] == {"files": 1, "insertions": 1, "deletions": 0}


async def test_create_uses_the_configured_default_agents(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await create(http, server, start=False)
    assert [a["agent"] for a in task["attempts"]] == ["fast"]


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ("not json", 400, "bad_json", "not valid JSON"),
        ("[1, 2]", 400, "bad_json", "must be a JSON object"),
        ('{"title": "x"}', 422, "invalid", "repo: Field required"),
        ('{"title": "", "repo": "/x"}', 422, "invalid", "title: String should have at least 1 character"),
        ('{"title": "x", "repo": "/x", "agents": "fast"}', 422, "invalid", "agents: Input should be a valid list"),
        ('{"title": "x", "repo": "/x", "strategy": "random"}', 422, "invalid", "strategy: Input should be"),
        ('{"title": "x", "repo": "/x", "colour": "red"}', 422, "invalid", "colour: Extra inputs are not permitted"),
        ('{"title": "x", "repo": "/x", "quality_threshold": 2}', 422, "invalid", "quality_threshold: Input should"),
        ('{"title": "x", "repo": "relative/path"}', 422, "invalid", "repo: must be an absolute path"),
        ('{"title": "x", "repo": "/no/such/repo"}', 422, "repository", "/no/such/repo does not exist"),
    ],
)
async def test_create_rejects_bad_bodies_clearly(
    server: ApiServer, http: aiohttp.ClientSession, body: str, status: int, code: str, message: str
) -> None:
    error = await call(http, "POST", "/tasks", status, data=body, headers={"Content-Type": "application/json"})
    assert error["error"]["code"] == code and message in error["error"]["message"]
    assert await asyncio.to_thread(server.store.list_tasks) == []  # nothing was created


async def test_unknown_agent_and_unknown_base_are_422_and_create_nothing(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    error = await create(http, server, 422, agents=["fast", "nobody"])
    assert error["error"] == {
        "code": "unknown_agent",
        "message": error["error"]["message"],
    } and "unknown agent 'nobody'" in error["error"]["message"]
    error = await create(http, server, 422, base="no-such-branch")
    assert "base branch 'no-such-branch' does not exist" in error["error"]["message"]
    assert await asyncio.to_thread(server.store.list_tasks) == []


async def test_a_task_created_with_start_false_waits_for_start(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await create(http, server, agents=["fast"], start=False)
    await asyncio.sleep(0.4)  # several engine poll rounds
    assert (await call(http, "GET", f"/tasks/{task['id']}", 200))["status"] == "queued"
    started = await call(http, "POST", f"/tasks/{task['id']}/start", 200)
    assert started["id"] == task["id"]
    await server.until_idle(task["id"])
    assert (await call(http, "GET", f"/tasks/{task['id']}", 200))["status"] == "succeeded"


async def test_list_filters_by_repo_status_and_limit(server: ApiServer, http: aiohttp.ClientSession) -> None:
    first = await create(http, server, agents=["fast"])
    await server.until_idle(first["id"])
    second = await create(http, server, agents=["fast"], start=False)
    everything = await call(http, "GET", "/tasks", 200)
    assert [t["id"] for t in everything["tasks"]] == [second["id"], first["id"]]
    assert [t["id"] for t in (await call(http, "GET", "/tasks?status=succeeded", 200))["tasks"]] == [first["id"]]
    assert [t["id"] for t in (await call(http, "GET", "/tasks?limit=1", 200))["tasks"]] == [second["id"]]
    assert (await call(http, "GET", "/tasks?repo=/elsewhere", 200))["tasks"] == []
    assert len((await call(http, "GET", f"/tasks?repo={first['repo']}", 200))["tasks"]) == 2
    error = await call(http, "GET", "/tasks?status=done", 422)
    assert "unknown task status 'done'" in error["error"]["message"]
    assert "limit" in (await call(http, "GET", "/tasks?limit=zero", 422))["error"]["message"]


async def test_unknown_ids_are_404(http: aiohttp.ClientSession) -> None:
    for method, path in (
        ("GET", "/tasks/99"),
        ("POST", "/tasks/99/start"),
        ("POST", "/tasks/99/cancel"),
        ("DELETE", "/tasks/99"),
        ("GET", "/tasks/99/compare"),
        ("POST", "/tasks/99/attempts"),
        ("GET", "/attempts/99"),
        ("POST", "/attempts/99/cancel"),
        ("POST", "/attempts/99/retry"),
        ("POST", "/attempts/99/followup"),
    ):
        error = await call(http, method, path, 404)
        assert error["error"]["code"] == "not_found" and "99 not found" in error["error"]["message"]


async def test_ids_no_row_can_have_are_404_in_paths_and_422_in_bodies(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    for bad in ("0", str(2**63), str(10**30), "9" * 5000):
        for method, path in (
            ("GET", f"/tasks/{bad}"),
            ("POST", f"/tasks/{bad}/merge"),
            ("POST", f"/tasks/{bad}/attempts"),
            ("GET", f"/attempts/{bad}"),
            ("POST", f"/attempts/{bad}/retry"),
        ):
            error = await call(http, method, path, 404)
            assert error["error"]["code"] == "not_found" and len(error["error"]["message"]) < 100, (method, bad)
    task = await create(http, server, start=False)
    for attempt in (0, -1, 2**63, 10**30):
        error = await call(http, "POST", f"/tasks/{task['id']}/merge", 422, json={"attempt": attempt})
        assert error["error"]["message"].startswith("attempt: Input should be")
    error = await call(http, "POST", f"/tasks/{task['id']}/merge", 404, json={"attempt": 2**63 - 1})
    assert error["error"]["code"] == "not_found"
    for ids in ([2**63], [1, 0]):
        error = await call(http, "POST", "/compare", 422, json={"task_ids": ids})
        assert error["error"]["message"].startswith("task_ids.")


async def test_cancel_stops_a_running_task_and_delete_refuses_until_then(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    task = await create(http, server, agents=["stuck"])
    for _ in range(200):
        attempt = (await call(http, "GET", f"/tasks/{task['id']}", 200))["attempts"][0]
        if attempt["status"] == "running":
            break
        await asyncio.sleep(0.05)
    error = await call(http, "DELETE", f"/tasks/{task['id']}", 409)
    assert error["error"]["code"] == "conflict" and "cancel it first" in error["error"]["message"]
    cancelled = await call(http, "POST", f"/tasks/{task['id']}/cancel", 200)
    assert cancelled["status"] == "cancelled" and cancelled["attempts"][0]["status"] == "cancelled"
    worktree = cancelled["attempts"][0]["worktree"]
    deleted = await call(http, "DELETE", f"/tasks/{task['id']}", 200)
    assert deleted == {"task_id": task["id"], "deleted_attempts": [cancelled["attempts"][0]["id"]]}
    assert not Path(worktree).exists()
    assert git(server.repo, "branch", "--list", "forge/*") == ""
    await call(http, "GET", f"/tasks/{task['id']}", 404)


async def test_compare_and_merge_the_winner(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await create(http, server, agents=["fast", "slow", "broken"])
    await server.until_idle(task["id"])
    comparison = await call(http, "GET", f"/tasks/{task['id']}/compare", 200)
    assert comparison["winner"]["agent"] == "fast" and comparison["ranking"][0]["rank"] == 1
    assert comparison["total_cost"] == pytest.approx(0.00014)
    by_agent = {r["agent"]: r for r in comparison["ranking"]}
    assert by_agent["broken"]["rank"] == 3 and "1 of 1 check failed: tests" in by_agent["broken"]["reasons"]
    error = await call(http, "POST", f"/tasks/{task['id']}/merge", 422, json={"attempt": "1"})
    assert "attempt: Input should be a valid integer" in error["error"]["message"]
    merged = await call(
        http, "POST", f"/tasks/{task['id']}/merge", 200, json={"attempt": comparison["winner"]["attempt_id"]}
    )
    assert merged["base_branch"] == "main" and not merged["rebased"]
    assert git(server.repo, "rev-parse", "main") == merged["new_sha"]
    assert git(server.repo, "show", "main:fast.txt") == "fast"
    error = await call(
        http, "POST", f"/tasks/{task['id']}/merge", 409, json={"attempt": by_agent["slow"]["attempt_id"]}
    )
    assert error["error"]["code"] == "merge_refused" and "moved" in error["error"]["message"]


async def test_unknown_endpoints_and_methods_answer_in_json(http: aiohttp.ClientSession) -> None:
    error = await call(http, "GET", "/nope", 404)
    assert error == {"error": {"code": "not_found", "message": "Not Found: GET /api/v1/nope"}}
    error = await call(http, "PUT", "/tasks", 405)
    assert error["error"]["code"] == "method_not_allowed"

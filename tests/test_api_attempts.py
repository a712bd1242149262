"""The REST API's attempt, comparison, worktree and progress endpoints on a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api_support import ApiServer
from tests.test_api_tasks import call, create


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer.start(tmp_path) as server:
        yield server


@pytest.fixture
async def http(server: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with server.session(server.token("test")) as session:
        yield session


async def finished_task(server: ApiServer, http: aiohttp.ClientSession, *agents: str) -> Any:
    task = await create(http, server, agents=list(agents))
    await server.until_idle(task["id"])
    return await call(http, "GET", f"/tasks/{task['id']}", 200)


async def test_fork_adds_an_attempt_with_another_agent_and_model(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    task = await finished_task(server, http, "fast")
    forked = await call(http, "POST", f"/tasks/{task['id']}/attempts", 201, json={"agent": "slow", "model": "m-2"})
    assert forked["agent"] == "slow" and forked["model"] == "m-2" and forked["branch"] == f"forge/{task['id']}-slow"
    again = await call(http, "POST", f"/tasks/{task['id']}/attempts", 201, json={"agent": "fast", "start": False})
    assert again["branch"] == f"forge/{task['id']}-fast-2" and again["status"] == "queued"
    error = await call(http, "POST", f"/tasks/{task['id']}/attempts", 422, json={"agent": "ghost"})
    assert error["error"]["code"] == "unknown_agent"
    error = await call(http, "POST", f"/tasks/{task['id']}/attempts", 422, json={})
    assert "agent: Field required" in error["error"]["message"]
    error = await call(
        http, "POST", f"/tasks/{task['id']}/attempts", 400, data="{", headers={"Content-Type": "application/json"}
    )
    assert error["error"]["code"] == "bad_json"


async def test_get_attempt_has_log_tail_with_secrets_redacted(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await finished_task(server, http, "chatty")
    attempt = await call(http, "GET", f"/attempts/{task['attempts'][0]['id']}", 200)
    assert "using *** now" in attempt["log_tail"] and "s3cret-in-logs" not in attempt["log_tail"]
    assert attempt["status"] == "succeeded" and attempt["elapsed"] > 0


async def test_cancel_then_retry_then_followup(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await create(http, server, agents=["stuck", "fast"])
    stuck_id = task["attempts"][0]["id"]
    cancelled = await call(http, "POST", f"/attempts/{stuck_id}/cancel", 200)
    assert cancelled["status"] == "cancelled"
    await server.until_idle(task["id"])
    fast_id = task["attempts"][1]["id"]
    error = await call(http, "POST", f"/attempts/{fast_id}/retry", 409)
    assert "only a finished attempt that did not succeed can be retried" in error["error"]["message"]
    retried = await call(http, "POST", f"/attempts/{stuck_id}/retry", 200)
    assert retried["status"] == "queued" and retried["error"] is None
    await call(http, "POST", f"/attempts/{stuck_id}/cancel", 200)
    error = await call(http, "POST", f"/attempts/{fast_id}/followup", 422, json={"text": ""})
    assert "text: String should have at least 1 character" in error["error"]["message"]
    queued = await call(http, "POST", f"/attempts/{fast_id}/followup", 200, json={"text": "Also add docs"})
    assert queued["status"] == "queued" and queued["followup_pending"]
    await server.until_idle(task["id"])
    done = await call(http, "GET", f"/attempts/{fast_id}", 200)
    assert done["status"] == "succeeded" and not done["followup_pending"]


async def test_delete_attempts_by_status(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await finished_task(server, http, "fast", "broken", "idle")
    statuses = {a["agent"]: a["status"] for a in task["attempts"]}
    assert statuses == {"fast": "succeeded", "broken": "failed", "idle": "failed"}
    error = await call(http, "DELETE", "/attempts", 422)
    assert "status: name at least one status" in error["error"]["message"]
    error = await call(http, "DELETE", "/attempts?status=running", 422)
    assert "only finished attempts can be deleted, not running ones" in error["error"]["message"]
    error = await call(http, "DELETE", "/attempts?status=broken", 422)
    assert "unknown status 'broken'" in error["error"]["message"]
    await call(http, "DELETE", "/attempts?status=failed&task=99", 404)
    deleted = await call(http, "DELETE", f"/attempts?status=failed&task={task['id']}", 200)
    assert sorted(a["agent"] for a in deleted["deleted"]) == ["broken", "idle"]
    assert all(not Path(a["worktree"]).exists() for a in deleted["deleted"])
    left = await call(http, "GET", f"/tasks/{task['id']}", 200)
    assert [a["agent"] for a in left["attempts"]] == ["fast"]
    assert (await call(http, "DELETE", "/attempts?status=failed", 200))["deleted"] == []


async def test_compare_several_tasks(server: ApiServer, http: aiohttp.ClientSession) -> None:
    first = await finished_task(server, http, "fast", "slow")
    second = await finished_task(server, http, "broken")
    body = await call(http, "POST", "/compare", 200, json={"task_ids": [second["id"], first["id"]]})
    assert [c["task_id"] for c in body["comparisons"]] == [second["id"], first["id"]]
    assert body["comparisons"][0]["winner"] is None and body["comparisons"][1]["winner"]["agent"] == "fast"
    assert body["comparisons"][1]["speedup"] is not None
    await call(http, "POST", "/compare", 404, json={"task_ids": [first["id"], 99]})
    error = await call(http, "POST", "/compare", 422, json={"task_ids": []})
    assert "task_ids" in error["error"]["message"]


async def test_worktrees_list_and_cleanup(server: ApiServer, http: aiohttp.ClientSession) -> None:
    task = await finished_task(server, http, "fast", "slow")
    listed = (await call(http, "GET", "/worktrees", 200))["worktrees"]
    assert sorted(w["agent"] for w in listed) == ["fast", "slow"] and all(w["bytes"] > 0 for w in listed)
    error = await call(http, "POST", "/worktrees/cleanup", 422, json={"older_than": "soon"})
    assert "older_than" in error["error"]["message"]
    kept = await call(http, "POST", "/worktrees/cleanup", 200, json={"older_than": "1h"})
    assert kept["removed"] == [] and kept["kept"] == 2
    dry = await call(http, "POST", "/worktrees/cleanup", 200, json={"dry_run": True})
    assert len(dry["removed"]) == 2 and dry["dry_run"] and all(Path(p).exists() for p in dry["removed"])
    done = await call(http, "POST", "/worktrees/cleanup", 200)
    assert sorted(done["removed"]) == sorted(w["path"] for w in listed) and done["bytes_after"] < done["bytes_before"]
    assert (await call(http, "GET", "/worktrees", 200))["worktrees"] == []
    assert (await call(http, "GET", f"/tasks/{task['id']}", 200))["status"] == "succeeded"


async def test_progress_over_tasks_and_repository(server: ApiServer, http: aiohttp.ClientSession) -> None:
    empty = await call(http, "GET", "/progress", 200)
    assert empty["total"] == 0 and empty["percentage"] == 100.0
    done = await finished_task(server, http, "fast", "broken")
    waiting = await create(http, server, agents=["fast", "slow"], start=False)
    both = await call(http, "GET", f"/progress?task={done['id']}&task={waiting['id']}", 200)
    assert both == {
        "tasks": 2,
        "total": 4,
        "queued": 2,
        "in_progress": 0,
        "completed": 2,
        "succeeded": 1,
        "failed": 1,
        "percentage": 50.0,
    }
    assert await call(http, "GET", f"/progress?task={done['id']},{waiting['id']}", 200) == both
    assert await call(http, "GET", f"/progress?repo={done['repo']}", 200) == both
    assert (await call(http, "GET", f"/progress?task={done['id']}", 200))["percentage"] == 100.0
    await call(http, "GET", "/progress?task=99", 404)
    await call(http, "GET", "/progress?task=x", 422)
    await call(http, "GET", f"/progress?task=1&repo={done['repo']}", 422)
    await asyncio.sleep(0)

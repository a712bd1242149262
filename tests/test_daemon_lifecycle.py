"""The daemon's health endpoints and its graceful stop, through the real app on loopback against the fake GitHub."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp

from forgebot.core.models import AttemptStatus
from forgebot.store import open_store
from tests import payloads
from tests.bot_harness import BotHarness, fake_agent

S = AttemptStatus


async def _get(h: BotHarness, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(h.url.removesuffix("/webhook") + path) as answer:
        return answer.status, await answer.json()


def _attempts(data: Path) -> list[tuple[str, S]]:
    store = open_store(f"sqlite:///{data / 'forgebot.db'}")
    try:
        return [(a.agent, a.status) for a in store.list_attempts()]
    finally:
        store.close()


async def _label_and_wait_running(h: BotHarness, agent: str) -> None:
    assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, f"forge:{agent}", "alice")) == 202
    for _ in range(400):
        if any(a.status is S.RUNNING and a.pid for a in await asyncio.to_thread(h.daemon.store.list_attempts)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the attempt never ran")


# ---- /healthz and /readyz


async def test_ready_when_the_store_and_github_answer(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        assert await _get(h, "/healthz") == (200, {"status": "alive"})
        assert await _get(h, "/readyz") == (200, {"status": "ready"})
        assert h.gh.requests_to("GET", r"/rate_limit$")  # GitHub was asked


async def test_not_ready_naming_github_when_it_answers_5xx(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.fail("GET", r"/rate_limit$", 502, times=None)
        status, body = await _get(h, "/readyz")
        assert (status, body) == (503, {"status": "not ready", "problems": {"github": "status 502"}})
        assert await _get(h, "/healthz") == (200, {"status": "alive"})  # alive all the same


async def test_not_ready_naming_the_store_when_the_database_is_gone(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.daemon.store.close()  # drops pooled connections; the next one finds no database
        shutil.rmtree(tmp_path / "data")
        status, body = await _get(h, "/readyz")
        assert status == 503 and body["status"] == "not ready"
        assert list(body["problems"]) == ["store"] and body["problems"]["store"]


# ---- graceful stop


async def test_an_attempt_finishing_within_the_grace_succeeds_and_its_final_comment_is_posted(tmp_path: Path) -> None:
    agents = {"claude": fake_agent("sleep", "1.5", "write", "slug.py", "def slugify(s): return s")}
    async with BotHarness.start(tmp_path, agents=agents, grace=8) as h:
        await _label_and_wait_running(h, "claude")
        stopping = asyncio.create_task(h.daemon.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done()
        assert await _get(h, "/readyz") == (503, {"status": "shutting down"})
        late = payloads.labeled(h.repo_payload, 1, "forge:codex", "alice")
        assert await h.deliver("issues", late, delivery="late-1") == 503  # GitHub keeps it for a redelivery
        await stopping
        assert _attempts(tmp_path / "data") == [("claude", S.SUCCEEDED)]
        [comment] = h.comments()
        assert "**succeeded**" in comment and "claude wins" in comment  # the final edit, with the comparison


async def test_an_attempt_exceeding_the_grace_is_interrupted_and_reported_within_a_bounded_stop(
    tmp_path: Path,
) -> None:
    agents = {"claude": fake_agent("sleep", "60", "write", "slug.py", "x = 1")}
    grace = 2.0
    async with BotHarness.start(tmp_path, agents=agents, grace=grace) as h:
        await _label_and_wait_running(h, "claude")
        started = time.monotonic()
        await h.daemon.stop()
        took = time.monotonic() - started
        assert _attempts(tmp_path / "data") == [("claude", S.INTERRUPTED)]
        [comment] = h.comments()
        assert "interrupted" in comment
        assert took < grace + 15  # the grace, then killing the agent's process group (seconds, not minutes)


async def test_a_rate_limited_github_cannot_hold_up_the_stop(tmp_path: Path) -> None:
    agents = {"claude": fake_agent("sleep", "60", "write", "slug.py", "x = 1")}
    async with BotHarness.start(tmp_path, agents=agents, grace=1) as h:
        await _label_and_wait_running(h, "claude")
        # Every edit from now on is told to wait five minutes (the client would wait up to 15).
        h.gh.rate_limit("PATCH", r"/issues/comments/\d+$", status=429, retry_after=300, times=None)
        started = time.monotonic()
        await h.daemon.stop()
        assert time.monotonic() - started < 60
        assert _attempts(tmp_path / "data") == [("claude", S.INTERRUPTED)]

"""forgebot.sdk.ForgeClient against a real API server: typed results, waits, errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forgebot.sdk import (
    Attempt,
    AuthError,
    ConflictError,
    ForgeAPIError,
    ForgeClient,
    ForgeError,
    ForgeTimeoutError,
    NotFoundError,
    Task,
)
from forgebot.sdk.sse import RawEvent, SseParser
from tests.api_support import ApiServer


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer.start(tmp_path) as server:
        yield server


@pytest.fixture
async def forge(server: ApiServer) -> AsyncIterator[ForgeClient]:
    async with ForgeClient(server.url, server.token("sdk"), poll_interval=0.1) as client:
        yield client


async def test_two_agents_end_to_end(server: ApiServer, forge: ForgeClient) -> None:
    task = await forge.tasks.create("Add things", repo=str(server.repo), agents=["fast", "broken"])
    assert isinstance(task, Task) and [a.agent for a in task.attempts] == ["fast", "broken"]
    done = await forge.attempts.wait_for_completion(task_id=task.id, timeout=60)
    assert isinstance(done, Task) and done.status == "succeeded" and done.finished
    fast, broken = done.attempts
    assert fast.status == "succeeded" and fast.usage.tokens_in == 100 and fast.diff.files == 1
    assert broken.status == "failed" and not broken.checks[0].passed
    comparison = await forge.attempts.compare(task.id)
    assert comparison.winner is not None and comparison.winner.agent == "fast"
    assert [r.agent for r in comparison.ranking] == ["fast", "broken"]
    assert comparison.total_cost == pytest.approx(0.00014)
    assert [c.task_id for c in await forge.attempts.compare_many([task.id])] == [task.id]
    progress = await forge.progress(task_ids=[task.id])
    assert (progress.total, progress.succeeded, progress.failed, progress.percentage) == (2, 1, 1, 100.0)
    assert (await forge.progress(repo=task.repo)).total == 2
    deleted = await forge.attempts.delete_where(status="failed")
    assert [a.id for a in deleted] == [broken.id]
    assert [a.agent for a in (await forge.tasks.get(task.id)).attempts] == ["fast"]
    assert [t.id for t in await forge.tasks.list(status="succeeded")] == [task.id]
    merged = await forge.tasks.merge(task.id, fast.id)
    assert merged.base_branch == "main" and not merged.rebased


async def test_fork_wait_for_one_attempt_followup_and_worktrees(server: ApiServer, forge: ForgeClient) -> None:
    task = await forge.tasks.create("Things", repo=str(server.repo), agents=["fast"], start=False)
    assert task.status == "queued"
    await forge.tasks.start(task.id)
    forked = await forge.attempts.create(task.id, "slow", model="m-1")
    assert forked.model == "m-1"
    finished = await forge.attempts.wait_for_completion(forked.id, timeout=60)
    assert isinstance(finished, Attempt) and finished.status == "succeeded" and finished.log_tail is not None
    await forge.attempts.wait_for_completion(task_id=task.id, timeout=60)
    queued = await forge.attempts.followup(forked.id, "and more")
    assert queued.followup_pending
    assert (await forge.attempts.wait_for_completion(forked.id, timeout=60)).status == "succeeded"
    worktrees = await forge.worktrees.list()
    assert sorted(w.agent for w in worktrees) == ["fast", "slow"] and all(w.bytes > 0 for w in worktrees)
    report = await forge.worktrees.cleanup(dry_run=True)
    assert report.dry_run and len(report.removed) == 2
    assert len((await forge.worktrees.cleanup(older_than="1h")).removed) == 0


async def test_wait_times_out_with_a_timeout_error_and_cancel_retry_delete(
    server: ApiServer, forge: ForgeClient
) -> None:
    task = await forge.tasks.create("Hang", repo=str(server.repo), agents=["stuck"])
    with pytest.raises(ForgeTimeoutError, match=f"task {task.id} did not finish within 0.5 s") as caught:
        await forge.attempts.wait_for_completion(task_id=task.id, timeout=0.5)
    assert isinstance(caught.value, TimeoutError)
    with pytest.raises(ConflictError, match="cancel it first") as conflict:
        await forge.tasks.delete(task.id)
    assert conflict.value.status == 409 and conflict.value.code == "conflict"
    cancelled = await forge.tasks.cancel(task.id)
    assert cancelled.status == "cancelled"
    retried = await forge.attempts.retry(cancelled.attempts[0].id)
    assert retried.status == "queued"
    assert (await forge.attempts.cancel(retried.id)).status == "cancelled"
    assert await forge.tasks.delete(task.id) == [retried.id]
    with pytest.raises(NotFoundError) as missing:
        await forge.tasks.get(task.id)
    assert missing.value.status == 404 and missing.value.code == "not_found"


async def test_errors_carry_status_and_code(server: ApiServer, forge: ForgeClient) -> None:
    with pytest.raises(ForgeAPIError) as invalid:
        await forge.tasks.create("x", repo=str(server.repo), agents=["nobody"])
    assert invalid.value.status == 422 and invalid.value.code == "unknown_agent" and "nobody" in str(invalid.value)
    with pytest.raises(ValueError, match="an attempt id or a task_id"):
        await forge.attempts.wait_for_completion()  # type: ignore[call-overload]
    async with ForgeClient(server.url, "fgb_wrong") as wrong:
        with pytest.raises(AuthError) as denied:
            await wrong.tasks.list()
        assert denied.value.status == 401 and "fgb_wrong" not in repr(wrong)


async def test_an_unreachable_server_is_a_forge_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ForgeClient(f"http://127.0.0.1:{port}", "fgb_x", timeout=5) as forge:
        with pytest.raises(ForgeError, match="cannot reach the forgebot server"):
            await forge.tasks.list()


async def test_wait_falls_back_to_polling_when_the_stream_ends(server: ApiServer, forge: ForgeClient) -> None:
    server.ctx.stopping.set()  # every event stream ends at once, as during a shutdown
    task = await forge.tasks.create("Poll", repo=str(server.repo), agents=["slow"])
    done = await forge.attempts.wait_for_completion(task_id=task.id, timeout=60)
    assert done.status == "succeeded"


async def test_events_iterator_yields_typed_events(server: ApiServer, forge: ForgeClient) -> None:
    task = await forge.tasks.create("Watch", repo=str(server.repo), agents=["fast"], start=False)
    response = await forge.open_events([task.id])  # connected: every later event arrives
    await forge.tasks.start(task.id)
    kinds = []
    async for event in forge.read_events(response):
        kinds.append(event.kind)
        assert event.task_id == task.id and event.id == len(kinds)
        if event.kind == "task_finished":
            break
    assert kinds[0] == "attempt_status" and kinds[-1] == "task_finished"
    # the one-call form: it connects at the first step, so start the task once the stream is subscribed
    listening = len(server.engine.bus._listeners)
    another = await forge.tasks.create("Watch again", repo=str(server.repo), agents=["fast"], start=False)
    stream = forge.events([another.id])
    first = asyncio.ensure_future(anext(stream))
    for _ in range(200):
        if len(server.engine.bus._listeners) > listening:
            break
        await asyncio.sleep(0.05)
    decoy = await forge.tasks.create("Not watched", repo=str(server.repo), agents=["fast"])
    await server.until_idle(decoy.id)  # all its events went out first: the filter kept them away
    await forge.tasks.start(another.id)
    event = await asyncio.wait_for(first, 30)
    assert event.task_id == another.id and event.id == 1 and event.kind == "attempt_status"
    assert event.attempt is not None and event.attempt.task_id == another.id
    await stream.aclose()


def test_sse_parser() -> None:
    parser = SseParser()
    lines = [": hello", "id: 7", "event: tick", "data: {\"a\":", "data: 1}", "", "", "data:x", ""]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [RawEvent("7", "tick", '{"a":\n1}'), RawEvent("7", None, "x")]

"""JSON log lines of a real daemon and engine: the ids bound at the edges (delivery, repository, issue at the
webhook; task and attempt in the runner) and exactly one `task_summary` line per finished task."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from forgebot.core.models import AttemptStatus, Strategy
from forgebot.engine.engine import Engine
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.logs import configure_logging
from forgebot.store import open_store
from tests import payloads
from tests.bot_harness import BotHarness
from tests.support import agent, make_repo


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Process-wide logging into a buffer, put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def records(stream: io.StringIO, event: str | None = None) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [r for r in parsed if event is None or r["event"] == event]


async def test_daemon_lines_carry_their_ids_and_a_task_has_one_summary(tmp_path: Path, lines: io.StringIO) -> None:
    async with BotHarness.start(tmp_path) as h:
        labeled = payloads.labeled(h.repo_payload, 1, "forge", "alice")
        h.gh.rate_limit("GET", r"/collaborators/alice/permission$", status=429, retry_after=0.1)
        assert await h.deliver("issues", labeled, secret="wrong") == 401
        assert await h.deliver("issues", labeled, delivery="d-logs") == 202
        await h.until_idle()

    [rejected] = records(lines, "webhook_rejected")
    assert rejected["reason"] == "bad_signature" and "delivery" not in rejected  # refused before it was read
    # Lines logged while the delivery was handled carry its ids without passing them (the client logs only repo).
    [limited] = records(lines, "github_rate_limited")
    assert (limited["delivery"], limited["repo"], limited["issue"]) == ("d-logs", "acme/widgets", 1)
    [handled] = records(lines, "delivery_handled")
    assert (handled["delivery"], handled["repo"], handled["issue"], handled["ok"]) == (
        "d-logs",
        "acme/widgets",
        1,
        True,
    )

    # Attempt lines carry their task and attempt, and none of the delivery's ids.
    running = records(lines, "attempt_running") + records(lines, "attempt_finished")
    assert len(running) == 6
    assert {(r["task"], r["agent"]) for r in running} == {(1, "claude"), (1, "codex"), (1, "gemini")}
    assert all(isinstance(r["attempt"], int) and "delivery" not in r and "issue" not in r for r in running)

    [summary] = records(lines, "task_summary")
    assert summary["task"] == 1 and summary["source"] == "github" and summary["ref"] == "acme/widgets#1"
    assert (summary["status"], summary["attempts"]) == ("succeeded", 3)
    assert summary["by_status"] == {"succeeded": 2, "failed": 1}
    assert (summary["winner"], summary["winner_attempt"]) == ("claude", 1)
    assert summary["cost"] == pytest.approx(0.012 + 0.004 + 0.02) and summary["cost_complete"] is True
    assert (summary["tokens_in"], summary["tokens_out"]) == (1200 + 800 + 2000, 300 + 200 + 500)
    assert summary["wall_time"] >= summary["run_time"] > 0.5
    assert "delivery" not in summary and "attempt" not in summary
    [reported] = records(lines, "task_reported")
    assert (reported["task"], reported["repo"], reported["issue"]) == (1, "acme/widgets", 1)


@pytest.fixture
async def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'forgebot.db'}")
    settings = EngineSettings(max_parallel=1, kill_grace=0.5, cancel_poll=0.2)
    engine = Engine(store, Workspaces(), settings=settings, environ={"PATH": os.environ["PATH"]})
    await engine.start()
    yield engine  # type: ignore[misc]
    await engine.shutdown(grace=0)
    store.close()


async def test_cancelling_queued_attempts_finishes_the_task_with_one_summary(
    engine: Engine, tmp_path: Path, lines: io.StringIO
) -> None:
    repo = make_repo(tmp_path / "repo")
    profiles = [agent("slow", "sleep", "30"), agent("waiting", "write", "a.txt", "a")]  # max_parallel=1
    task = await engine.submit(title="t", description="", repo=str(repo), profiles=profiles, strategy=Strategy.PARALLEL)
    for _ in range(200):
        if (await engine.attempts(task.id))[0].status is AttemptStatus.RUNNING:
            break
        await asyncio.sleep(0.05)

    await engine.cancel(task.id)
    await engine.cancel(task.id)  # again: nothing changed, nothing announced again

    [summary] = records(lines, "task_summary")
    assert (summary["task"], summary["status"], summary["attempts"]) == (task.id, "cancelled", 2)
    assert summary["winner"] is None and summary["cost"] is None and summary["tokens_in"] is None
    assert summary["source"] == "cli" and summary["ref"] is None


async def test_a_retried_task_that_finishes_again_gets_a_new_summary(
    engine: Engine, tmp_path: Path, lines: io.StringIO
) -> None:
    repo = make_repo(tmp_path / "repo")
    task = await engine.submit(title="t", description="", repo=str(repo), profiles=[agent("only", "exit", "3")])
    [first] = await asyncio.wait_for(engine.wait_task(task.id), 60)
    await engine.retry(first.id)
    await asyncio.wait_for(engine.wait_task(task.id), 60)
    for _ in range(100):  # the summary is written right after the attempt's final status
        if len(records(lines, "task_summary")) == 2:
            break
        await asyncio.sleep(0.05)

    summaries = records(lines, "task_summary")
    assert [(s["task"], s["status"]) for s in summaries] == [(task.id, "failed"), (task.id, "failed")]

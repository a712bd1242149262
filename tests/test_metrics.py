"""GET /metrics of a real daemon (the harness: aiohttp on loopback, PyGithub against the fake GitHub, real git and
agent programs), parsed with prometheus_client's own parser; and the accounting rules on real store records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from forgebot.core.models import AgentProfile, AttemptStatus, Strategy, Usage
from forgebot.engine.events import EngineEvent, EventKind
from forgebot.engine.housekeeping import CleanupReport
from forgebot.metrics import Metrics
from forgebot.store import SqlStore, open_store
from tests import payloads
from tests.bot_harness import REPO, BotHarness

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} not exposed; have: {sorted(n for n, _ in samples if n.startswith(name))}"
    return samples[key]


async def scrape(h: BotHarness) -> Samples:
    url = h.url.replace("/webhook", "/metrics")
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        return parse(await answer.text())


async def test_metrics_count_webhooks_tasks_attempts_costs_and_github_calls(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        before = await scrape(h)
        assert value(before, "forgebot_tasks", status="succeeded") == 0
        assert value(before, "forgebot_store_up") == 1

        labeled = payloads.labeled(h.repo_payload, 1, "forge", "alice")
        h.gh.rate_limit("GET", r"/collaborators/alice/permission$", status=429, retry_after=0.2)
        assert await h.deliver("issues", labeled, secret="not-the-secret") == 401
        assert await h.deliver("issues", labeled, delivery="d-1") == 202
        assert await h.deliver("issues", labeled, delivery="d-1") == 200  # a redelivery: a duplicate
        await h.until_idle()
        samples = await scrape(h)

    assert value(samples, "forgebot_webhooks_received_total", result="bad_signature") == 1
    assert value(samples, "forgebot_webhooks_received_total", result="accepted") == 1
    assert value(samples, "forgebot_webhooks_received_total", result="duplicate") == 1
    assert value(samples, "forgebot_webhooks_rejected_total", reason="bad_signature") == 1
    assert ("forgebot_webhooks_rejected_total", frozenset({("reason", "duplicate")})) not in samples

    # From the store at scrape time: claude and gemini pass the checks, codex breaks the test.
    assert value(samples, "forgebot_tasks", status="succeeded") == 1
    assert value(samples, "forgebot_tasks", status="running") == 0
    assert value(samples, "forgebot_attempts", status="succeeded") == 2
    assert value(samples, "forgebot_attempts", status="failed") == 1
    assert value(samples, "forgebot_queue_length") == 0
    assert value(samples, "forgebot_attempts_running") == 0

    # From engine events: one finished run per agent, with the cost and tokens the agents reported.
    assert value(samples, "forgebot_attempt_duration_seconds_count", agent="claude", status="succeeded") == 1
    assert value(samples, "forgebot_attempt_duration_seconds_count", agent="codex", status="failed") == 1
    assert value(samples, "forgebot_attempt_duration_seconds_sum", agent="claude", status="succeeded") > 0.3
    assert value(samples, "forgebot_attempt_cost_usd_total", agent="claude") == pytest.approx(0.012)
    assert value(samples, "forgebot_attempt_cost_usd_total", agent="gemini") == pytest.approx(0.02)
    assert value(samples, "forgebot_attempt_tokens_total", agent="codex", direction="in") == 800
    assert value(samples, "forgebot_attempt_tokens_total", agent="codex", direction="out") == 200

    # From the GitHub client: the rate-limited permission read was sent twice, after one wait.
    assert value(samples, "forgebot_github_requests_total", op="permission", kind="read") == 2
    assert value(samples, "forgebot_github_requests_total", op="create_comment", kind="create") == 1
    assert value(samples, "forgebot_github_rate_limit_waits_total", op="permission") == 1
    assert value(samples, "forgebot_github_rate_limit_wait_seconds_total") == pytest.approx(0.2)


async def test_cleanup_results_are_counted_and_dry_runs_remove_nothing(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice")) == 202
        await h.until_idle()
        pull = h.gh.repos[REPO].issues[2]  # the winner's PR, then merged on GitHub: its task is cleaned at once
        assert pull.pull is not None
        pull.state, pull.pull.merged, pull.pull.merged_at = "closed", True, "2026-01-01T00:00:00Z"
        assert h.daemon.jobs is not None
        dry = await h.daemon.jobs.run("cleanup", dry_run=True)
        after_dry = await scrape(h)
        report = await h.daemon.jobs.run("cleanup", dry_run=False)
        samples = await scrape(h)

    assert isinstance(dry, CleanupReport) and isinstance(report, CleanupReport)
    assert len(dry.removed) == 3 and len(report.removed) == 3 and len(report.branches_deleted) == 3
    assert value(after_dry, "forgebot_cleanup_runs_total", job="worktrees", dry_run="true") == 1
    assert ("forgebot_cleanup_removed_total", frozenset({("job", "worktrees"), ("kind", "worktree")})) not in after_dry
    assert value(after_dry, "forgebot_worktree_bytes") == dry.bytes_before > 0
    assert value(samples, "forgebot_cleanup_runs_total", job="worktrees", dry_run="false") == 1
    assert value(samples, "forgebot_cleanup_removed_total", job="worktrees", kind="worktree") == 3
    assert value(samples, "forgebot_cleanup_removed_total", job="worktrees", kind="branch") == 3
    freed = report.bytes_before - report.bytes_after
    assert freed > 0
    assert value(samples, "forgebot_cleanup_freed_bytes_total", job="worktrees") == freed
    assert value(samples, "forgebot_worktree_bytes") == report.bytes_after


def test_each_daemon_has_its_own_registry(tmp_path: Path) -> None:
    first, second = open_store(f"sqlite:///{tmp_path}/a.db"), open_store(f"sqlite:///{tmp_path}/b.db")
    try:
        one, two = Metrics(first), Metrics(second)
        one.webhook_result("accepted")
        assert one.registry.get_sample_value("forgebot_webhooks_received_total", {"result": "accepted"}) == 1
        assert two.registry.get_sample_value("forgebot_webhooks_received_total", {"result": "accepted"}) is None
    finally:
        first.close()
        second.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path}/forgebot.db")
    yield opened
    opened.close()


def _attempt_event(store: SqlStore, **fields: object) -> tuple[EngineEvent, int]:
    task = store.create_task(
        title="t", description="", repo="/srv/r", base_branch="main", base_sha="f" * 40,
        strategy=Strategy.PARALLEL, quality_threshold=0.8, checks=(), created_at=1.0,
    )  # fmt: skip
    attempt = store.add_attempt(task_id=task.id, profile=AgentProfile("claude", "claude-code"), created_at=1.0,
                                worktree_root="/srv/w")  # fmt: skip
    return EngineEvent(EventKind.ATTEMPT_STATUS, task.id, dataclasses.replace(attempt, **fields)), attempt.id


def test_a_follow_up_adds_only_its_own_cost_and_a_retry_starts_over(store: SqlStore) -> None:
    metrics = Metrics(store)
    first, _ = _attempt_event(
        store, status=AttemptStatus.SUCCEEDED, started_at=10.0, finished_at=70.0, usage=Usage(100, 10, cost_usd=0.01)
    )
    assert first.attempt is not None
    followup = dataclasses.replace(
        first.attempt, started_at=100.0, finished_at=130.0, usage=Usage(150, 20, cost_usd=0.015)
    )
    retry = dataclasses.replace(first.attempt, status=AttemptStatus.FAILED, usage=Usage(40, 5, cost_usd=0.004))
    running = dataclasses.replace(first.attempt, status=AttemptStatus.RUNNING, usage=Usage(999, 999, cost_usd=9.0))

    for attempt in (first.attempt, running, followup, retry):
        metrics.on_event(dataclasses.replace(first, attempt=attempt))
    metrics.on_event(EngineEvent(EventKind.TASK_FINISHED, first.task_id))

    get = metrics.registry.get_sample_value
    assert get("forgebot_attempt_cost_usd_total", {"agent": "claude"}) == pytest.approx(0.01 + 0.005 + 0.004)
    assert get("forgebot_attempt_tokens_total", {"agent": "claude", "direction": "in"}) == 100 + 50 + 40
    assert get("forgebot_attempt_duration_seconds_count", {"agent": "claude", "status": "succeeded"}) == 2
    assert get("forgebot_attempt_duration_seconds_sum", {"agent": "claude", "status": "succeeded"}) == 60 + 30
    assert (
        get("forgebot_attempt_duration_seconds_bucket", {"agent": "claude", "status": "succeeded", "le": "30.0"}) == 1
    )


def test_usage_is_remembered_for_the_latest_attempts_only(store: SqlStore) -> None:
    metrics = Metrics(store, remembered_attempts=2)
    for _ in range(3):
        event, _ = _attempt_event(store, status=AttemptStatus.SUCCEEDED, usage=Usage(10, 1, cost_usd=0.1))
        metrics.on_event(event)
    assert len(metrics._usage_seen) == 2  # a long-running daemon does not keep every attempt it ever counted
    labels = {"agent": "claude", "direction": "in"}
    assert metrics.registry.get_sample_value("forgebot_attempt_tokens_total", labels) == 30


def test_an_unknown_cost_is_not_counted_as_zero(store: SqlStore) -> None:
    metrics = Metrics(store)
    event, _ = _attempt_event(store, status=AttemptStatus.FAILED, started_at=1.0, finished_at=2.0, usage=Usage())
    metrics.on_event(event)
    assert metrics.registry.get_sample_value("forgebot_attempt_cost_usd_total", {"agent": "claude"}) is None


def test_a_store_that_cannot_answer_reports_store_down_and_the_rest_still_renders(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    store = open_store(f"sqlite:///{path}")
    metrics = Metrics(store)
    metrics.webhook_result("too_large")
    store.close()
    for leftover in tmp_path.glob("gone.db*"):
        leftover.unlink()  # the next connection finds an empty database without tables

    samples = parse(generate_latest(metrics.registry).decode())
    store.close()

    assert value(samples, "forgebot_store_up") == 0
    assert value(samples, "forgebot_webhooks_rejected_total", reason="too_large") == 1
    assert not any(name == "forgebot_tasks" for name, _ in samples)

"""Prometheus metrics for `forgebot serve`, served at `GET /metrics`.

Each daemon has its own `CollectorRegistry` (never the library's global one), so tests can build several.
What is counted comes in three ways:
- pushed by the code where it happens: webhook results (`Webhooks(on_result=...)`), GitHub requests and
  rate-limit waits (`PyGithubClient.observer`), cleanup runs (`cleanup_done(report)`, through `Jobs(on_cleanup=...)`);
- fed from engine events: duration, cost and tokens of every attempt that reaches a final status;
- read from the store at scrape time: tasks and attempts by status, the queue and the running attempts, so
  the figures are right after a restart and include work other processes did.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from forgebot.core.bounded import Bounded
from forgebot.core.models import ACTIVE, AttemptStatus, TaskStatus, Usage, task_status
from forgebot.engine.events import EngineEvent, EventBus, EventKind

log = structlog.get_logger(__name__)

# What `Webhooks` reports for a delivery it took (or rightly skipped); every other result is a rejection.
WEBHOOK_OK = frozenset({"accepted", "duplicate", "ignored", "ping"})
# Agent runs last minutes to hours.
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0)


class StatusSource(Protocol):
    def status_counts(self) -> list[tuple[int, AttemptStatus | None, int]]: ...


class CleanupResult(Protocol):
    """What a cleanup run reports (`forgebot.engine.housekeeping.CleanupReport` is one)."""

    @property
    def removed(self) -> Sequence[str]: ...

    @property
    def bytes_before(self) -> int: ...

    @property
    def bytes_after(self) -> int: ...

    @property
    def dry_run(self) -> bool: ...


class Metrics:
    def __init__(self, store: StatusSource, *, remembered_attempts: int = 4096) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter("forgebot_webhooks_received", "Webhook deliveries, by result", ["result"], registry=r)
        self.webhooks_rejected = Counter(
            "forgebot_webhooks_rejected", "Webhook deliveries refused, by reason", ["reason"], registry=r
        )
        self.attempt_duration = Histogram(
            "forgebot_attempt_duration_seconds",
            "Wall time of finished attempt runs, by agent and final status",
            ["agent", "status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.attempt_cost = Counter(
            "forgebot_attempt_cost_usd", "Cost of finished attempt runs where known, by agent", ["agent"], registry=r
        )
        self.attempt_tokens = Counter(
            "forgebot_attempt_tokens",
            "Tokens of finished attempt runs, by agent and direction",
            ["agent", "direction"],
            registry=r,
        )
        self.github_requests = Counter(
            "forgebot_github_requests",
            "Requests sent to GitHub (a retry counts again), by operation and kind",
            ["op", "kind"],
            registry=r,
        )
        self.github_rate_limited = Counter(
            "forgebot_github_rate_limit_waits", "Times GitHub asked us to wait, by operation", ["op"], registry=r
        )
        self.github_rate_limit_seconds = Counter(
            "forgebot_github_rate_limit_wait_seconds", "Seconds GitHub asked us to wait in all", registry=r
        )
        self.cleanup_runs = Counter(
            "forgebot_cleanup_runs", "Cleanup runs, by job and dry run", ["job", "dry_run"], registry=r
        )
        self.cleanup_removed = Counter(
            "forgebot_cleanup_removed",
            "What cleanup removed (not counting dry runs), by job and kind",
            ["job", "kind"],
            registry=r,
        )
        self.cleanup_freed = Counter("forgebot_cleanup_freed_bytes", "Disk space cleanup freed", ["job"], registry=r)
        self.worktree_bytes = Gauge(
            "forgebot_worktree_bytes", "Disk used by worktrees after the last cleanup run", registry=r
        )
        self.registry.register(StoreCollector(store))
        # attempt id -> usage already counted (follow-ups add up), for the most recently finished attempts only: a
        # follow-up of one forgotten long ago counts its whole total again.
        self._usage_seen: Bounded[int, Usage] = Bounded(remembered_attempts)

    # -- pushed by the code where things happen ------------------------------------------------

    def webhook_result(self, result: str) -> None:
        """`Webhooks(on_result=...)`: accepted, duplicate, ignored, ping, or the reason it was refused."""
        self.webhooks.labels(result).inc()
        if result not in WEBHOOK_OK:
            self.webhooks_rejected.labels(result).inc()

    def request(self, op: str, kind: str) -> None:
        """`PyGithubClient.observer`: one request sent."""
        self.github_requests.labels(op, kind).inc()

    def rate_limited(self, op: str, wait: float) -> None:
        """`PyGithubClient.observer`: GitHub asked us to wait `wait` seconds before repeating."""
        self.github_rate_limited.labels(op).inc()
        self.github_rate_limit_seconds.inc(max(0.0, wait))

    def cleanup_done(self, report: CleanupResult, *, job: str = "worktrees", branches_deleted: int = 0) -> None:
        """Called by the cleanup jobs after each run; a dry run is counted but removes (and frees) nothing."""
        self.cleanup_runs.labels(job, "true" if report.dry_run else "false").inc()
        self.worktree_bytes.set(report.bytes_before if report.dry_run else report.bytes_after)
        if report.dry_run:
            return
        self.cleanup_removed.labels(job, "worktree").inc(len(report.removed))
        self.cleanup_removed.labels(job, "branch").inc(max(0, branches_deleted))
        self.cleanup_freed.labels(job).inc(max(0, report.bytes_before - report.bytes_after))

    # -- engine events -------------------------------------------------------------------------

    def watch(self, bus: EventBus) -> Callable[[], None]:
        """Count every attempt that reaches a final status; returns the function that stops it."""
        return bus.subscribe(self.on_event)

    def on_event(self, event: EngineEvent) -> None:
        attempt = event.attempt
        if event.kind is not EventKind.ATTEMPT_STATUS or attempt is None or not attempt.status.terminal:
            return
        agent = attempt.agent
        if attempt.started_at is not None and attempt.finished_at is not None:
            duration = max(0.0, attempt.finished_at - attempt.started_at)
            self.attempt_duration.labels(agent, attempt.status.value).observe(duration)
        before = self._usage_seen.get(attempt.id, Usage())
        now = attempt.usage
        self._usage_seen[attempt.id] = now
        if (cost := _added(before.cost_usd, now.cost_usd)) is not None:
            self.attempt_cost.labels(agent).inc(cost)
        for direction, old, new in (
            ("in", before.tokens_in, now.tokens_in),
            ("out", before.tokens_out, now.tokens_out),
        ):
            if (tokens := _added(old, new)) is not None:
                self.attempt_tokens.labels(agent, direction).inc(tokens)

    # -- serving -------------------------------------------------------------------------------

    async def handle(self, _request: web.Request) -> web.Response:
        """GET /metrics in the Prometheus text format. Rendered in a thread: the store is read meanwhile."""
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _added(before: float | None, now: float | None) -> float | None:
    """What a run added to a running total: a follow-up's usage includes the earlier runs', a retry starts
    again from nothing (then the new total is all new). None when unknown, never a false 0."""
    if now is None:
        return None
    if before is None or now < before:
        return float(now)
    return float(now - before)


class StoreCollector:
    """Tasks and attempts by status, the queue and the running attempts, from one grouped query per scrape."""

    def __init__(self, store: StatusSource) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        try:
            rows = self._store.status_counts()
        except Exception as error:  # a broken store must not break the other metrics
            log.warning("metrics_store_unreadable", error=type(error).__name__)
            return [GaugeMetricFamily("forgebot_store_up", "1 when the store answered the scrape", value=0)]
        attempts: Tally[AttemptStatus] = Tally()
        per_task: dict[int, list[AttemptStatus]] = {}
        for task_id, status, count in rows:
            statuses = per_task.setdefault(task_id, [])
            if status is not None:
                attempts[status] += count
                statuses.append(status)
        tasks = Tally(task_status(statuses) for statuses in per_task.values())
        return self._families(tasks, attempts)

    @staticmethod
    def _families(tasks: Tally[TaskStatus] | None = None, attempts: Tally[AttemptStatus] | None = None) -> list[Metric]:
        """All five families; without counts (describe) they carry names only and nothing is queried."""
        up = GaugeMetricFamily("forgebot_store_up", "1 when the store answered the scrape")
        by_task = GaugeMetricFamily(
            "forgebot_tasks", "Tasks by status (derived from their attempts)", labels=["status"]
        )
        by_attempt = GaugeMetricFamily("forgebot_attempts", "Attempts by status", labels=["status"])
        queue = GaugeMetricFamily("forgebot_queue_length", "Attempts waiting for a slot")
        running = GaugeMetricFamily("forgebot_attempts_running", "Attempts preparing, running or checking")
        if tasks is not None and attempts is not None:
            up.add_metric([], 1)
            for task_state in TaskStatus:
                by_task.add_metric([task_state.value], tasks[task_state])
            for attempt_state in AttemptStatus:
                by_attempt.add_metric([attempt_state.value], attempts[attempt_state])
            queue.add_metric([], attempts[AttemptStatus.QUEUED])
            running.add_metric([], sum(attempts[s] for s in ACTIVE))
        return [up, by_task, by_attempt, queue, running]

"""Time of one GET /metrics render with 2,000 tasks of 3 attempts each in SQLite (task statuses are derived
from the attempts at scrape time).

    .venv/bin/python bench/metrics_scrape.py

The baseline, measured in the same run on the same database, is the cheapest possible query: attempts
counted by status (`SELECT status, count(*) ... GROUP BY status`), which cannot give task statuses.
Target: under 50 ms per scrape (Prometheus scrapes every 15 to 60 s).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable

from prometheus_client import generate_latest
from sqlalchemy import create_engine, func, select

from forgebot.core.models import AgentProfile, AttemptStatus, Strategy
from forgebot.metrics import Metrics
from forgebot.store import open_store
from forgebot.store.schema import attempts

TASKS, PER_TASK, RUNS = 2000, 3, 20
FINAL = (AttemptStatus.PREPARING, AttemptStatus.RUNNING, AttemptStatus.CHECKING, AttemptStatus.SUCCEEDED)


def median_ms(work: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/forgebot.db"
        store = open_store(url)
        profiles = [AgentProfile(name, "claude-code") for name in ("claude", "codex", "gemini")]
        for n in range(TASKS):
            task = store.create_task(
                title=f"t{n}", description="", repo="/srv/r", base_branch="main", base_sha="f" * 40,
                strategy=Strategy.PARALLEL, quality_threshold=0.8, checks=(), created_at=float(n),
            )  # fmt: skip
            for profile in profiles[:PER_TASK]:
                attempt = store.add_attempt(task_id=task.id, profile=profile, created_at=float(n), worktree_root="/w")
                if n % 10:  # most tasks finished, every tenth still queued
                    for status in FINAL:
                        store.transition(attempt.id, status)
        metrics = Metrics(store)
        raw = create_engine(url)
        query = select(attempts.c.status, func.count()).group_by(attempts.c.status)

        def baseline() -> object:
            with raw.connect() as conn:
                return conn.execute(query).all()

        scrape_ms = median_ms(lambda: generate_latest(metrics.registry))
        baseline_ms = median_ms(baseline)
        raw.dispose()
        store.close()
    print(f"metrics scrape with {TASKS} tasks / {TASKS * PER_TASK} attempts: {scrape_ms:.1f} ms (median of {RUNS})")
    print(f"baseline (attempts by status only): {baseline_ms:.1f} ms; ratio {scrape_ms / baseline_ms:.1f}x")


if __name__ == "__main__":
    main()

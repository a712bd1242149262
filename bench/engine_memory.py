"""Peak RSS of the engine process while it holds 200 tasks: 142 finished, 8 attempts running, 50 queued.

    .venv/bin/python bench/engine_memory.py

The baseline, measured in the same run, is a fresh interpreter that only imports forgebot's engine.
Target: under 150 MB.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time

from _support import make_engine, make_repo, quiet_logs, sleeper

from forgebot.core.models import AttemptStatus, Strategy

FINISHED, RUNNING, QUEUED = 142, 8, 50


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def baseline_mb() -> float:
    code = (
        "import resource, forgebot.engine.engine, forgebot.store; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    return int(out.stdout) / 1024


async def main() -> None:
    repo = make_repo(files=200)
    engine = make_engine(repo, max_parallel=RUNNING, per_repo=RUNNING, per_agent=RUNNING)
    await engine.start()
    print(f"recording {FINISHED} finished tasks...", flush=True)
    for i in range(FINISHED):
        task = engine.store.create_task(
            title=f"done {i}",
            description="x" * 500,
            repo=repo,
            base_branch="main",
            base_sha="0" * 40,
            strategy=Strategy.PARALLEL,
            quality_threshold=0.8,
            checks=(),
            created_at=time.time(),
        )
        attempt = engine.store.add_attempt(
            task_id=task.id, profile=sleeper("old", 0), created_at=time.time(), worktree_root="/nonexistent"
        )
        for status in (
            AttemptStatus.PREPARING,
            AttemptStatus.RUNNING,
            AttemptStatus.CHECKING,
            AttemptStatus.SUCCEEDED,
        ):
            engine.store.transition(attempt.id, status)
    print(f"submitting {RUNNING + QUEUED} tasks whose agents sleep...", flush=True)
    for i in range(RUNNING + QUEUED):
        await engine.submit(title=f"live {i}", description="y" * 500, repo=repo, profiles=[sleeper("sleepy", 60)])
    for _ in range(200):
        active = engine.store.list_attempts(statuses=[AttemptStatus.RUNNING])
        if len(active) == RUNNING:
            break
        await asyncio.sleep(0.1)
    queued = engine.store.list_attempts(statuses=[AttemptStatus.QUEUED])
    tasks = engine.store.list_tasks(limit=1000)
    print(f"holding {len(tasks)} tasks: {len(active)} attempts running, {len(queued)} queued", flush=True)
    for _ in range(10):  # let a few scheduler and poll cycles run while everything is held
        await asyncio.sleep(0.3)
    peak = peak_rss_mb()
    await engine.shutdown(grace=0)
    base = baseline_mb()
    print(
        f"peak RSS {peak:.1f} MB; baseline (interpreter + forgebot imports) {base:.1f} MB; "
        f"ratio {peak / base:.2f}x; {'meets' if peak < 150 else 'misses'} the 150 MB target"
    )


if __name__ == "__main__":
    quiet_logs()
    asyncio.run(main())

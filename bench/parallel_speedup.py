"""Speedup of running three agents at once (5, 3 and 4 s of sleep-and-write) over running them one by one.

    .venv/bin/python bench/parallel_speedup.py

Both runs go through the real engine on a real repository in the same process: the parallel run with the
default limits, the baseline with max_parallel=1. The ideal speedup is sum/max = 12/5 = 2.4.
Target: the measured speedup is at least 95% of the ideal.
"""

from __future__ import annotations

import asyncio
import time

from _support import make_engine, make_repo, quiet_logs, sleeper

DURATIONS = {"five": 5.0, "three": 3.0, "four": 4.0}


async def run_task(max_parallel: int) -> float:
    repo = make_repo()
    engine = make_engine(repo, max_parallel=max_parallel)
    await engine.start()
    started = time.perf_counter()
    task = await engine.submit(
        title="bench", description="", repo=repo, profiles=[sleeper(n, s) for n, s in DURATIONS.items()]
    )
    attempts = await engine.wait_task(task.id)
    wall = time.perf_counter() - started
    failed = [a.agent for a in attempts if a.status.value != "succeeded"]
    if failed:
        raise SystemExit(f"attempts failed: {failed}")
    await engine.shutdown(grace=0)
    engine.store.close()
    return wall


async def main() -> None:
    print("parallel run (3 attempts at once)...", flush=True)
    parallel = await run_task(max_parallel=4)
    print(f"  wall time {parallel:.2f}s", flush=True)
    print("baseline: the same attempts one by one (max_parallel=1)...", flush=True)
    sequential = await run_task(max_parallel=1)
    print(f"  wall time {sequential:.2f}s", flush=True)
    ideal = sum(DURATIONS.values()) / max(DURATIONS.values())
    speedup = sequential / parallel
    ratio = speedup / ideal
    print(
        f"speedup {speedup:.2f}x over one by one; ideal {ideal:.2f}x; {ratio:.1%} of ideal "
        f"({'meets' if ratio >= 0.95 else 'misses'} the 95% target)"
    )


if __name__ == "__main__":
    quiet_logs()
    asyncio.run(main())

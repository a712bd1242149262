"""How much slower is Workspaces.prepare than plain `git worktree add`?

Builds a throwaway repository of small files, then per round times
  plain:  N x `git worktree add -b <branch> <dir> HEAD`, one after another, and
  engine: N x Workspaces.prepare run at once from a thread pool, as the engine does,
and prints the medians and the ratio engine/plain (median of the per-round ratios: each round pairs the two
runs close in time, which matters on a shared, noisy machine) against the target (<= 1.2). The order of the
two alternates between rounds so neither always gets the warmer cache. It reports; it never asserts.

    .venv/bin/python bench/worktree_overhead.py [--files 3000] [--n 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from forgebot.engine.workspaces import Workspaces

TARGET_RATIO = 1.2


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def build_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(files):
        path = repo / f"pkg{i % 40}" / f"mod{i // 40}" / f"file{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# file {i}\nVALUE = {i}\n\n\ndef f{i}() -> int:\n    return VALUE * 2\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "files")
    return repo


def time_plain(repo: Path, dirs: list[Path]) -> float:
    start = time.perf_counter()
    for d in dirs:
        git(repo, "worktree", "add", "-q", "-b", f"plain-{d.name}", str(d), "HEAD")
    return time.perf_counter() - start


def time_engine(ws: Workspaces, repo: Path, dirs: list[Path], base: str) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(dirs)) as pool:
        futures = [pool.submit(ws.prepare, str(repo), str(d), f"engine-{d.name}", base) for d in dirs]
        for future in futures:
            future.result()
    return time.perf_counter() - start


def clean(repo: Path, scratch: Path) -> None:
    """Drop every worktree and branch of a round (untimed) so rounds start alike."""
    shutil.rmtree(scratch)
    git(repo, "worktree", "prune")
    heads = ("refs/heads/plain-*", "refs/heads/engine-*")
    branches = git(repo, "for-each-ref", "--format=%(refname:short)", *heads)
    if branches:
        git(repo, "branch", "-q", "-D", *branches.split())


def run_round(ws: Workspaces, repo: Path, base: str, n: int, number: int) -> tuple[float, float]:
    """(plain seconds, engine seconds) of one round; odd rounds time plain first, even ones engine first."""
    scratch = repo.parent / "wt"
    plain_dirs = [scratch / f"p{number}-{i}" for i in range(n)]
    engine_dirs = [scratch / f"e{number}-{i}" for i in range(n)]
    times: dict[str, float] = {}
    order = ("plain", "engine") if number % 2 else ("engine", "plain")
    for kind in order:
        print(f"  round {number}: {kind} ...", end=" ", flush=True)
        if kind == "plain":
            times[kind] = time_plain(repo, plain_dirs)
        else:
            times[kind] = time_engine(ws, repo, engine_dirs, base)
        print(f"{times[kind]:.2f}s", flush=True)
    clean(repo, scratch)
    return times["plain"], times["engine"]


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--files", type=int, default=3000, help="files in the test repository")
    parser.add_argument("--n", type=int, default=8, help="worktrees per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args()

    ws = Workspaces()
    rounds: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="forgebot-bench-") as tmp:
        print(f"building a repository of {args.files} files in {tmp} ...", flush=True)
        repo = build_repo(Path(tmp), args.files)
        base = git(repo, "rev-parse", "HEAD")
        for number in range(1, args.rounds + 1):
            plain, engine = run_round(ws, repo, base, args.n, number)
            rounds.append((plain, engine))
            print(f"round {number}/{args.rounds}: ratio {engine / plain:.2f}", flush=True)

    plain_median = statistics.median(plain for plain, _ in rounds)
    engine_median = statistics.median(engine for _, engine in rounds)
    ratio = statistics.median(engine / plain for plain, engine in rounds)
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"plain git worktree add x{args.n} (sequential):  {plain_median:.2f}s median")
    print(f"Workspaces.prepare     x{args.n} (thread pool): {engine_median:.2f}s median")
    print(f"ratio engine/plain = {ratio:.2f} (median of per-round ratios)")
    print(f"{verdict} the target (<= {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()

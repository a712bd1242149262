"""Where an attempt's files live: its worktree, its private HOME, its log."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """`state_root=None` is local mode: everything under `<repo>/.forge/` (kept out of git by info/exclude).
    A daemon passes its data directory instead, with one folder per repository."""

    state_root: str | None = None

    def state_dir(self, repo: str) -> str:
        if self.state_root is None:
            return os.path.join(repo, ".forge")
        slug = repo.strip("/").replace("/", "__")
        return os.path.join(self.state_root, "repos", slug)

    def worktree_root(self, repo: str) -> str:
        return os.path.join(self.state_dir(repo), "worktrees")

    def attempt_home(self, repo: str, attempt_id: int) -> str:
        return os.path.join(self.state_dir(repo), "homes", f"attempt-{attempt_id}")

    def attempt_log(self, repo: str, attempt_id: int) -> str:
        return os.path.join(self.state_dir(repo), "logs", f"attempt-{attempt_id}.log")

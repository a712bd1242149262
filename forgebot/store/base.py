"""The narrow storage interface the rest of forgebot depends on, and its errors."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from forgebot.core.models import AgentProfile, Attempt, AttemptStatus, CheckSpec, Strategy, Task


class StoreError(Exception):
    """Anything the store cannot do; subclasses say why."""


class NotFound(StoreError):
    """A task or attempt id that does not exist (the message names which)."""


class Store(Protocol):
    def create_task(
        self,
        *,
        title: str,
        description: str,
        repo: str,
        base_branch: str,
        base_sha: str,
        strategy: Strategy,
        quality_threshold: float,
        checks: Sequence[CheckSpec],
        created_at: float,
        source: str = "cli",
        external_ref: str | None = None,
    ) -> Task: ...

    def get_task(self, task_id: int) -> Task: ...

    def list_tasks(self, *, limit: int = 100, repo: str | None = None) -> list[Task]: ...

    def delete_task(self, task_id: int) -> None: ...

    def add_attempt(self, *, task_id: int, profile: AgentProfile, created_at: float, worktree_root: str) -> Attempt: ...

    def get_attempt(self, attempt_id: int) -> Attempt: ...

    def list_attempts(
        self,
        *,
        task_id: int | None = None,
        statuses: Collection[AttemptStatus] | None = None,
        owner: str | None = None,
    ) -> list[Attempt]: ...

    def transition(self, attempt_id: int, target: AttemptStatus, **fields: Any) -> Attempt: ...

    def update_attempt(self, attempt_id: int, **fields: Any) -> Attempt: ...

    def delete_attempts(self, attempt_ids: Collection[int]) -> int: ...

    def close(self) -> None: ...

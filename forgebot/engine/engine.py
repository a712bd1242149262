"""The engine: tasks and attempts, scheduling under limits, strategies, and the operations on them.

It knows nothing of GitHub or terminals: front-ends call its methods and subscribe to `bus`.
Every state change goes to the store before it is published, so another process (or this one after a
restart) can rebuild everything from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import structlog

from forgebot.core.bounded import Bounded
from forgebot.core.models import (
    ACTIVE,
    RETRYABLE,
    TERMINAL,
    AgentProfile,
    Attempt,
    AttemptStatus,
    CheckSpec,
    DiffStats,
    IllegalTransition,
    Strategy,
    Task,
    Usage,
)
from forgebot.core.scoring import Comparison, best_quality, compare
from forgebot.core.summary import task_summary
from forgebot.engine import housekeeping
from forgebot.engine.events import EngineEvent, EventBus, EventKind
from forgebot.engine.housekeeping import CleanupReport, EngineError
from forgebot.engine.layout import Layout
from forgebot.engine.processes import kill_group_now, pid_alive
from forgebot.engine.runner import AttemptRunner, EngineSettings, RunContext
from forgebot.engine.workspaces import MergeResult, Workspaces
from forgebot.store import NotFound, Store

log = structlog.get_logger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
REMEMBERED_TASKS = 1024  # tasks whose details and last announced outcome are kept in memory

_RESET = {
    "started_at": None,
    "finished_at": None,
    "exit_code": None,
    "error": None,
    "session_id": None,
    "final_message": None,
    "diff": DiffStats(),
    "checks": (),
    "usage": Usage(),
    "commit_sha": None,
    "pid": None,
    "owner": None,
    "cancel_requested": False,
    "progress": "",
}


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Only owners on this host can be checked; an owner elsewhere is assumed alive (its own host recovers it)."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    return pid.isdigit() and pid_alive(int(pid))


@dataclass
class _Served:
    """Which tasks this engine runs attempts for: all (a daemon) or the ones handed to it (a CLI process)."""

    everything: bool = False
    task_ids: set[int] = field(default_factory=set)
    held: set[int] = field(default_factory=set)  # submitted with start=False: not even `everything` runs them yet

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.task_ids or (self.everything and task_id not in self.held)


class Engine:
    def __init__(
        self,
        store: Store,
        workspaces: Workspaces,
        *,
        settings: EngineSettings | None = None,
        layout: Layout | None = None,
        environ: Mapping[str, str] | None = None,
        serve_all: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.workspaces = workspaces
        self.settings = settings or EngineSettings()
        self.layout = layout or Layout()
        self.bus = EventBus()
        self.owner = owner_id()
        self.clock = clock
        self._ctx = RunContext(
            store, workspaces, self.layout, self.settings, environ or os.environ, self.owner, self.bus, clock
        )
        self._served = _Served(everything=serve_all)
        self._running: dict[int, asyncio.Task[None]] = {}
        self._stop_reason: dict[int, AttemptStatus] = {}
        # Both bounded, so a long-running daemon does not keep every task it ever saw: a task read again comes from
        # the store, and an outcome forgotten is at worst announced once more.
        self._tasks: Bounded[int, Task] = Bounded(REMEMBERED_TASKS)
        # task id -> (attempt id, status, finished_at) of its attempts when it was last announced as finished
        self._finished_as: Bounded[int, tuple[tuple[int, str, float | None], ...]] = Bounded(REMEMBERED_TASKS)
        self._pump_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._accepting = True
        self._poller: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> list[Attempt]:
        """Recover what a crashed process left behind, then watch for cross-process cancel requests."""
        recovered = await self.recover()
        self._poller = asyncio.create_task(self._poll_loop())
        await self._pump()
        return recovered

    async def recover(self) -> list[Attempt]:
        """Attempts left active by a process that is gone become interrupted (and can be retried)."""
        active = await self._store(self.store.list_attempts, statuses=ACTIVE)
        recovered = []
        for attempt in active:
            if attempt.id in self._running or owner_alive(attempt.owner):
                continue
            if attempt.pid and pid_alive(attempt.pid):
                await asyncio.to_thread(kill_group_now, attempt.pid, self.settings.kill_grace)
            error = f"interrupted: the forgebot process that ran it ({attempt.owner or 'unknown'}) stopped"
            try:
                updated = await self._transition(
                    attempt.id, AttemptStatus.INTERRUPTED, finished_at=self.clock(), error=error
                )
            except IllegalTransition:
                continue
            recovered.append(updated)
            log.warning("attempt_interrupted", task=attempt.task_id, attempt=attempt.id, owner=attempt.owner)
        return recovered

    def runs_here(self, attempt_id: int) -> bool:
        """Whether this engine's own runner is working on the attempt."""
        return attempt_id in self._running

    async def finish_stuck(self, attempt: Attempt, status: AttemptStatus, error: str) -> Attempt | None:
        """Finish an attempt the reaper found stuck (forgebot/engine/janitor.py): our own runner is stopped and
        records `status`; another process's agent is killed and the attempt finished here. None when it finished
        on its own in the meantime."""
        if attempt.id in self._running:
            runner = self._running[attempt.id]
            self._stop(attempt.id, status)
            await asyncio.wait([runner])
            return await self.attempt(attempt.id)
        if attempt.pid and pid_alive(attempt.pid):
            await asyncio.to_thread(kill_group_now, attempt.pid, self.settings.kill_grace)
        try:
            updated = await self._transition(attempt.id, status, finished_at=self.clock(), error=error)
        except IllegalTransition:
            return None
        await self._after_attempt(attempt.task_id)
        return updated

    async def shutdown(self, grace: float = 30.0) -> None:
        """Stop taking work, let running attempts finish up to `grace` seconds, interrupt the rest."""
        self._accepting = False
        if self._poller:
            self._poller.cancel()
        pending = list(self._running.values())
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for attempt_id in list(self._running):
            self._stop(attempt_id, AttemptStatus.INTERRUPTED)
        if self._running:
            await asyncio.wait(list(self._running.values()))
        if not self._served.everything:
            await self._interrupt_queued()

    async def _interrupt_queued(self) -> None:
        """A CLI process is the only runner of its tasks: what it leaves queued would wait forever, so it becomes
        interrupted (and retryable). A daemon leaves its queue alone; it picks it up again on restart."""
        queued = await self._store(self.store.list_attempts, statuses=[AttemptStatus.QUEUED])
        for attempt in queued:
            if attempt.task_id not in self._served.task_ids:
                continue
            with contextlib.suppress(IllegalTransition):
                error = "interrupted before it started: the forgebot process that was to run it stopped"
                await self._transition(attempt.id, AttemptStatus.INTERRUPTED, finished_at=self.clock(), error=error)

    # -- submitting work ---------------------------------------------------------------------------

    async def submit(
        self,
        *,
        title: str,
        description: str,
        repo: str,
        profiles: Sequence[AgentProfile],
        base: str | None = None,
        strategy: Strategy = Strategy.PARALLEL,
        quality_threshold: float = 0.8,
        checks: Sequence[CheckSpec] = (),
        source: str = "cli",
        external_ref: str | None = None,
        start: bool = True,
    ) -> Task:
        if not profiles:
            raise EngineError("a task needs at least one agent")
        if not title.strip():
            raise EngineError("a task needs a title")
        root = await asyncio.to_thread(self.workspaces.repo_root, repo)
        base_branch, base_sha = await asyncio.to_thread(self.workspaces.resolve_base, root, base)
        if self.layout.state_root is None:
            await asyncio.to_thread(self.workspaces.ensure_excluded, root, "/.forge/")
        task = await self._store(
            self.store.create_task,
            title=title.strip(),
            description=description,
            repo=root,
            base_branch=base_branch,
            base_sha=base_sha,
            strategy=strategy,
            quality_threshold=quality_threshold,
            checks=tuple(checks),
            created_at=self.clock(),
            source=source,
            external_ref=external_ref,
        )
        self._tasks[task.id] = task
        if not start:
            self._served.held.add(task.id)  # until serve(task.id); in memory only: a restart serves it
        self.bus.publish(EngineEvent(EventKind.TASK_CREATED, task.id))
        for profile in profiles:
            await self._add_attempt(task, profile)
        log.info("task_created", task=task.id, repo=root, agents=[p.name for p in profiles], strategy=str(strategy))
        if start:
            await self.serve(task.id)
        return task

    async def fork(self, task_id: int, profile: AgentProfile, *, start: bool = True) -> Attempt:
        """Another attempt on an existing task: another agent, or the same one again."""
        task = await self.task(task_id)
        attempt = await self._add_attempt(task, profile)
        if start:
            await self.serve(task_id)
        return attempt

    async def serve(self, task_id: int) -> None:
        """Run this task's queued attempts in this process."""
        self._served.task_ids.add(task_id)
        self._served.held.discard(task_id)
        await self._pump()

    async def retry(self, attempt_id: int, *, start: bool = True) -> Attempt:
        attempt = await self.attempt(attempt_id)
        if attempt.status not in RETRYABLE:
            raise EngineError(
                f"attempt {attempt_id} is {attempt.status.value}; "
                "only a finished attempt that did not succeed can be retried"
            )
        attempt = await self._transition(attempt_id, AttemptStatus.QUEUED, **_RESET)
        log.info("attempt_retried", task=attempt.task_id, attempt=attempt_id)
        if start:
            await self.serve(attempt.task_id)
        return attempt

    async def followup(self, attempt_id: int, text: str, *, start: bool = True) -> Attempt:
        """Run the attempt's agent again in its own session and worktree with a new prompt; adds a commit."""
        if not text.strip():
            raise EngineError("a follow-up needs a prompt")
        attempt = await self.attempt(attempt_id)
        if not attempt.status.terminal:
            raise EngineError(
                f"attempt {attempt_id} is still {attempt.status.value}; a follow-up waits until it is done"
            )
        if not await asyncio.to_thread(os.path.isdir, attempt.worktree):
            raise EngineError(f"attempt {attempt_id}'s worktree was cleaned up; a follow-up needs it")
        attempt = await self._transition(
            attempt_id,
            AttemptStatus.QUEUED,
            followup=text.strip(),
            error=None,
            exit_code=None,
            pid=None,
            owner=None,
            cancel_requested=False,
        )
        log.info("attempt_followup", task=attempt.task_id, attempt=attempt_id)
        if start:
            await self.serve(attempt.task_id)
        return attempt

    async def _add_attempt(self, task: Task, profile: AgentProfile) -> Attempt:
        attempt = await self._store(
            self.store.add_attempt,
            task_id=task.id,
            profile=profile,
            created_at=self.clock(),
            worktree_root=self.layout.worktree_root(task.repo),
        )
        self.bus.publish(EngineEvent(EventKind.ATTEMPT_ADDED, task.id, attempt))
        return attempt

    # -- stopping work -----------------------------------------------------------------------------

    async def cancel(self, task_id: int, attempt_id: int | None = None) -> list[Attempt]:
        if attempt_id is None:
            await self.task(task_id)
            targets = await self.attempts(task_id)
        else:
            attempt = await self.attempt(attempt_id)
            if attempt.task_id != task_id:
                raise EngineError(f"attempt {attempt_id} belongs to task {attempt.task_id}, not task {task_id}")
            targets = [attempt]
        # Queued ones first, so stopping a running attempt does not hand its slot to one we are about to cancel.
        order = sorted(targets, key=lambda a: a.status is not AttemptStatus.QUEUED)
        done = {a.id: (a if a.status.terminal else await self._cancel_one(a)) for a in order}
        await self._after_attempt(task_id)  # attempts cancelled while queued never ran: the task may be done now
        return [done[a.id] for a in targets]

    async def _cancel_one(self, attempt: Attempt) -> Attempt:
        if attempt.id in self._running:
            runner = self._running[attempt.id]
            self._stop(attempt.id, AttemptStatus.CANCELLED)
            await asyncio.wait([runner])
            return await self.attempt(attempt.id)
        if attempt.status is AttemptStatus.QUEUED:
            try:
                return await self._transition(
                    attempt.id,
                    AttemptStatus.CANCELLED,
                    finished_at=self.clock(),
                    error="cancelled before it started",
                )
            except IllegalTransition:
                attempt = await self.attempt(attempt.id)  # another process started it just now
        return await self._cancel_elsewhere(attempt)

    async def _cancel_elsewhere(self, attempt: Attempt) -> Attempt:
        """Another process runs it: ask through the store, and stop it ourselves if that process is gone or deaf."""
        if owner_alive(attempt.owner):
            await self._store(self.store.update_attempt, attempt.id, cancel_requested=True)
            deadline = self.clock() + self.settings.cancel_poll * 3 + self.settings.kill_grace * 3 + 2
            while self.clock() < deadline:
                attempt = await self.attempt(attempt.id)
                if attempt.status.terminal:
                    return attempt
                await asyncio.sleep(0.1)
        if attempt.pid and pid_alive(attempt.pid):
            await asyncio.to_thread(kill_group_now, attempt.pid, self.settings.kill_grace)
        try:
            return await self._transition(
                attempt.id, AttemptStatus.CANCELLED, finished_at=self.clock(), error="cancelled"
            )
        except IllegalTransition:
            return await self.attempt(attempt.id)

    def _stop(self, attempt_id: int, reason: AttemptStatus) -> None:
        self._stop_reason[attempt_id] = reason
        self._running[attempt_id].cancel()

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cancel_poll)
            try:
                await self._poll_once()
            except Exception:
                log.exception("engine_poll_failed")

    async def _poll_once(self) -> None:
        if self._running:
            mine = await self._store(self.store.list_attempts, statuses=ACTIVE, owner=self.owner)
            for attempt in mine:
                if attempt.cancel_requested and attempt.id in self._running:
                    log.info("attempt_cancel_requested", task=attempt.task_id, attempt=attempt.id)
                    self._stop(attempt.id, AttemptStatus.CANCELLED)
        await self._pump()  # work queued by other processes for tasks we serve

    # -- scheduling --------------------------------------------------------------------------------

    async def _pump(self) -> None:
        if not self._accepting:
            return
        async with self._pump_lock:
            queued = await self._store(self.store.list_attempts, statuses=[AttemptStatus.QUEUED])
            queued = [a for a in queued if a.task_id in self._served and a.id not in self._running]
            if not queued:
                return
            busy = await self._busy()
            for attempt in queued:
                task = await self.task(attempt.task_id)
                if not self._within_limits(busy, task.repo, attempt.agent):
                    continue
                if not await self._cascade_allows(task, attempt):
                    continue
                busy.append((task.repo, attempt.agent))
                # A fresh context: the attempt's log lines must not carry the ids bound by whatever woke the
                # pump (a webhook delivery, another task's attempt); the runner binds its own.
                run = self._run(task, attempt)
                self._running[attempt.id] = asyncio.create_task(run, context=contextvars.Context())

    async def _busy(self) -> list[tuple[str, str]]:
        """(repo, agent) of every attempt holding a slot, in any process sharing the store, and ours starting up."""
        active = await self._store(self.store.list_attempts, statuses=ACTIVE)
        seen = {a.id for a in active}
        busy = [((await self.task(a.task_id)).repo, a.agent) for a in active]
        for attempt_id in self._running:
            if attempt_id not in seen:
                attempt = await self.attempt(attempt_id)
                busy.append(((await self.task(attempt.task_id)).repo, attempt.agent))
        return busy

    def _within_limits(self, busy: list[tuple[str, str]], repo: str, agent: str) -> bool:
        limits = self.settings
        per_repo = Counter(r for r, _ in busy)
        per_agent = Counter(a for _, a in busy)
        return (
            len(busy) < limits.max_parallel and per_repo[repo] < limits.per_repo and per_agent[agent] < limits.per_agent
        )

    async def _cascade_allows(self, task: Task, attempt: Attempt) -> bool:
        """Cascade: a tier starts only when every cheaper tier is done and none reached the quality threshold."""
        if task.strategy is not Strategy.CASCADE:
            return True
        lower = [a for a in await self.attempts(task.id) if a.tier < attempt.tier]
        if not lower:
            return True
        if any(not a.status.terminal for a in lower):
            return False
        quality = best_quality(lower)
        if quality < task.quality_threshold:
            return True
        reason = f"not needed: a cheaper tier reached quality {quality:.2f} (threshold {task.quality_threshold:.2f})"
        with contextlib.suppress(IllegalTransition):
            await self._transition(attempt.id, AttemptStatus.CANCELLED, finished_at=self.clock(), error=reason)
        await self._announce(task.id)  # not _after_attempt: that pumps, and we are inside the pump's lock
        return False

    async def _run(self, task: Task, attempt: Attempt) -> None:
        runner = AttemptRunner(self._ctx, task, attempt)
        try:
            await runner.run(lambda: self._stop_reason.get(attempt.id, AttemptStatus.CANCELLED))
        except asyncio.CancelledError:
            pass  # recorded by the runner; the engine goes on
        except IllegalTransition:
            log.info("attempt_taken_elsewhere", task=task.id, attempt=attempt.id)
        except Exception as error:
            log.exception("attempt_crashed", task=task.id, attempt=attempt.id)
            with contextlib.suppress(IllegalTransition, NotFound):
                await self._transition(
                    attempt.id,
                    AttemptStatus.FAILED,
                    finished_at=self.clock(),
                    error=f"internal error: {error}",
                )
        finally:
            self._running.pop(attempt.id, None)
            self._stop_reason.pop(attempt.id, None)
        await self._after_attempt(task.id)

    async def _after_attempt(self, task_id: int) -> None:
        await self._announce(task_id)
        await self._pump()

    async def _announce(self, task_id: int) -> None:
        """Wake the waiters; publish TASK_FINISHED once no attempt of the task is left to run."""
        self._changed.set()
        self._changed = asyncio.Event()
        attempts = await self.attempts(task_id)
        if attempts and all(a.status.terminal for a in attempts):
            # Two attempts finishing together both see the task finished: announce each outcome once.
            outcome = tuple((a.id, a.status.value, a.finished_at) for a in attempts)
            if self._finished_as.get(task_id) != outcome:
                self._finished_as[task_id] = outcome
                log.info("task_summary", **task_summary(await self.task(task_id), attempts))
                self.bus.publish(EngineEvent(EventKind.TASK_FINISHED, task_id))

    # -- reading -----------------------------------------------------------------------------------

    async def task(self, task_id: int) -> Task:
        if task_id not in self._tasks:
            self._tasks[task_id] = await self._store(self.store.get_task, task_id)
        return self._tasks[task_id]

    async def attempt(self, attempt_id: int) -> Attempt:
        return await self._store(self.store.get_attempt, attempt_id)

    async def attempts(self, task_id: int) -> list[Attempt]:
        return await self._store(self.store.list_attempts, task_id=task_id)

    async def compare(self, task_id: int) -> Comparison:
        await self.task(task_id)
        return compare(await self.attempts(task_id))

    async def wait_task(self, task_id: int) -> list[Attempt]:
        """Until no attempt of the task is queued or active (also when another process runs them).
        Callers bound it with asyncio.timeout()."""
        while True:
            attempts = await self.attempts(task_id)
            if all(a.status.terminal for a in attempts):
                return attempts
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=0.5)

    # -- finishing work (the blocking parts live in housekeeping.py) -------------------------------

    async def merge(self, task_id: int, attempt_id: int, *, rebase: bool = False) -> MergeResult:
        task, attempt = await self.task(task_id), await self.attempt(attempt_id)
        return await asyncio.to_thread(housekeeping.merge_attempt, self.workspaces, task, attempt, rebase)

    async def delete_attempts(self, statuses: Collection[AttemptStatus], task_id: int | None = None) -> list[Attempt]:
        """Delete finished attempts with these statuses: worktree, branch, log, home and record."""
        if not_final := [s.value for s in statuses if not s.terminal]:
            raise EngineError(f"only finished attempts can be deleted, not {', '.join(not_final)} ones")
        doomed = await self._store(self.store.list_attempts, task_id=task_id, statuses=statuses)
        for attempt in doomed:
            repo = (await self.task(attempt.task_id)).repo
            files = [self.layout.attempt_log(repo, attempt.id), self.layout.attempt_home(repo, attempt.id)]
            await asyncio.to_thread(housekeeping.discard, self.workspaces, repo, attempt, files)
        await self._store(self.store.delete_attempts, [a.id for a in doomed])
        return doomed

    async def delete_task(self, task_id: int) -> list[Attempt]:
        """Delete a task whose attempts are all finished: their worktrees, branches, logs and homes, then the
        records. Returns the attempts deleted."""
        await self.task(task_id)
        busy = [a for a in await self.attempts(task_id) if not a.status.terminal]
        if busy:
            listed = ", ".join(f"{a.id} ({a.status.value})" for a in busy)
            raise EngineError(f"task {task_id} still has unfinished attempts: {listed}; cancel it first")
        deleted = await self.delete_attempts(TERMINAL, task_id=task_id)
        await self._store(self.store.delete_task, task_id)
        self._tasks.pop(task_id, None)
        self._finished_as.pop(task_id, None)
        self._served.task_ids.discard(task_id)
        self._served.held.discard(task_id)
        log.info("task_deleted", task=task_id, attempts=len(deleted))
        return deleted

    async def cleanup_worktrees(
        self,
        *,
        dry_run: bool = False,
        older_than: float = 0.0,
        task_id: int | None = None,
        at_once: Collection[int] = (),
    ) -> CleanupReport:
        """Remove worktrees of finished tasks (one task, or all) older than `older_than`, or at once for the tasks
        in `at_once`; branches stay, they hold the work."""
        everything = await self._store(self.store.list_attempts, task_id=task_id)
        attempts = [((await self.task(a.task_id)).repo, a) for a in everything]
        roots = sorted({self.layout.worktree_root(repo) for repo, _ in attempts})
        return await asyncio.to_thread(
            housekeeping.cleanup_worktrees,
            self.workspaces,
            attempts,
            roots,
            self.clock(),
            older_than,
            dry_run,
            frozenset(at_once),
        )

    # -- store access ------------------------------------------------------------------------------

    async def _transition(self, attempt_id: int, target: AttemptStatus, **fields: object) -> Attempt:
        return await self._ctx.transition(attempt_id, target, **fields)

    async def _store(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except NotFound as error:
            raise EngineError(str(error)) from None

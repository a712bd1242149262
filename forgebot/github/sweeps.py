"""The scheduled jobs that talk to GitHub (wired to a schedule in forgebot/scheduler.py):

- `PullSweep`: tasks whose pull request was merged or closed (also when the `pull_request closed` webhook was
  missed: the state is asked from GitHub) lose their worktrees at once and the forge/ branches they recorded on
  the remote, like Publisher.pull_closed does on the webhook, whose pieces it reuses. Remote branches are looked
  up through the clone cache's remote first, so only branches still there are deleted, and a deletion that failed
  is tried again on the next run.
- `Redeliverer`: webhook deliveries that GitHub could not hand to us (forgebot was down) are redelivered, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from forgebot.core.bounded import Bounded
from forgebot.core.models import Attempt
from forgebot.engine.clones import Clones
from forgebot.engine.engine import Engine
from forgebot.engine.janitor import doomed_branches
from forgebot.engine.workspaces import WorkspaceError
from forgebot.github.port import GitHubError, GitHubPort, HookDelivery
from forgebot.github.publisher import Publisher
from forgebot.store.bot import BotStore, IssueTask


@dataclass
class _Closed:
    link: IssueTask
    attempts: list[Attempt]
    repo_path: str  # the clone cache the task ran in
    merged: bool
    head: str | None = None  # the PR's head branch; needed only when closed unmerged


@dataclass
class PullPlan:
    """What the sweep found: tasks to clean at once, and remote branches to delete per task."""

    closed: list[_Closed] = field(default_factory=list)
    errors: int = 0

    @property
    def task_ids(self) -> set[int]:
        return {c.link.task_id for c in self.closed}


class PullSweep:
    def __init__(self, github: GitHubPort, engine: Engine, store: BotStore, clones: Clones, publisher: Publisher):
        self.github = github
        self.engine = engine
        self.store = store
        self.clones = clones
        self.publisher = publisher
        # task -> head branch of its closed PR, asked once per process for the most recent tasks
        self._heads: Bounded[int, str] = Bounded(1024)

    async def plan(self, *, dry_run: bool) -> PullPlan:
        """Finished tasks whose PR is merged or closed. A state learnt from GitHub is recorded unless dry_run."""
        plan = PullPlan()
        for link in await asyncio.to_thread(self.store.pull_links):
            attempts = await self.engine.attempts(link.task_id)
            if not attempts or not all(a.status.terminal for a in attempts):
                continue
            try:
                closed = await self._closed(link, attempts, dry_run)
            except GitHubError:
                plan.errors += 1  # GitHub is having a moment: the next run asks again
                continue
            if closed is not None:
                plan.closed.append(closed)
        return plan

    async def _closed(self, link: IssueTask, attempts: list[Attempt], dry_run: bool) -> _Closed | None:
        repo_path = (await self.engine.task(link.task_id)).repo
        if link.pr_state in ("merged", "closed"):
            return _Closed(link, attempts, repo_path, link.pr_state == "merged")
        assert link.pr_number is not None
        pull = await self.github.get_pull(link.repo, link.pr_number)
        if pull.state == "open":
            return None
        state = "merged" if pull.merged else "closed"
        if not dry_run:  # the webhook was missed: record what it would have
            link = await asyncio.to_thread(self.store.update_link, link.task_id, pr_state=state)
        return _Closed(link, attempts, repo_path, pull.merged, pull.head)

    async def delete_branches(self, plan: PullPlan, removed: Collection[str], *, dry_run: bool) -> list[str]:
        """Delete (or list, in a dry run) the recorded forge/ branches of the plan's tasks that are still on the
        remote; announce the cleanup on tasks not cleaned up before. Returns "owner/name:branch" entries."""
        remote: dict[str, set[str] | None] = {}
        done: list[str] = []
        for closed in plan.closed:
            link = closed.link
            try:
                existing = await self._remote(remote, closed)
                branches = doomed_branches(closed.attempts, merged=closed.merged, head=closed.head)
                if not closed.merged and any(b in existing for b in branches) and closed.head is None:
                    closed.head = await self._head(link)
                    branches = doomed_branches(closed.attempts, merged=False, head=closed.head)
            except (GitHubError, WorkspaceError):
                plan.errors += 1
                continue
            doomed = [b for b in branches if b in existing]
            deleted = doomed if dry_run else await self.publisher.delete_branches(link.repo, doomed)
            plan.errors += len(doomed) - len(deleted)
            done.extend(f"{link.repo}:{branch}" for branch in deleted)
            if not dry_run and not link.cleaned_up:
                worktrees = sum(1 for a in closed.attempts if a.worktree in removed)
                state = "merged" if closed.merged else "closed"
                try:
                    await self.publisher.announce_cleanup(link, state, worktrees=worktrees, branches=len(deleted))
                except GitHubError:
                    plan.errors += 1
        return done

    async def _head(self, link: IssueTask) -> str:
        if link.task_id not in self._heads:
            self._heads[link.task_id] = (await self.github.get_pull(link.repo, link.pr_number or 0)).head
        return self._heads[link.task_id]

    async def _remote(self, cache: dict[str, set[str] | None], closed: _Closed) -> set[str]:
        """The branches on the task's remote now, asked once per clone cache and run."""
        if closed.repo_path not in cache:
            cache[closed.repo_path] = None
            token = await self.github.git_token(closed.link.repo)
            branches = await asyncio.to_thread(self.clones.remote_branches, closed.repo_path, token)
            cache[closed.repo_path] = set(branches)
        known = cache[closed.repo_path]
        if known is None:
            raise WorkspaceError(f"the remote of {closed.repo_path} could not be listed")
        return known


def pick_redeliveries(
    deliveries: Sequence[HookDelivery], handled: Collection[str], asked: Collection[str]
) -> list[HookDelivery]:
    """The deliveries to ask GitHub for again, oldest first, one per guid: no attempt at it was answered 2xx, it
    never reached our deliveries table (`handled`), and we have not asked for it already (`asked`)."""
    by_guid: dict[str, list[HookDelivery]] = {}
    for delivery in deliveries:
        by_guid.setdefault(delivery.guid, []).append(delivery)
    picked = []
    for guid, tries in by_guid.items():
        if not guid or guid in handled or guid in asked or any(t.ok for t in tries):
            continue
        picked.append(max(tries, key=lambda t: (t.delivered_at, t.id)))
    return sorted(picked, key=lambda t: (t.delivered_at, t.id))


@dataclass(frozen=True)
class RedeliveryReport:
    listed: int
    missed: tuple[str, ...]  # guids
    redelivered: int
    errors: int
    dry_run: bool


class Redeliverer:
    def __init__(
        self, github: GitHubPort, store: BotStore, *, lookback: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.github = github
        self.store = store
        self.lookback = lookback
        self.clock = clock
        self._asked: dict[str, float] = {}  # guid -> when we asked (forgotten after the lookback)

    async def run(self, *, dry_run: bool = False) -> RedeliveryReport:
        now = self.clock()
        self._asked = {guid: at for guid, at in self._asked.items() if at >= now - self.lookback}
        deliveries = await self.github.hook_deliveries(now - self.lookback)
        guids = sorted({d.guid for d in deliveries if not d.ok})
        handled = await asyncio.to_thread(self.store.known_deliveries, guids)
        missed = pick_redeliveries(deliveries, handled, self._asked)
        redelivered = errors = 0
        for delivery in missed if not dry_run else ():
            try:
                await self.github.redeliver(delivery.id)
            except GitHubError:
                errors += 1
                continue
            self._asked[delivery.guid] = now
            redelivered += 1
        return RedeliveryReport(len(deliveries), tuple(d.guid for d in missed), redelivered, errors, dry_run)

"""Turns engine events into what users see on GitHub: one progress comment per task (debounced edits, a
final edit with the comparison), pushed branches, the winner's pull request, and the cleanup line.

Every write looks before it leaps: the progress comment is found again by its hidden marker, a pull request
by its head branch, so a retry after a 502 or a restart never posts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from forgebot.core import render
from forgebot.core.bounded import Bounded
from forgebot.core.models import Attempt, AttemptStatus, TaskStatus, task_status
from forgebot.core.pacing import DEFAULT_DOUBLE_EVERY, DEFAULT_MAX_EDITS, EditBudget
from forgebot.core.scoring import compare
from forgebot.engine.clones import Clones
from forgebot.engine.engine import Engine
from forgebot.engine.events import EngineEvent, EventKind
from forgebot.engine.janitor import doomed_branches
from forgebot.engine.workspaces import WorkspaceError
from forgebot.github import pull_steps
from forgebot.github.port import GitHubError, GitHubPort, PullInfo
from forgebot.github.replies import post_once
from forgebot.store.bot import BotStore, IssueTask

log = structlog.get_logger(__name__)
LOG_TAIL_BYTES = 64 * 1024
REMEMBERED_TASKS = 1024  # per-task state kept beyond that is dropped, least recently written first


def web_url(api_url: str) -> str:
    """https://api.github.com → https://github.com; GitHub Enterprise https://HOST/api/v3 → https://HOST."""
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return re.sub(r"/api/v3/?$", "", api_url.rstrip("/"))


def read_tail(path: str | None, lines: int) -> str:
    if not path or lines <= 0:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class PublisherSettings:
    web_url: str = "https://github.com"
    progress_interval: float = 5.0
    max_progress_edits: int = DEFAULT_MAX_EDITS  # per task; the final edit comes on top
    progress_double_every: int = DEFAULT_DOUBLE_EVERY  # the gap between progress edits doubles this often
    log_tail_lines: int = 20
    draft_pr: bool = True
    trigger_label: str = "forge"
    secrets: tuple[str, ...] = ()  # never shown in a comment, even if an agent prints one
    # Secrets that appear while running (GitHub App installation tokens): asked for at each redaction.
    runtime_secrets: Callable[[], Iterable[str]] = tuple

    @property
    def budget(self) -> EditBudget:
        return EditBudget(self.progress_interval, self.max_progress_edits, self.progress_double_every)


class Publisher:
    def __init__(
        self,
        github: GitHubPort,
        engine: Engine,
        store: BotStore,
        clones: Clones,
        settings: PublisherSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.github = github
        self.engine = engine
        self.store = store
        self.clones = clones
        self.settings = settings
        # Set by the composition root: opens the winner's PR at the end when the repository wants it.
        self.auto_pr: Callable[[IssueTask], Awaitable[bool]] | None = None
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}
        # Per task, released when its cleanup is announced (`forget`) and bounded in any case: a task deleted
        # through the API, or never cleaned up, does not stay forever. Losing an entry costs at most one extra
        # edit (the body is compared again) or a fresh edit budget.
        self._last_edit: Bounded[int, float] = Bounded(REMEMBERED_TASKS)
        self._edits: Bounded[int, int] = Bounded(REMEMBERED_TASKS)  # edits of each task's progress comment
        self._last_body: Bounded[int, str] = Bounded(REMEMBERED_TASKS)
        self._footers: Bounded[int, list[str]] = Bounded(REMEMBERED_TASKS)  # kept past `forget`: shown again
        self._background: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # -- wiring ------------------------------------------------------------------------------------

    def attach(self) -> None:
        self._unsubscribe = self.engine.bus.subscribe(self._on_event)

    async def close(self) -> None:
        """Stop listening and cancel what is still under way (after `settle`, at shutdown)."""
        if self._unsubscribe:
            self._unsubscribe()
        pending = [*self._timers.values(), *self._background]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _on_event(self, event: EngineEvent) -> None:
        if event.kind is EventKind.TASK_FINISHED:
            self._spawn(event.task_id, self._finished(event.task_id))
        elif event.kind is EventKind.ATTEMPT_STATUS and event.attempt and event.attempt.status.terminal:
            self._spawn(event.task_id, self._attempt_done(event.attempt))
        elif event.kind in (EventKind.ATTEMPT_STATUS, EventKind.ATTEMPT_PROGRESS, EventKind.ATTEMPT_ADDED):
            self._schedule(event.task_id)

    def _spawn(self, task_id: int, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            structlog.contextvars.bind_contextvars(task=task_id)
            try:
                await work
            except Exception:
                log.exception("publisher_failed")

        # A fresh context: the event may come from another task's attempt or a delivery; their ids do not apply.
        task = asyncio.create_task(guarded(), context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _schedule(self, task_id: int) -> None:
        """A progress edit within the task's edit budget (core/pacing.py); events in between are folded into it.
        Once the budget is spent, nothing until the final edit."""
        if task_id in self._timers and not self._timers[task_id].done():
            return
        wait = self.settings.budget.next_edit(self._edits.get(task_id, 0), self._last_edit.get(task_id), self._clock())
        if wait is None:
            return

        async def later() -> None:
            structlog.contextvars.bind_contextvars(task=task_id)
            await asyncio.sleep(max(0.0, wait))
            self._timers.pop(task_id, None)
            with contextlib.suppress(GitHubError):
                await self.refresh(task_id, budgeted=True)

        timer = self._timers[task_id] = asyncio.create_task(later(), context=contextvars.Context())
        self._background.add(timer)  # settle() waits for it also once it is past its sleep and editing
        timer.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for the background work under way (tests and shutdown)."""
        while self._background or any(not t.done() for t in self._timers.values()):
            await asyncio.gather(*self._background, *self._timers.values(), return_exceptions=True)

    async def flush(self, within: float) -> bool:
        """At shutdown: make the pending progress edits now instead of at their time, then settle within
        `within` seconds. False when work was still under way (`close` cancels it)."""
        for task_id, timer in list(self._timers.items()):
            if not timer.done():
                timer.cancel()
                self._timers.pop(task_id, None)
                self._spawn(task_id, self.refresh(task_id))
        try:
            async with asyncio.timeout(within):
                await self.settle()
        except TimeoutError:
            return False
        return True

    # -- the progress comment ----------------------------------------------------------------------

    def _link(self, task_id: int) -> IssueTask | None:
        try:
            return self.store.get_link(task_id)
        except Exception:
            return None  # not a GitHub task (CLI), or not linked yet: nothing to show

    async def open_progress(self, link: IssueTask) -> IssueTask:
        """Find our progress comment by its marker, or post it; remembered in the link. Under the task's lock,
        so two callers never both post it."""
        async with self._lock(link.task_id):
            return await self._open_progress(link)

    async def _open_progress(self, link: IssueTask) -> IssueTask:
        current = await asyncio.to_thread(self.store.get_link, link.task_id)
        if current.progress_comment_id:
            return current
        comments = await self.github.list_comments(link.repo, link.issue)
        existing = next((c for c in comments if render.find_marker(c.body) == (link.task_id, "progress")), None)
        body = await self._body(current)
        comment = existing or await self.github.create_comment(link.repo, link.issue, body)
        self._last_body[link.task_id] = comment.body if existing else body
        self._last_edit[link.task_id] = self._clock()
        return await asyncio.to_thread(self.store.update_link, link.task_id, progress_comment_id=comment.id)

    def _lock(self, task_id: int) -> asyncio.Lock:
        return self._locks.setdefault(task_id, asyncio.Lock())

    async def refresh(self, task_id: int, *, footer: str | None = None, budgeted: bool = False) -> None:
        """Edit the progress comment (posting it first if needed) when what it shows changed. `budgeted`: a
        progress edit, skipped once the task's edit budget is spent; others (final, commands) are always made."""
        link = await asyncio.to_thread(self._link, task_id)
        if link is None:
            return
        if footer:
            self._footers.setdefault(task_id, []).append(footer)
        async with self._lock(task_id):
            if not link.progress_comment_id:
                link = await self._open_progress(link)
            if budgeted and not self.settings.budget.may_edit(self._edits.get(task_id, 0)):
                return
            body = await self._body(link)
            if body == self._last_body.get(task_id):
                return  # nothing visible changed: no write
            assert link.progress_comment_id is not None
            await self.github.edit_comment(link.repo, link.progress_comment_id, body)
            self._last_body[task_id] = body
            self._last_edit[task_id] = self._clock()
            self._edits[task_id] = self._edits.get(task_id, 0) + 1

    async def _body(self, link: IssueTask) -> str:
        task = await self.engine.task(link.task_id)
        attempts = await self.engine.attempts(link.task_id)
        finished = bool(attempts) and task_status([a.status for a in attempts]) not in (
            TaskStatus.QUEUED,
            TaskStatus.RUNNING,
        )
        tails = {}
        for attempt in attempts:
            if attempt.status.terminal and attempt.status is not AttemptStatus.SUCCEEDED:
                tails[attempt.id] = await asyncio.to_thread(read_tail, attempt.log_path, self.settings.log_tail_lines)
        links = render.branch_links(f"{self.settings.web_url}/{link.repo}")
        pushed = {a.branch for a in attempts if a.commit_sha}  # the others were never pushed: no dead links
        footer = list(self._footers.get(link.task_id, ()))
        if link.pr_number:
            footer.insert(0, f"Pull request: #{link.pr_number} ({link.pr_state or 'open'})")
        # Redacted whole: an agent's output reaches the log tails, its error and its final message.
        return self._redact(
            render.progress_comment(
                task,
                attempts,
                now=self._clock(),
                branch_url=lambda branch: links(branch) if branch in pushed else None,
                comparison=compare(attempts) if finished else None,
                log_tails=tails,
                footer_lines=footer,
            )
        )

    def _redact(self, text: str) -> str:
        for secret in (*self.settings.secrets, *self.settings.runtime_secrets()):
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- finishing ---------------------------------------------------------------------------------

    async def _attempt_done(self, attempt: Attempt) -> None:
        link = await asyncio.to_thread(self._link, attempt.task_id)
        if link is None:
            return
        if attempt.commit_sha:
            await self.push(link, attempt)
        self._schedule(attempt.task_id)

    async def push(self, link: IssueTask, attempt: Attempt) -> None:
        """Push the attempt's branch: rewritten freely (a retry starts it over) until it is the head of the
        task's open pull request; then only fast-forwarded (others may push there too), and a refused push is
        told on the pull request, a new commit in the progress comment."""
        task = await self.engine.task(link.task_id)
        token = await self.github.git_token(link.repo)
        try:
            pull = await self._open_pull_of(link, attempt)
            force = pull is None
        except GitHubError as error:  # not knowing whether it is a PR's branch: push, but never rewrite it
            log.warning("pull_lookup_failed", task=task.id, pull=link.pr_number, status=error.status)
            pull, force = None, False
        try:
            await asyncio.to_thread(self.clones.push, task.repo, attempt.branch, token, force=force)
        except WorkspaceError as error:
            log.warning("branch_push_failed", task=task.id, attempt=attempt.id, branch=attempt.branch, error=str(error))
            if pull is not None and attempt.commit_sha:
                text = render.push_refused(attempt, pull.number)
                key = f"push-{attempt.id}-{attempt.commit_sha[:12]}"
                await post_once(self.github, link.repo, pull.number, text, key=key)
            return
        if pull is not None and attempt.commit_sha and pull.head_sha != attempt.commit_sha:
            await self.refresh(link.task_id, footer=render.pushed_to_pull(attempt, pull.number))

    async def _open_pull_of(self, link: IssueTask, attempt: Attempt) -> PullInfo | None:
        if not link.pr_number:
            return None
        pull = await self.github.get_pull(link.repo, link.pr_number)
        return pull if pull.head == attempt.branch and pull.state == "open" else None

    async def _finished(self, task_id: int) -> None:
        link = await asyncio.to_thread(self._link, task_id)
        if link is None:
            return
        timer = self._timers.pop(task_id, None)
        if timer:
            timer.cancel()
        await self.refresh(task_id)
        summary = compare(await self.engine.attempts(task_id))
        # The engine writes the task's one `task_summary` line; this one says where it was reported.
        log.info("task_reported", task=task_id, repo=link.repo, issue=link.issue)
        if self.auto_pr is not None and summary.winner is not None and not link.pr_number:
            await self.auto_pr(link)

    # -- pull requests -----------------------------------------------------------------------------

    async def open_pull(
        self, link: IssueTask, attempt: Attempt, *, issue_title: str, draft: bool | None = None
    ) -> PullInfo:
        """The pull request for this attempt: found by its branch, or opened (a draft unless `draft` or the
        settings say otherwise). Its number is saved before the label and the reviewer (see pull_steps.py)."""
        task = await self.engine.task(link.task_id)
        await self.push(link, attempt)
        summary = compare(await self.engine.attempts(task.id))
        new = pull_steps.NewPull(
            title=render.pr_title(issue_title),
            body=self._redact(render.pr_body(task, attempt, summary, issue_number=link.issue)),
            head=attempt.branch,
            base=task.base_branch,
            draft=self.settings.draft_pr if draft is None else draft,
        )
        pull = await pull_steps.find_or_create(self.github, link.repo, new)
        saved = {"pr_number": pull.number, "pr_state": pull_steps.state(pull)}
        await asyncio.to_thread(self.store.update_link, link.task_id, **saved)
        await pull_steps.complete(
            self.github, link.repo, pull, label=self.settings.trigger_label, reviewer=link.requester
        )
        await self.refresh(link.task_id)
        return pull

    async def pull_closed(self, link: IssueTask, *, merged: bool, head: str) -> None:
        """Remove the task's worktrees and delete the forge/ branches it created, except the PR's own branch
        when the PR was closed unmerged (someone may reopen it)."""
        state = "merged" if merged else "closed"
        await asyncio.to_thread(self.store.update_link, link.task_id, pr_state=state)
        if link.cleaned_up:
            return
        removed, deleted = await self.clean_up(link, keep=None if merged else head)
        await self.announce_cleanup(link, state, worktrees=removed, branches=deleted)

    async def clean_up(self, link: IssueTask, *, keep: str | None) -> tuple[int, int]:
        """Remove the task's finished worktrees and delete every forge/ branch it recorded except `keep`
        (never a branch forgebot did not create). Returns (worktrees removed, branches deleted)."""
        attempts = await self.engine.attempts(link.task_id)
        report = await self.engine.cleanup_worktrees(task_id=link.task_id, at_once=(link.task_id,))
        deleted = await self.delete_branches(link.repo, doomed_branches(attempts, merged=keep is None, head=keep))
        return len(report.removed), len(deleted)

    async def delete_branches(self, repo: str, branches: list[str]) -> list[str]:
        """Delete these branches on GitHub; returns the ones deleted (a failure is logged, the rest go on)."""
        deleted = []
        for branch in branches:
            try:
                if await self.github.delete_branch(repo, branch):
                    deleted.append(branch)
            except GitHubError as error:
                log.warning("branch_delete_failed", repo=repo, branch=branch, status=error.status)
        return deleted

    async def announce_cleanup(self, link: IssueTask, state: str, *, worktrees: int, branches: int) -> None:
        """Mark the task cleaned up and add the final line to its progress comment."""
        await asyncio.to_thread(self.store.update_link, link.task_id, cleaned_up=True)
        line = (
            f"PR #{link.pr_number} {state}: removed {plural(worktrees, 'worktree')} "
            f"and deleted {plural(branches, 'branch')}."
        )
        await self.refresh(link.task_id, footer=line)
        self.forget(link.task_id)

    def forget(self, task_id: int) -> None:
        """Release what is held for a finished task whose cleanup was announced (its last comment body above
        all). Its footer lines stay (bounded): a later command's edit shows them again."""
        for held in (self._last_edit, self._edits, self._last_body):
            held.pop(task_id, None)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else ("es" if word.endswith("h") else "s"))

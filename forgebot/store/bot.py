"""The GitHub bot's own durable state, beside the engine's: webhook deliveries and issue ↔ task links.

A delivery is recorded (with its payload) before it is acknowledged and marked done or failed after its
handlers ran, so a redelivery of a handled one is a no-op, a failed one runs again, and one that a killed
daemon never finished is picked up on the next start.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from forgebot.store.base import NotFound
from forgebot.store.schema import attempts, deliveries, issue_tasks, tasks
from forgebot.store.sql import WRITE_OPTION


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    repo: str | None
    status: DeliveryStatus
    payload: str
    received_at: float
    tries: int
    error: str | None = None


COMMAND_EVENT = "forge_command"  # the deliveries rows that record commands, not webhook deliveries


class CommandState(StrEnum):
    NEW = "new"
    DONE = "done"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class CommandRun:
    state: CommandState
    answer: str | None = None


@dataclass(frozen=True)
class Claim:
    """A delivery to record as pending (see `BotStore.claim_delivery`)."""

    id: str
    event: str
    action: str | None
    repo: str | None
    payload: str
    now: float


@dataclass(frozen=True)
class Finish:
    """A delivery whose handlers ran: done, or failed with `error`."""

    id: str
    error: str | None
    now: float


@dataclass(frozen=True)
class IssueTask:
    task_id: int
    repo: str  # owner/name
    issue: int
    requester: str
    created_at: float
    delivery: str | None = None
    installation_id: int | None = None
    progress_comment_id: int | None = None
    pr_number: int | None = None
    pr_state: str | None = None
    cleaned_up: bool = False


_LINK_FIELDS = {"installation_id", "progress_comment_id", "pr_number", "pr_state", "cleaned_up"}


class BotStore:
    """Thread-safe like SqlStore (it shares its connection pool); every call blocks, run it in a thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
            yield conn

    # -- deliveries --------------------------------------------------------------------------------

    def claim_delivery(
        self, delivery_id: str, *, event: str, action: str | None, repo: str | None, payload: str, now: float
    ) -> bool:
        """Record a delivery as pending. True when it should be handled: new, or an earlier try failed.
        False for one already handled or being handled (a pending one left by a crash is resumed at start)."""
        with self._write() as conn:
            try:
                with conn.begin_nested():  # a savepoint: the duplicate's error must not end the transaction
                    conn.execute(
                        insert(deliveries).values(
                            id=delivery_id,
                            event=event,
                            action=action,
                            repo=repo,
                            status=DeliveryStatus.PENDING.value,
                            payload=payload,
                            received_at=now,
                            tries=1,
                        )
                    )
                return True
            except IntegrityError:
                pass
            return _requeue(conn, delivery_id, payload=payload, received_at=now)

    def finish_delivery(self, delivery_id: str, *, error: str | None, now: float) -> None:
        """Done (its payload dropped) or failed with `error` (its payload kept, for a retry from the stored copy)."""
        self.record_deliveries([], [Finish(delivery_id, error, now)])

    def record_deliveries(self, claims: Sequence[Claim], finishes: Sequence[Finish]) -> list[bool]:
        """Many claims and finishes in one transaction (what arrived while the previous batch was written):
        `claim_delivery`'s answer for each claim, in order; a second claim of one id in a batch gets False."""
        try:
            with self._write() as conn:
                answers = self._claim_batch(conn, claims)
                self._finish_batch(conn, finishes)
                return answers
        except IntegrityError:  # another process inserted one of these ids meanwhile: one at a time instead
            answers = [self.claim_delivery(c.id, event=c.event, action=c.action, repo=c.repo, payload=c.payload,
                                           now=c.now) for c in claims]  # fmt: skip
            with self._write() as conn:
                self._finish_batch(conn, finishes)
            return answers

    def _claim_batch(self, conn: Connection, claims: Sequence[Claim]) -> list[bool]:
        if not claims:
            return []
        ids = {c.id for c in claims}
        query = select(deliveries.c.id, deliveries.c.status).where(deliveries.c.id.in_(ids))
        known = {row.id: row.status for row in conn.execute(query)}
        answers, fresh, again = [], [], []
        for claim in claims:
            status = known.get(claim.id)
            known[claim.id] = DeliveryStatus.PENDING.value  # a second claim in this batch is a duplicate
            answers.append(status in (None, DeliveryStatus.FAILED.value))
            if status is None:
                fresh.append(claim)
            elif status == DeliveryStatus.FAILED.value:
                again.append(claim)
        if fresh:
            conn.execute(
                insert(deliveries),
                [
                    {"id": c.id, "event": c.event, "action": c.action, "repo": c.repo, "payload": c.payload,
                     "status": DeliveryStatus.PENDING.value, "received_at": c.now, "tries": 1}
                    for c in fresh
                ],
            )  # fmt: skip
        for claim in again:
            _requeue(conn, claim.id, payload=claim.payload, received_at=claim.now)
        return answers

    def _finish_batch(self, conn: Connection, finishes: Sequence[Finish]) -> None:
        done = [{"b_id": f.id, "b_at": f.now} for f in finishes if not f.error]
        failed = [{"b_id": f.id, "b_at": f.now, "b_error": f.error} for f in finishes if f.error]
        where = deliveries.c.id == bindparam("b_id")
        if done:  # a handled payload is not needed again
            values: dict[str, Any] = {"status": DeliveryStatus.DONE.value, "finished_at": bindparam("b_at")}
            values["error"] = None
            conn.execute(update(deliveries).where(where).values(payload="", **values), done)
        if failed:  # a failed one is, for a retry from the stored copy
            values = {"status": DeliveryStatus.FAILED.value, "finished_at": bindparam("b_at")}
            conn.execute(update(deliveries).where(where).values(error=bindparam("b_error"), **values), failed)

    def get_delivery(self, delivery_id: str) -> Delivery:
        with self._engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one_or_none()
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return _delivery(row)

    def pending_deliveries(self) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.status == DeliveryStatus.PENDING.value, deliveries.c.event != COMMAND_EVENT)
            .order_by(deliveries.c.received_at)
        )
        with self._engine.connect() as conn:
            return [_delivery(row) for row in conn.execute(query)]

    def known_deliveries(self, delivery_ids: list[str]) -> set[str]:
        """Which of these delivery ids reached us (handled, being handled, or failed in a handler)."""
        found: set[str] = set()
        with self._engine.connect() as conn:
            for start in range(0, len(delivery_ids), 500):
                chunk = delivery_ids[start : start + 500]
                found.update(conn.execute(select(deliveries.c.id).where(deliveries.c.id.in_(chunk))).scalars())
        return found

    # -- issue ↔ task ------------------------------------------------------------------------------

    def link(self, link: IssueTask) -> IssueTask:
        values = {column.name: getattr(link, column.name) for column in issue_tasks.c}
        with self._write() as conn:
            conn.execute(insert(issue_tasks).values(values))
        return link

    def get_link(self, task_id: int) -> IssueTask:
        with self._engine.connect() as conn:
            row = conn.execute(select(issue_tasks).where(issue_tasks.c.task_id == task_id)).one_or_none()
        if row is None:
            raise NotFound(f"task {task_id} is not linked to an issue")
        return _link(row)

    def links_for_tasks(self, task_ids: Collection[int]) -> dict[int, IssueTask]:
        """The links of those tasks that have one, by task id (one query, for listings)."""
        if not task_ids:
            return {}
        query = select(issue_tasks).where(issue_tasks.c.task_id.in_(sorted(set(task_ids))))
        with self._engine.connect() as conn:
            return {row.task_id: _link(row) for row in conn.execute(query)}

    def links_for_issue(self, repo: str, issue: int) -> list[IssueTask]:
        """Newest first: the task a command on the issue means by default is the latest one."""
        query = (
            select(issue_tasks)
            .where(issue_tasks.c.repo == repo, issue_tasks.c.issue == issue)
            .order_by(issue_tasks.c.task_id.desc())
        )
        with self._engine.connect() as conn:
            return [_link(row) for row in conn.execute(query)]

    def link_for_delivery(self, delivery: str) -> IssueTask | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(issue_tasks).where(issue_tasks.c.delivery == delivery)).one_or_none()
        return None if row is None else _link(row)

    def link_for_pull(self, repo: str, pr_number: int) -> IssueTask | None:
        query = select(issue_tasks).where(issue_tasks.c.repo == repo, issue_tasks.c.pr_number == pr_number)
        with self._engine.connect() as conn:
            row = conn.execute(query.order_by(issue_tasks.c.task_id.desc())).first()
        return None if row is None else _link(row)

    def pull_links(self) -> list[IssueTask]:
        """The tasks that have a pull request, oldest first."""
        query = select(issue_tasks).where(issue_tasks.c.pr_number.is_not(None)).order_by(issue_tasks.c.task_id)
        with self._engine.connect() as conn:
            return [_link(row) for row in conn.execute(query)]

    def unlinked_queued_attempts(self) -> list[int]:
        """Queued attempts of GitHub tasks that have no issue link: a daemon stopped between creating the task
        and linking it (forgebot/github/bot.py `start_task`). Nobody sees them; ids in order, one query."""
        linked = select(issue_tasks.c.task_id)
        query = (
            select(attempts.c.id)
            .join(tasks, tasks.c.id == attempts.c.task_id)
            .where(attempts.c.status == "queued", tasks.c.source == "github", tasks.c.id.not_in(linked))
            .order_by(attempts.c.id)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def update_link(self, task_id: int, **fields: Any) -> IssueTask:
        unknown = set(fields) - _LINK_FIELDS
        if unknown:
            raise ValueError(f"not an updatable link field: {sorted(unknown)[0]}")
        with self._write() as conn:
            if conn.execute(update(issue_tasks).where(issue_tasks.c.task_id == task_id).values(fields)).rowcount == 0:
                raise NotFound(f"task {task_id} is not linked to an issue")
        return self.get_link(task_id)

    # -- commands ----------------------------------------------------------------------------------
    # One row per `/forge` line handled, keyed by (comment, line), in the deliveries table under its own event
    # name (no schema change): a redelivery or a resumed delivery never runs a finished command again.

    def begin_command(self, key: str, *, verb: str, repo: str, now: float) -> CommandRun:
        """Record that command `key` starts. NEW: run it (also after a failed try). DONE: it ran; `answer` is
        its reply, to post again if that was lost. INTERRUPTED: an earlier try stopped midway (a crash, or an
        error in a command that is not safe to repeat, which the handler leaves pending)."""
        with self._write() as conn:
            if _insert_command(conn, key, verb, repo, now) or _requeue(conn, key):
                return CommandRun(CommandState.NEW)
            row = conn.execute(select(deliveries).where(deliveries.c.id == key)).one()
        if row.status == DeliveryStatus.DONE.value:
            return CommandRun(CommandState.DONE, row.payload or None)
        return CommandRun(CommandState.INTERRUPTED)

    def finish_command(self, key: str, *, answer: str | None, error: str | None, now: float) -> None:
        """Done with its answer (kept, so a lost reply can be posted again), or failed: it runs again next time."""
        status = DeliveryStatus.FAILED if error else DeliveryStatus.DONE
        values = {"status": status.value, "finished_at": now, "error": error, "payload": answer or ""}
        with self._write() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == key).values(values))


def _requeue(conn: Connection, key: str, **values: Any) -> bool:
    """A failed delivery or command back to pending for another try (with `values`, e.g. the new payload). False
    when it is not failed: done, or pending (being handled, or left by a crash)."""
    again = {"status": DeliveryStatus.PENDING.value, "finished_at": None, "error": None, **values}
    failed = deliveries.c.status == DeliveryStatus.FAILED.value
    query = update(deliveries).where(deliveries.c.id == key, failed).values(**again, tries=deliveries.c.tries + 1)
    return conn.execute(query).rowcount == 1


def _insert_command(conn: Connection, key: str, verb: str, repo: str, now: float) -> bool:
    """False when the command has a row already."""
    row = {"id": key, "event": COMMAND_EVENT, "action": verb, "repo": repo, "payload": "", "received_at": now}
    try:
        with conn.begin_nested():  # a savepoint: the duplicate's error must not end the transaction
            conn.execute(insert(deliveries).values(**row, status=DeliveryStatus.PENDING.value, tries=1))
    except IntegrityError:
        return False
    return True


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        event=row.event,
        action=row.action,
        repo=row.repo,
        status=DeliveryStatus(row.status),
        payload=row.payload,
        received_at=row.received_at,
        tries=row.tries,
        error=row.error,
    )


def _link(row: Row[Any]) -> IssueTask:
    return IssueTask(**{column.name: getattr(row, column.name) for column in issue_tasks.c})

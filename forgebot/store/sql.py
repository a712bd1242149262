"""SqlStore: the Store on SQLAlchemy Core, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry

from forgebot.core.models import (
    AgentProfile,
    Attempt,
    AttemptStatus,
    CheckSpec,
    Strategy,
    Task,
    check_transition,
)
from forgebot.store import codec
from forgebot.store.base import NotFound, StoreError
from forgebot.store.schema import attempts, tasks

if TYPE_CHECKING:
    from forgebot.store.bot import BotStore

# Execution option marking a transaction that will write; SQLite turns it into BEGIN IMMEDIATE.
WRITE_OPTION = "forgebot_write"
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=10000",  # first, so the pragmas below wait for other processes' locks too
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
# Serialises migrations of concurrent processes on one PostgreSQL database (arbitrary fixed key).
_PG_MIGRATION_LOCK = 0x666F726765626F74
_MIGRATIONS = Path(__file__).parent / "migrations"
# Bounded so a pathological conflict storm surfaces as an error instead of spinning forever.
_BRANCH_TRIES = 50


def slug(name: str) -> str:
    """Branch- and path-safe form of an agent name (git refuses `..`, a leading `.` or `-`, and `.lock`)."""
    text = re.sub(r"[^a-z0-9._-]", "-", name.lower())
    text = re.sub(r"\.{2,}", ".", text).strip(".-")
    text = re.sub(r"\.lock$", "-lock", text)
    return text or "agent"


def open_store(url: str) -> SqlStore:
    """Connect to `url` (sqlite:///... or postgresql+psycopg://...) and migrate it to the latest schema."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid store URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError(f"store URL {url!r} must name a SQLite file (sqlite:////abs/path/forgebot.db)")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, pool_size=5, max_overflow=10)
        _configure_sqlite(engine)
    elif backend == "postgresql" and parsed.get_driver_name() == "psycopg":
        engine = create_engine(parsed, pool_size=5, max_overflow=10, pool_pre_ping=True)
    else:
        raise StoreError(f"unsupported store URL {url!r}: use sqlite:/// or postgresql+psycopg://")
    try:
        _migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine)


def _configure_sqlite(engine: Engine) -> None:
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module so on_begin decides the lock mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    def on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a read-then-write can neither deadlock nor lose an update.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


def _migrate(engine: Engine, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
    with engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
        # Under this lock a second process waits, then finds the schema already at head.
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


class SqlStore:
    """Thread-safe: every call takes its own pooled connection and transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
            yield conn

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
    ) -> Task:
        task = Task(
            id=0,
            title=title,
            description=description,
            repo=repo,
            base_branch=base_branch,
            base_sha=base_sha,
            strategy=Strategy(strategy),
            quality_threshold=quality_threshold,
            checks=tuple(checks),
            created_at=created_at,
            source=source,
            external_ref=external_ref,
        )
        values = {column.name: getattr(task, column.name) for column in tasks.c if column.name != "id"}
        values.update(strategy=task.strategy.value, checks=codec.dump_specs(task.checks))
        with self._write() as conn:
            task.id = conn.execute(insert(tasks).values(values).returning(tasks.c.id)).scalar_one()
        return task

    def get_task(self, task_id: int) -> Task:
        with self._read() as conn:
            row = conn.execute(select(tasks).where(tasks.c.id == task_id)).one_or_none()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        return codec.task_from_row(row)

    def list_tasks(self, *, limit: int = 100, repo: str | None = None) -> list[Task]:
        if limit < 1:
            raise ValueError(f"list_tasks limit must be at least 1, got {limit}")
        query = select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(limit)
        if repo is not None:
            query = query.where(tasks.c.repo == repo)
        with self._read() as conn:
            return [codec.task_from_row(row) for row in conn.execute(query)]

    def delete_task(self, task_id: int) -> None:
        # Attempts go with it through ON DELETE CASCADE.
        with self._write() as conn:
            if conn.execute(delete(tasks).where(tasks.c.id == task_id)).rowcount == 0:
                raise NotFound(f"task {task_id} not found")

    def add_attempt(self, *, task_id: int, profile: AgentProfile, created_at: float, worktree_root: str) -> Attempt:
        profile_json = codec.dump_profile(profile)  # first: it rejects a non-AgentProfile by name
        if not profile.name:
            raise ValueError("agent profile name is empty; it is needed for the branch name")
        for _ in range(_BRANCH_TRIES):
            try:
                return self._insert_attempt(task_id, profile, profile_json, created_at, worktree_root)
            except IntegrityError:
                continue  # another writer took the name between our read and insert; pick again
        raise StoreError(f"could not allocate a branch for task {task_id} after {_BRANCH_TRIES} tries")

    def _insert_attempt(
        self, task_id: int, profile: AgentProfile, profile_json: str, created_at: float, worktree_root: str
    ) -> Attempt:
        base = f"forge/{task_id}-{slug(profile.name)}"
        with self._write() as conn:
            repo = conn.execute(select(tasks.c.repo).where(tasks.c.id == task_id)).scalar_one_or_none()
            if repo is None:
                raise NotFound(f"task {task_id} not found")
            similar = select(attempts.c.branch).where(
                attempts.c.repo == repo, attempts.c.branch.startswith(base, autoescape=True)
            )
            branch = _first_free(base, set(conn.execute(similar).scalars()))
            attempt = Attempt(
                id=0,
                task_id=task_id,
                profile=profile,
                branch=branch,
                worktree=str(Path(worktree_root) / f"task-{branch.removeprefix('forge/')}"),
                status=AttemptStatus.QUEUED,
                created_at=created_at,
            )
            defaults = {field: getattr(attempt, field) for field in codec.UPDATABLE_FIELDS}
            values = codec.attempt_columns(defaults)
            values.update(
                task_id=task_id,
                repo=repo,
                profile=profile_json,
                branch=attempt.branch,
                status=attempt.status.value,
                created_at=created_at,
            )
            attempt.id = conn.execute(insert(attempts).values(values).returning(attempts.c.id)).scalar_one()
        return attempt

    def get_attempt(self, attempt_id: int) -> Attempt:
        with self._read() as conn:
            return _fetch_attempt(conn, attempt_id)

    def list_attempts(
        self,
        *,
        task_id: int | None = None,
        statuses: Collection[AttemptStatus] | None = None,
        owner: str | None = None,
    ) -> list[Attempt]:
        query = select(attempts).order_by(attempts.c.id)
        if task_id is not None:
            query = query.where(attempts.c.task_id == task_id)
        if statuses is not None:
            query = query.where(attempts.c.status.in_([AttemptStatus(s).value for s in statuses]))
        if owner is not None:
            query = query.where(attempts.c.owner == owner)
        with self._read() as conn:
            return [codec.attempt_from_row(row) for row in conn.execute(query)]

    def transition(self, attempt_id: int, target: AttemptStatus, **fields: Any) -> Attempt:
        target = AttemptStatus(target)
        values = codec.attempt_columns(fields)
        with self._write() as conn:
            current = conn.execute(
                select(attempts.c.status).where(attempts.c.id == attempt_id).with_for_update()
            ).scalar_one_or_none()
            if current is None:
                raise NotFound(f"attempt {attempt_id} not found")
            check_transition(AttemptStatus(current), target)
            values["status"] = target.value
            conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(values))
            return _fetch_attempt(conn, attempt_id)

    def update_attempt(self, attempt_id: int, **fields: Any) -> Attempt:
        values = codec.attempt_columns(fields)
        with self._write() as conn:
            if values:
                conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(values))
            return _fetch_attempt(conn, attempt_id)

    def delete_attempts(self, attempt_ids: Collection[int]) -> int:
        if not attempt_ids:
            return 0
        with self._write() as conn:
            return conn.execute(delete(attempts).where(attempts.c.id.in_(list(attempt_ids)))).rowcount

    def status_counts(self) -> list[tuple[int, AttemptStatus | None, int]]:
        """(task id, attempt status, number of its attempts with it), one row per pair; status None for a task
        without attempts. One grouped query, for metrics: a task's status is derived from these."""
        query = (
            select(tasks.c.id, attempts.c.status, func.count(attempts.c.id))
            .select_from(tasks.outerjoin(attempts, attempts.c.task_id == tasks.c.id))
            .group_by(tasks.c.id, attempts.c.status)
        )
        with self._read() as conn:
            return [(int(t), AttemptStatus(s) if s else None, int(n)) for t, s, n in conn.execute(query)]

    def bot_store(self) -> BotStore:
        """The GitHub bot's tables, on the same database and connection pool."""
        from forgebot.store.bot import BotStore  # bot.py imports this module

        return BotStore(self._engine)

    def close(self) -> None:
        self._engine.dispose()


def _first_free(base: str, taken: set[str]) -> str:
    """`base`, else `base-2`, `base-3`... whichever is not taken yet."""
    return next(name for n in itertools.count(1) if (name := base if n == 1 else f"{base}-{n}") not in taken)


def _fetch_attempt(conn: Connection, attempt_id: int) -> Attempt:
    row = conn.execute(select(attempts).where(attempts.c.id == attempt_id)).one_or_none()
    if row is None:
        raise NotFound(f"attempt {attempt_id} not found")
    return codec.attempt_from_row(row)

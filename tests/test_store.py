"""forgebot.store against real databases: a SQLite file and PostgreSQL (see `store_url` in conftest)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from forgebot.core.models import (
    AgentProfile,
    Attempt,
    AttemptStatus,
    CheckResult,
    CheckSpec,
    DiffStats,
    IllegalTransition,
    Price,
    Strategy,
    Task,
    Usage,
)
from forgebot.store import NotFound, SqlStore, StoreError, open_store
from forgebot.store.schema import metadata

T = TypeVar("T")
CLAUDE = AgentProfile(name="claude", executor="claude-code")
# Attempt fields fixed at creation; every other field must be storable through update_attempt.
FIXED_FIELDS = {"id", "task_id", "profile", "branch", "status", "created_at"}


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def make_task(store: SqlStore, **overrides: Any) -> Task:
    values: dict[str, Any] = {
        "title": "Fix the bug",
        "description": "The parser drops the last line.",
        "repo": "/srv/repo",
        "base_branch": "main",
        "base_sha": "f" * 40,
        "strategy": Strategy.PARALLEL,
        "quality_threshold": 0.75,
        "checks": [CheckSpec("tests", ("pytest", "-q"), 120.0), CheckSpec("lint", ("ruff", "check"))],
        "created_at": 1_700_000_000.25,
    }
    values.update(overrides)
    return store.create_task(**values)


def add(store: SqlStore, task: Task, profile: AgentProfile = CLAUDE) -> Attempt:
    return store.add_attempt(
        task_id=task.id,
        profile=profile,
        created_at=1_700_000_001.5,
        worktree_root="/wt",
    )


def in_threads(count: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run work(0..count-1) in threads released together; exceptions are returned, not raised."""
    start = threading.Barrier(count)

    def run(index: int) -> T | BaseException:
        start.wait(timeout=10)
        try:
            return work(index)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_task_round_trip(store: SqlStore) -> None:
    task = make_task(store, source="github", external_ref="owner/repo#12", strategy=Strategy.CASCADE)
    loaded = store.get_task(task.id)
    assert loaded == task
    assert loaded.checks == (
        CheckSpec("tests", ("pytest", "-q"), 120.0),
        CheckSpec("lint", ("ruff", "check")),
    )
    assert loaded.strategy is Strategy.CASCADE
    assert make_task(store).id != task.id


def test_list_tasks_newest_first_with_limit_and_repo(store: SqlStore) -> None:
    old = make_task(store, created_at=10.0)
    new = make_task(store, created_at=30.0)
    other = make_task(store, created_at=20.0, repo="/srv/other")
    assert [t.id for t in store.list_tasks()] == [new.id, other.id, old.id]
    assert [t.id for t in store.list_tasks(limit=2)] == [new.id, other.id]
    assert store.list_tasks(repo="/srv/other") == [other]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.list_tasks(limit=0)


def test_delete_task_removes_its_attempts_only(store: SqlStore) -> None:
    doomed, kept = make_task(store), make_task(store)
    gone = [add(store, doomed).id, add(store, doomed).id]
    survivor = add(store, kept)
    store.delete_task(doomed.id)
    with pytest.raises(NotFound):
        store.get_task(doomed.id)
    for attempt_id in gone:
        with pytest.raises(NotFound):
            store.get_attempt(attempt_id)
    assert store.list_attempts() == [survivor]


def test_not_found_messages_name_the_record(store: SqlStore) -> None:
    with pytest.raises(NotFound, match=r"^task 7 not found$"):
        store.get_task(7)
    with pytest.raises(NotFound, match=r"^task 7 not found$"):
        store.delete_task(7)
    with pytest.raises(NotFound, match=r"^task 7 not found$"):
        store.add_attempt(task_id=7, profile=CLAUDE, created_at=1.0, worktree_root="/wt")
    with pytest.raises(NotFound, match=r"^attempt 3 not found$"):
        store.get_attempt(3)
    with pytest.raises(NotFound, match=r"^attempt 3 not found$"):
        store.transition(3, AttemptStatus.PREPARING)
    with pytest.raises(NotFound, match=r"^attempt 3 not found$"):
        store.update_attempt(3, progress="x")
    assert issubclass(NotFound, StoreError)


def test_new_attempt_is_queued_with_defaults(store: SqlStore) -> None:
    task = make_task(store)
    attempt = add(store, task)
    assert attempt == Attempt(
        id=attempt.id,
        task_id=task.id,
        profile=CLAUDE,
        branch=f"forge/{task.id}-claude",
        worktree=f"/wt/task-{task.id}-claude",
        status=AttemptStatus.QUEUED,
        created_at=1_700_000_001.5,
    )
    assert store.get_attempt(attempt.id) == attempt


def test_attempt_round_trips_every_field(store: SqlStore) -> None:
    profile = AgentProfile(
        name="Claude Opus",
        executor="claude-code",
        command=("claude", "-p"),
        model="opus",
        args=("--max-turns", "40"),
        env={"ANTHROPIC_API_KEY": "${ANTHROPIC_API_KEY}", "LANG": "C.UTF-8"},
        persona="You are terse.\nPrefer small diffs.",
        price=Price(input_per_mtok=15.0, output_per_mtok=75.5),
        tier=2,
    )
    attempt = add(store, make_task(store), profile)
    fields: dict[str, Any] = {
        "worktree": "/elsewhere/task-1",
        "started_at": 1_700_000_002.123456,
        "finished_at": 1_700_000_099.654321,
        "exit_code": -9,
        "error": "killed: timeout",
        "session_id": "sess-42",
        "final_message": "Done. Ünïcödé ✓",
        "diff": DiffStats(files=3, insertions=120, deletions=7),
        "checks": (
            CheckResult("tests", True, 0, 12.5, "3 passed", False),
            CheckResult("lint", False, None, 600.0, "...tail", True),
        ),
        "usage": Usage(
            tokens_in=12_000_000_000, tokens_out=4_567, cache_read=8, cache_write=9, cost_usd=1.25, turns=17
        ),
        "commit_sha": "a" * 40,
        "log_path": "/logs/1.jsonl",
        "pid": 4242,
        "owner": "host-a:1234",
        "cancel_requested": True,
        "progress": "editing parser.py",
        "followup": "also add tests",
    }
    assert set(fields) == {f.name for f in dataclasses.fields(Attempt)} - FIXED_FIELDS - {"status"}
    expected = dataclasses.replace(attempt, **fields)
    assert store.update_attempt(attempt.id, **fields) == expected
    loaded = store.get_attempt(attempt.id)
    assert loaded == expected
    assert loaded.profile.price == Price(15.0, 75.5)
    assert isinstance(loaded.profile.command, tuple) and isinstance(loaded.checks, tuple)


def test_profile_without_price_and_empty_checks(store: SqlStore) -> None:
    task = make_task(store, checks=[])
    attempt = add(store, task, AgentProfile(name="codex", executor="codex", price=None))
    assert store.get_task(task.id).checks == ()
    assert store.get_attempt(attempt.id).profile == AgentProfile(name="codex", executor="codex")


def test_branch_and_worktree_names_are_slugged_and_suffixed(store: SqlStore) -> None:
    task = make_task(store)
    odd = AgentProfile(name="Claude Code/β v1.2_x", executor="claude-code")
    first, second = add(store, task, odd), add(store, task, odd)
    assert (first.branch, first.worktree) == (
        f"forge/{task.id}-claude-code---v1.2_x",
        f"/wt/task-{task.id}-claude-code---v1.2_x",
    )
    assert second.branch == f"forge/{task.id}-claude-code---v1.2_x-2"
    # A profile whose own slug looks like a suffix must not collide with it.
    plain = add(store, task)
    suffixed_name = add(store, task, AgentProfile(name="claude-2", executor="x"))
    again = add(store, task)
    assert plain.branch == f"forge/{task.id}-claude"
    assert suffixed_name.branch == f"forge/{task.id}-claude-2"
    assert again.branch == f"forge/{task.id}-claude-3"
    with pytest.raises(ValueError, match="profile name is empty"):
        add(store, task, AgentProfile(name="", executor="x"))


def test_parallel_add_attempt_allocates_distinct_branches(store: SqlStore) -> None:
    task = make_task(store)
    results = in_threads(10, lambda _: add(store, task))
    attempts = [r for r in results if isinstance(r, Attempt)]
    assert len(attempts) == 10, results
    expected = [f"forge/{task.id}-claude"] + [f"forge/{task.id}-claude-{n}" for n in range(2, 11)]
    assert sorted(a.branch for a in attempts) == sorted(expected)
    assert len({a.worktree for a in attempts}) == 10
    assert sorted(a.branch for a in store.list_attempts(task_id=task.id)) == sorted(expected)


def test_legal_transitions_write_status_and_fields(store: SqlStore) -> None:
    attempt = add(store, make_task(store))
    preparing = store.transition(attempt.id, AttemptStatus.PREPARING, owner="host-a:1", started_at=5.0)
    assert preparing.status is AttemptStatus.PREPARING
    assert (preparing.owner, preparing.started_at) == ("host-a:1", 5.0)
    store.transition(attempt.id, AttemptStatus.RUNNING, pid=99)
    store.transition(attempt.id, AttemptStatus.CHECKING)
    failed = store.transition(attempt.id, AttemptStatus.FAILED, finished_at=9.0, exit_code=1)
    retried = store.transition(attempt.id, AttemptStatus.QUEUED, started_at=None, finished_at=None, pid=None)
    assert failed.status is AttemptStatus.FAILED and failed.exit_code == 1
    assert retried == dataclasses.replace(
        failed, status=AttemptStatus.QUEUED, started_at=None, finished_at=None, pid=None
    )
    assert store.get_attempt(attempt.id) == retried


def test_illegal_transition_raises_and_leaves_row_unchanged(store: SqlStore) -> None:
    attempt = add(store, make_task(store))
    with pytest.raises(IllegalTransition, match="from queued to succeeded") as info:
        store.transition(attempt.id, AttemptStatus.SUCCEEDED, error="should not be written", exit_code=0)
    assert (info.value.current, info.value.target) == (AttemptStatus.QUEUED, AttemptStatus.SUCCEEDED)
    assert store.get_attempt(attempt.id) == attempt


def test_transition_rejects_bad_fields_before_writing(store: SqlStore) -> None:
    attempt = add(store, make_task(store))
    with pytest.raises(ValueError, match=r"not updatable attempt field\(s\): bogus"):
        store.transition(attempt.id, AttemptStatus.PREPARING, bogus=1)
    with pytest.raises(ValueError, match="status"):
        store.transition(attempt.id, AttemptStatus.PREPARING, status=AttemptStatus.RUNNING)
    assert store.get_attempt(attempt.id) == attempt


def test_concurrent_transitions_of_one_attempt_let_exactly_one_win(store: SqlStore) -> None:
    attempt = add(store, make_task(store))
    results = in_threads(6, lambda i: store.transition(attempt.id, AttemptStatus.PREPARING, owner=f"worker-{i}"))
    winners = [r for r in results if isinstance(r, Attempt)]
    assert len(winners) == 1, results
    assert all(isinstance(r, IllegalTransition) for r in results if r is not winners[0])
    assert store.get_attempt(attempt.id).owner == winners[0].owner


def test_update_attempt_rejects_status_unknown_and_mistyped_fields(store: SqlStore) -> None:
    attempt = add(store, make_task(store))
    with pytest.raises(ValueError, match=r"status changes only through transition\(\)"):
        store.update_attempt(attempt.id, status=AttemptStatus.RUNNING)
    with pytest.raises(ValueError, match=r"not updatable attempt field\(s\): branch, colour"):
        store.update_attempt(attempt.id, colour="red", branch="forge/x")
    with pytest.raises(TypeError, match="diff must be DiffStats, got dict"):
        store.update_attempt(attempt.id, diff={"files": 1})
    with pytest.raises(TypeError, match="each attempt check must be CheckResult, got str"):
        store.update_attempt(attempt.id, checks=("passed",))
    assert store.get_attempt(attempt.id) == attempt
    assert store.update_attempt(attempt.id) == attempt


def test_list_attempts_filters_and_orders_by_id(store: SqlStore) -> None:
    one, two = make_task(store), make_task(store)
    a = add(store, one)
    b = add(store, two)
    c = add(store, one)
    store.transition(b.id, AttemptStatus.PREPARING, owner="w1")
    store.transition(c.id, AttemptStatus.CANCELLED, owner="w1")

    def ids(**filters: Any) -> list[int]:
        return [x.id for x in store.list_attempts(**filters)]

    assert ids() == [a.id, b.id, c.id]
    assert ids(task_id=one.id) == [a.id, c.id]
    assert ids(statuses={AttemptStatus.PREPARING, AttemptStatus.CANCELLED}) == [b.id, c.id]
    assert ids(statuses=[]) == []
    assert ids(owner="w1") == [b.id, c.id]
    assert ids(task_id=one.id, owner="w1", statuses=[AttemptStatus.CANCELLED]) == [c.id]
    assert ids(owner="nobody") == []


def test_delete_attempts_counts_only_existing_rows(store: SqlStore) -> None:
    task = make_task(store)
    a, b, c = add(store, task), add(store, task), add(store, task)
    assert store.delete_attempts([a.id, c.id, 99_999]) == 2
    assert store.delete_attempts([]) == 0
    assert store.list_attempts() == [b]
    assert store.get_task(task.id) == task


def test_status_counts_group_attempts_per_task_and_keep_empty_tasks(store: SqlStore) -> None:
    busy, empty = make_task(store), make_task(store)
    a, _, c = add(store, busy), add(store, busy), add(store, busy)
    store.transition(a.id, AttemptStatus.PREPARING)
    store.transition(c.id, AttemptStatus.CANCELLED)

    rows = sorted(store.status_counts(), key=lambda row: (row[0], str(row[1])))

    assert rows == [
        (busy.id, AttemptStatus.CANCELLED, 1),
        (busy.id, AttemptStatus.PREPARING, 1),
        (busy.id, AttemptStatus.QUEUED, 1),
        (empty.id, None, 0),
    ]


def test_open_twice_keeps_data_and_schema_version(store_url: str) -> None:
    first = open_store(store_url)
    task = make_task(first)
    first.close()
    second = open_store(store_url)
    try:
        assert second.get_task(task.id) == task
    finally:
        second.close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0003"]
    finally:
        engine.dispose()


def test_migrated_schema_matches_metadata(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_sqlite_file_uses_wal_and_parent_dir_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "forgebot.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _open_in_child(url: str, start: Barrier, index: int) -> None:
    start.wait(timeout=60)
    store = open_store(url)
    try:
        make_task(store, title=f"from process {index}")
    finally:
        store.close()


def test_processes_opening_one_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'forgebot.db'}"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    children = [context.Process(target=_open_in_child, args=(url, start, i)) for i in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=90)
    assert [child.exitcode for child in children] == [0, 0, 0]
    store = open_store(url)
    try:
        assert sorted(t.title for t in store.list_tasks()) == [f"from process {i}" for i in range(3)]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://localhost/db", "unsupported store URL"),
        ("postgresql+asyncpg://postgres@127.0.0.1/test", "unsupported store URL"),
        ("sqlite://", "must name a SQLite file"),
        ("not a url", "invalid store URL"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, problem: str) -> None:
    with pytest.raises(StoreError, match=problem):
        open_store(url)


def test_upgrade_from_the_first_schema_keeps_data(store_url: str) -> None:
    """A database made by an older forgebot (schema 0001) is migrated on open, its rows intact."""
    from forgebot.store.sql import _migrate

    if store_url.startswith("sqlite"):
        os.makedirs(os.path.dirname(store_url.removeprefix("sqlite:///")), exist_ok=True)
    old = create_engine(store_url)
    _migrate(old, "0001")
    with old.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (title, description, repo, base_branch, base_sha, strategy, quality_threshold,"
                " checks, created_at, source)"
                " VALUES ('old', '', '/r', 'main', 'abc', 'parallel', 0.8, '[]', 1.0, 'cli')"
            )
        )
    old.dispose()
    store = open_store(store_url)
    try:
        (task,) = store.list_tasks()
        assert task.title == "old"
        attempt = store.add_attempt(
            task_id=task.id, profile=AgentProfile("a", "command"), created_at=2.0, worktree_root="/w"
        )
        assert store.update_attempt(attempt.id, followup="more").followup == "more"
    finally:
        store.close()

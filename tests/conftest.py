"""Shared pytest fixtures."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

# ======== store fixtures (forgebot/store) ========
# `store_url` runs a test on a SQLite file and on PostgreSQL; `pg_url` is a PostgreSQL URL whose search_path
# points at a fresh schema dropped after the test, so parallel runs never clash.

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DATABASE = "test"


def _pg_admin() -> tuple[psycopg.Connection[tuple[object, ...]], str]:
    """An autocommit connection and the user it logged in as; skips (fails on CI) when unreachable."""
    errors = []
    for user in ("postgres", "root"):
        try:
            conn = psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname=PG_DATABASE, autocommit=True, connect_timeout=3
            )
        except psycopg.OperationalError as exc:
            errors.append(f"{user}: {exc}".strip())
            continue
        return conn, user
    message = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {'; '.join(errors)}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg_url() -> Iterator[str]:
    admin, user = _pg_admin()
    schema = f"t_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield (f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}?options=-csearch_path%3D{schema}")
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'forgebot.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


# ======== end of store fixtures ========


# ======== fake LLM fixtures ========
# `fake_llm` serves the scripted fake LLM (tests/fake_llm.py) from a background thread for one test: point agent CLIs
# at `fake_llm.url`, assert on `fake_llm.requests`. For other options: `with run_in_thread(error_status=500) as llm:`.
from tests.fake_llm import ThreadedFakeLLM, run_in_thread  # noqa: E402  (imported here to keep this block self-contained)


@pytest.fixture
def fake_llm() -> Iterator[ThreadedFakeLLM]:
    with run_in_thread() as llm:
        yield llm


# ======== end of fake LLM fixtures ========


# ======== fake GitHub fixtures ========
# `fake_github` serves the stateful fake of GitHub's REST API (tests/fake_github/) from a background thread for one
# test, so sync and async tests can use it: point PyGithub (or PyGithubClient) at `fake_github.url` with
# `fake_github.token`, seed with `add_repo`/`add_issue`/..., assert on `fake_github.actions` and `.requests`.
# In async code that wants the fake on its own loop: `async with FakeGitHub(prefix="/api/v3") as gh:`.
from tests.fake_github import FakeGitHub  # noqa: E402  (imported here to keep this block self-contained)


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        yield gh
        assert not gh.errors, "the fake GitHub's handlers failed:\n" + "\n".join(gh.errors)


# ======== end of fake GitHub fixtures ========

"""REST API tokens: a name, the sha256 of the secret (never the secret), the repositories it may act on.

A token is revoked, not deleted, so `tokens list` keeps showing what existed and its name stays taken.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from forgebot.store.base import NotFound, StoreError
from forgebot.store.schema import api_tokens
from forgebot.store.sql import WRITE_OPTION


class TokenExists(StoreError):
    """A token of that name exists already (revoked ones keep their name)."""


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    repos: tuple[str, ...]  # globs over repository paths and owner/name; empty = every repository
    created_at: float
    last_used_at: float | None
    revoked: bool

    @property
    def limited(self) -> bool:
        return bool(self.repos)

    def allows(self, *names: str | None) -> bool:
        """Whether any of the names a repository goes by (its path, its owner/name) matches a glob. Paths match
        case-sensitively (like the file system); owner/name globs (no leading /) ignore case, like GitHub."""
        if not self.repos:
            return True
        return any(_matches(name, pattern) for name in names if name for pattern in self.repos)


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(name, pattern)
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


class TokenStore:
    """Thread-safe like SqlStore (it shares its connection pool); every call blocks, run it in a thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
            yield conn

    def create(self, *, name: str, token_hash: str, repos: Sequence[str], now: float) -> ApiToken:
        values = {
            "name": name,
            "token_hash": token_hash,
            "repos": json.dumps(list(repos)),
            "created_at": now,
            "last_used_at": None,
            "revoked": False,
        }
        try:
            with self._write() as conn:
                token_id = conn.execute(insert(api_tokens).values(values).returning(api_tokens.c.id)).scalar_one()
        except IntegrityError:
            raise TokenExists(f"a token named {name!r} exists already (revoked tokens keep their name)") from None
        return ApiToken(token_id, name, tuple(repos), now, None, False)

    def list(self) -> list[ApiToken]:
        with self._engine.connect() as conn:
            return [_token(row) for row in conn.execute(select(api_tokens).order_by(api_tokens.c.id))]

    def by_hash(self, token_hash: str) -> tuple[ApiToken, str] | None:
        """The token with this hash and the stored hash (for a constant-time comparison by the caller)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == token_hash)).one_or_none()
        return None if row is None else (_token(row), row.token_hash)

    def by_id(self, token_id: int) -> ApiToken | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one_or_none()
        return None if row is None else _token(row)

    def touch(self, token_id: int, now: float) -> None:
        with self._write() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))

    def revoke(self, name: str) -> ApiToken:
        with self._write() as conn:
            if conn.execute(update(api_tokens).where(api_tokens.c.name == name).values(revoked=True)).rowcount == 0:
                raise NotFound(f"no token named {name!r}")
            row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one()
        return _token(row)


def _token(row: Row[Any]) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        repos=tuple(json.loads(row.repos)),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked=bool(row.revoked),
    )

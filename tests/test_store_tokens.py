"""API tokens on SQLite and PostgreSQL: hashed, unique names, revocation, repository globs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from forgebot.store import NotFound, open_store
from forgebot.store.tokens import ApiToken, TokenExists, TokenStore


@pytest.fixture
def tokens(store_url: str) -> Iterator[TokenStore]:
    store = open_store(store_url)
    yield store.token_store()
    store.close()


def test_a_token_is_found_by_its_hash_and_listed(tokens: TokenStore) -> None:
    made = tokens.create(name="ci", token_hash="a" * 64, repos=["/srv/*"], now=10.0)
    found = tokens.by_hash("a" * 64)
    assert found == (made, "a" * 64)
    assert tokens.by_hash("b" * 64) is None
    assert tokens.list() == [made]
    assert made.repos == ("/srv/*",) and not made.revoked and made.last_used_at is None


def test_names_are_unique_also_after_revoking(tokens: TokenStore) -> None:
    tokens.create(name="ci", token_hash="a" * 64, repos=[], now=1.0)
    revoked = tokens.revoke("ci")
    assert revoked.revoked
    with pytest.raises(TokenExists, match="'ci' exists already"):
        tokens.create(name="ci", token_hash="b" * 64, repos=[], now=2.0)
    assert [t.name for t in tokens.list()] == ["ci"]


def test_revoking_an_unknown_token_says_so(tokens: TokenStore) -> None:
    with pytest.raises(NotFound, match="no token named 'nope'"):
        tokens.revoke("nope")


def test_a_token_is_found_by_its_id_with_its_current_state(tokens: TokenStore) -> None:
    made = tokens.create(name="ci", token_hash="a" * 64, repos=[], now=1.0)
    assert tokens.by_id(made.id) == made
    tokens.revoke("ci")
    assert tokens.by_id(made.id) == ApiToken(made.id, "ci", (), 1.0, None, True)
    assert tokens.by_id(made.id + 1) is None


def test_touch_records_the_last_use(tokens: TokenStore) -> None:
    made = tokens.create(name="ci", token_hash="a" * 64, repos=[], now=1.0)
    tokens.touch(made.id, 5.0)
    assert tokens.list()[0].last_used_at == 5.0


@pytest.mark.parametrize(
    ("globs", "names", "allowed"),
    [
        ((), ("/any/where",), True),
        (("/srv/repos/*",), ("/srv/repos/app",), True),
        (("/srv/repos/*",), ("/home/x/app",), False),
        (("acme/*",), ("/data/clones/acme/app", "acme/app"), True),
        (("ACME/*",), ("acme/app",), True),
        (("acme/*",), ("/data/clones/other/app", None), False),
        (("/srv/repos/app",), ("/srv/repos/APP",), False),  # paths are case-sensitive
        (("/srv/repos/*",), ("/SRV/repos/app",), False),
        (("/srv/repos/App",), ("/srv/repos/App",), True),
        (("acme/app",), ("/srv/x", "Acme/App"), True),  # owner/name are not
    ],
)
def test_repository_globs(globs: tuple[str, ...], names: tuple[str | None, ...], allowed: bool) -> None:
    token = ApiToken(1, "t", globs, 0.0, None, False)
    assert token.allows(*names) is allowed

"""The bounded dict behind the daemon's per-task memory."""

from __future__ import annotations

import pytest

from forgebot.core.bounded import Bounded


def test_the_least_recently_written_keys_go_first() -> None:
    seen: Bounded[int, str] = Bounded(2)
    seen[1], seen[2] = "a", "b"
    seen[1] = "a2"  # written again: now the newest
    seen[3] = "c"
    assert dict(seen) == {1: "a2", 3: "c"}
    seen.setdefault(4, "d")
    assert list(seen) == [3, 4] and len(seen) == 2


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        Bounded(0)

"""A dict that holds at most `limit` keys, dropping the least recently written: for per-task and per-attempt
state a long-running daemon keeps in memory, which must not grow with every task it ever saw."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(OrderedDict[K, V]):
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a bounded dict holds at least one key, got limit {limit}")
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)

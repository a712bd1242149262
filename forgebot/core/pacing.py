"""How often one task's progress comment may be edited: a pure decision (the caller passes the clock's reading).

Progress events can come many times a second for an hour. Every edit is a GitHub write, paced at one a second per
installation and counted against a rate limit shared by every task, so a task has an edit budget: the first edits
come `interval` apart, the gap doubles after every `double_every` edits, and after `max_edits` edits the progress
comment waits for the final edit, which is always made (it is not a progress edit and is never refused here).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_EDITS = 15  # label → three attempts → PR stays within 25 GitHub writes (bench/api_calls.py)
DEFAULT_DOUBLE_EVERY = 3


@dataclass(frozen=True)
class EditBudget:
    interval: float = 5.0
    max_edits: int = DEFAULT_MAX_EDITS
    double_every: int = DEFAULT_DOUBLE_EVERY

    def __post_init__(self) -> None:
        if self.interval < 0 or self.max_edits < 0 or self.double_every < 1:
            raise ValueError(f"invalid edit budget {self!r}")

    def gap(self, edits: int) -> float:
        """Seconds between edit number `edits` and the one after it."""
        return self.interval * 2.0 ** (edits // self.double_every)

    def may_edit(self, edits: int) -> bool:
        """Whether a progress edit is still allowed after `edits` edits of this task's comment."""
        return edits < self.max_edits

    def next_edit(self, edits: int, last_edit: float | None, now: float) -> float | None:
        """Seconds from `now` until the next progress edit may be made, after `edits` edits (the last at
        `last_edit`, None if none yet); None when the budget is spent and only the final edit remains."""
        if not self.may_edit(edits):
            return None
        if last_edit is None:
            return 0.0
        return max(0.0, last_edit + self.gap(edits) - now)

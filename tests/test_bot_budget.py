"""The edit budget of a task's progress comment: the pure schedule, and the cap through a whole daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgebot.core.pacing import EditBudget
from forgebot.engine.events import EngineEvent, EventKind
from tests import payloads
from tests.bot_harness import REPO, BotHarness, fake_agent


def test_the_gap_doubles_every_few_edits() -> None:
    budget = EditBudget(interval=2.0, max_edits=10, double_every=3)
    assert [budget.gap(n) for n in range(8)] == [2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 8.0, 8.0]


@pytest.mark.parametrize(
    ("edits", "last", "now", "wait"),
    [
        (0, None, 100.0, 0.0),  # nothing shown yet: at once
        (0, 100.0, 100.5, 1.5),  # the comment was just posted: the first gap
        (3, 100.0, 101.0, 3.0),  # three edits made: the fourth waits the doubled gap
        (4, 100.0, 110.0, 0.0),  # overdue: at once, never negative
        (5, 100.0, 100.0, None),  # budget spent: only the final edit remains
        (9, 100.0, 100.0, None),
    ],
)
def test_next_edit(edits: int, last: float | None, now: float, wait: float | None) -> None:
    assert EditBudget(interval=2.0, max_edits=5, double_every=3).next_edit(edits, last, now) == wait


def test_a_budget_without_edits_still_allows_nothing_but_the_final_one() -> None:
    assert EditBudget(interval=1.0, max_edits=0).next_edit(0, None, 0.0) is None
    with pytest.raises(ValueError, match="invalid edit budget"):
        EditBudget(interval=1.0, double_every=0)


def chatty(lines: int) -> list[str]:
    steps = []
    for n in range(lines):
        steps += ["say", f"step {n} of {lines}", "sleep", "0.02"]
    return steps


async def test_progress_edits_stop_at_the_cap_and_the_final_edit_is_still_made(tmp_path: Path) -> None:
    agents = {"claude": fake_agent(*chatty(60), "write", "slug.py", "def slugify(s): return s")}
    bot = {"progress_interval": 0, "max_progress_edits": 3}  # no spacing at all: only the cap limits edits
    async with BotHarness.start(tmp_path, agents=agents, bot=bot) as h:
        events: list[EngineEvent] = []
        h.daemon.engine.bus.subscribe(events.append)
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge:claude", "alice")) == 202
        await h.until_idle()
        progress = [e for e in events if e.kind is EventKind.ATTEMPT_PROGRESS]
        edits = h.gh.requests_to("PATCH", r"/issues/comments/\d+$")
        assert len(progress) >= 60  # an unbudgeted publisher would have edited on (nearly) every one
        assert 2 <= len(edits) <= 3 + 1  # at least one progress edit; the cap, plus the final edit
        [comment] = h.comments()
        assert "step 59 of 60" not in comment  # the final body replaced the progress rows...
        assert "succeeded" in comment and comment == h.gh.repos[REPO].comment_list(1)[-1].body
        assert edits[-1]["json"]["body"] == comment  # ...and it was the last edit

"""The bot's state on SQLite and PostgreSQL: delivery dedupe and issue ↔ task links."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from forgebot.core.models import AttemptStatus, Strategy
from forgebot.store import NotFound, SqlStore, open_store
from forgebot.store.bot import BotStore, Claim, CommandRun, CommandState, DeliveryStatus, Finish, IssueTask
from tests.support import agent


@pytest.fixture
def stores(store_url: str) -> Iterator[tuple[SqlStore, BotStore]]:
    store = open_store(store_url)
    yield store, store.bot_store()
    store.close()


def _claim(bot: BotStore, delivery: str = "d-1", payload: str = "{}") -> bool:
    return bot.claim_delivery(delivery, event="issues", action="labeled", repo="o/r", payload=payload, now=1.0)


def test_a_new_delivery_is_claimed_once(stores: tuple[SqlStore, BotStore]) -> None:
    _, bot = stores
    assert _claim(bot) is True
    assert _claim(bot) is False  # in flight: a redelivery while it runs is not handled twice
    assert [d.id for d in bot.pending_deliveries()] == ["d-1"]


def test_a_handled_delivery_is_a_no_op_and_drops_its_payload(stores: tuple[SqlStore, BotStore]) -> None:
    _, bot = stores
    _claim(bot, payload='{"big": true}')
    bot.finish_delivery("d-1", error=None, now=2.0)
    assert _claim(bot) is False
    done = bot.get_delivery("d-1")
    assert done.status is DeliveryStatus.DONE and done.payload == "" and done.tries == 1
    assert bot.pending_deliveries() == []


def test_a_failed_delivery_runs_again(stores: tuple[SqlStore, BotStore]) -> None:
    _, bot = stores
    _claim(bot, payload="first")
    bot.finish_delivery("d-1", error="GitHub answered 502", now=2.0)
    assert bot.get_delivery("d-1").status is DeliveryStatus.FAILED
    assert _claim(bot, payload="second") is True
    again = bot.get_delivery("d-1")
    assert (again.status, again.tries, again.payload, again.error) == (DeliveryStatus.PENDING, 2, "second", None)


def test_issue_links(stores: tuple[SqlStore, BotStore]) -> None:
    store, bot = stores
    ids = []
    for title in ("one", "two"):
        task = store.create_task(
            title=title,
            description="",
            repo="/cache/o__r",
            base_branch="main",
            base_sha="0" * 40,
            strategy=Strategy.PARALLEL,
            quality_threshold=0.8,
            checks=(),
            created_at=1.0,
        )
        link = IssueTask(task_id=task.id, repo="o/r", issue=7, requester="alice", created_at=1.0, delivery=title)
        bot.link(link)
        ids.append(task.id)
    assert [link.task_id for link in bot.links_for_issue("o/r", 7)] == ids[::-1]
    assert bot.links_for_issue("o/r", 8) == []
    found = bot.link_for_delivery("two")
    assert found is not None and found.task_id == ids[1]
    assert bot.link_for_delivery("three") is None
    updated = bot.update_link(ids[0], progress_comment_id=99, pr_number=12, pr_state="open")
    assert (updated.progress_comment_id, updated.pr_number, updated.pr_state) == (99, 12, "open")
    assert bot.link_for_pull("o/r", 12) == updated
    assert bot.link_for_pull("o/r", 13) is None
    with pytest.raises(ValueError, match="not an updatable"):
        bot.update_link(ids[0], repo="x/y")
    with pytest.raises(NotFound):
        bot.get_link(12345)
    store.delete_task(ids[0])  # links go with their task
    with pytest.raises(NotFound):
        bot.get_link(ids[0])


def test_queued_attempts_of_unlinked_github_tasks_are_found(stores: tuple[SqlStore, BotStore]) -> None:
    store, bot = stores
    found = {}
    for name, source, linked in (("orphan", "github", False), ("linked", "github", True), ("cli", "cli", False)):
        task = store.create_task(title=name, description="", repo="/cache/o__r", base_branch="main",
                                 base_sha="0" * 40, strategy=Strategy.PARALLEL, quality_threshold=0.8, checks=(),
                                 created_at=1.0, source=source)  # fmt: skip
        if linked:
            bot.link(IssueTask(task_id=task.id, repo="o/r", issue=7, requester="alice", created_at=1.0))
        made = [store.add_attempt(task_id=task.id, profile=agent(a), created_at=1.0, worktree_root="/wt")
                for a in ("one", "two")]  # fmt: skip
        found[name] = [a.id for a in made]
    store.transition(found["orphan"][1], AttemptStatus.CANCELLED, finished_at=2.0)  # not queued: left alone
    assert bot.unlinked_queued_attempts() == found["orphan"][:1]


def test_commands_run_once_and_keep_their_answer(stores: tuple[SqlStore, BotStore]) -> None:
    _, bot = stores
    begin = lambda key: bot.begin_command(key, verb="fork", repo="o/r", now=1.0)  # noqa: E731
    assert begin("c7:0") == CommandRun(CommandState.NEW)
    assert begin("c7:0") == CommandRun(CommandState.INTERRUPTED)  # pending: an earlier run stopped midway
    assert bot.pending_deliveries() == []  # command rows are never resumed as webhook deliveries
    bot.finish_command("c7:0", answer="Opened #2.", error=None, now=2.0)
    assert begin("c7:0") == CommandRun(CommandState.DONE, "Opened #2.")
    assert begin("c7:1") == CommandRun(CommandState.NEW)
    bot.finish_command("c7:1", answer=None, error="GitHubError: 502", now=2.0)
    assert begin("c7:1") == CommandRun(CommandState.NEW)  # failed: runs again
    assert bot.get_delivery("c7:1").tries == 2
    bot.finish_command("c7:1", answer=None, error=None, now=3.0)
    assert begin("c7:1") == CommandRun(CommandState.DONE, None)


def _c(delivery: str, payload: str = "{}", now: float = 5.0) -> Claim:
    return Claim(delivery, "issues", "labeled", "o/r", payload, now)


def test_a_batch_claims_and_finishes_in_one_transaction_like_one_at_a_time(stores: tuple[SqlStore, BotStore]) -> None:
    _, bot = stores
    _claim(bot, "done")
    bot.finish_delivery("done", error=None, now=2.0)
    _claim(bot, "failed")
    bot.finish_delivery("failed", error="502", now=2.0)
    _claim(bot, "running")

    answers = bot.record_deliveries(
        [_c("new", '{"n": 1}'), _c("done"), _c("failed", '{"again": 1}'), _c("running"), _c("new")],
        [Finish("running", None, 6.0)],
    )

    assert answers == [True, False, True, False, False]  # a second claim of one id in a batch is a duplicate
    new, failed, running = (bot.get_delivery(d) for d in ("new", "failed", "running"))
    assert (new.status, new.payload, new.tries) == (DeliveryStatus.PENDING, '{"n": 1}', 1)
    assert (failed.status, failed.payload, failed.tries, failed.error) == (
        DeliveryStatus.PENDING,
        '{"again": 1}',
        2,
        None,
    )
    assert (running.status, running.payload) == (DeliveryStatus.DONE, "")
    bot.record_deliveries([], [Finish("new", "boom", 7.0), Finish("failed", None, 7.0)])
    assert (bot.get_delivery("new").status, bot.get_delivery("new").error) == (DeliveryStatus.FAILED, "boom")
    assert bot.get_delivery("new").payload == '{"n": 1}'  # kept for a retry
    assert bot.get_delivery("failed").status is DeliveryStatus.DONE

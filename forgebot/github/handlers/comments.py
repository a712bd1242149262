"""`issue_comment.created`: `/forge` commands on an issue or on forgebot's pull request.

Parse first, then authorize, then react (eyes for an accepted command, a reply for a refused one), then act.
Edited comments are not read: only `created` is routed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from forgebot.core import render
from forgebot.core.commands import Command, Reply, Verb, parse
from forgebot.core.models import AttemptStatus
from forgebot.core.scoring import compare
from forgebot.core.templates import TemplateError
from forgebot.engine.housekeeping import EngineError
from forgebot.github import merging
from forgebot.github.bot import Bot, Issue, Refused
from forgebot.github.publisher import plural
from forgebot.github.routing import Router, WebhookEvent
from forgebot.store.bot import CommandState
from forgebot.templates import fetch_template

log = structlog.get_logger(__name__)
Action = Callable[[Bot, Issue, Command, str, str], Awaitable[str | None]]  # returns a reply, or None
# Safe to run again when a crash left it unfinished (each looks before it acts: run and template find their task
# by this key); the others (fork, followup, retry) may have started work already, so the user is told instead.
REPEATABLE = frozenset(
    {Verb.RUN, Verb.TEMPLATE, Verb.STATUS, Verb.COMPARE, Verb.PICK, Verb.MERGE, Verb.CANCEL, Verb.CLEANUP, Verb.HELP}
)
INTERRUPTED = (
    "I was stopped while doing `/forge {verb}` and cannot tell whether it took effect: "
    "see the progress comment, and repeat the command in a new comment if it did not."
)


def register(router: Router, bot: Bot) -> None:
    async def created(event: WebhookEvent) -> None:
        await on_comment(bot, event)

    def has_command(event: WebhookEvent) -> bool:
        return bool(parse(_body(event), bot.behaviour.bot.trigger_label))

    router.add("issue_comment", "created", created, relevant=has_command)


def _body(event: WebhookEvent) -> str:
    return str((event.payload.get("comment") or {}).get("body") or "")


async def on_comment(bot: Bot, event: WebhookEvent) -> None:
    results = parse(_body(event), bot.behaviour.bot.trigger_label)
    if not results:
        return
    if why := await bot.ignored(event):
        log.info("event_ignored", reason=why, repo=event.repo, delivery=event.delivery)
        return
    issue = Issue.from_event(event)
    sender = str(event.payload["sender"]["login"])
    comment_id = int(event.payload["comment"]["id"])
    if refusal := await bot.authorize(issue.repo, sender):
        if bot.behaviour.bot.reply_to_unauthorized:
            await bot.reply(issue, render.refusal(sender, refusal), key=f"c{comment_id}-refused")
        return
    for number, result in enumerate(results):
        # Each command is keyed by its comment and line, so a redelivery (or a delivery resumed after a crash)
        # runs only the commands that did not finish, and finds the replies already posted. The first failure
        # fails the delivery: the commands after it may depend on it.
        key = f"c{comment_id}-{number}"
        if isinstance(result, Reply):
            await bot.reply(issue, render.error_reply(result.message), key=key)
        else:
            await _once(bot, issue, result, sender, comment_id, key)


async def _once(bot: Bot, issue: Issue, command: Command, sender: str, comment_id: int, key: str) -> None:
    run = await asyncio.to_thread(bot.store.begin_command, key, verb=command.verb, repo=issue.repo, now=bot.clock())
    answer = run.answer
    if run.state is CommandState.INTERRUPTED and command.verb not in REPEATABLE:
        answer = render.error_reply(INTERRUPTED.format(verb=command.verb))
        await asyncio.to_thread(bot.store.finish_command, key, answer=answer, error=None, now=bot.clock())
    elif run.state is not CommandState.DONE:
        await bot.github.react_to_comment(issue.repo, comment_id, "eyes")
        try:
            answer = await ACTIONS[command.verb](bot, issue, command, sender, key)
        except (Refused, EngineError) as error:
            answer = render.error_reply(str(error))
        except BaseException as error:  # GitHub failing, a bug, or shutdown
            # A repeatable command runs again on the next try. The others may have taken effect before the error
            # (a fork made, then its progress edit failed): left pending, the next try tells the user instead.
            if command.verb in REPEATABLE:
                failed = f"{type(error).__name__}: {error}"[:500]
                await asyncio.to_thread(bot.store.finish_command, key, answer=None, error=failed, now=bot.clock())
            raise
        await asyncio.to_thread(bot.store.finish_command, key, answer=answer, error=None, now=bot.clock())
    if answer:
        await bot.reply(issue, answer, key=key)


def _on_issues_only(issue: Issue, verb: Verb) -> None:
    """A command that starts a task: refused on forgebot's pull request, where a follow-up is what continues."""
    if issue.is_pull_request:
        raise Refused(f"`/forge {verb}` works on issues; on forgebot's pull request use `/forge followup -- <text>`")


async def _run(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    _on_issues_only(issue, Verb.RUN)
    await bot.start_task(issue, command.agents, requester=sender, delivery=key)
    return None


async def _fork(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    profile = await bot.fork_profile(issue, command.agents[0], command.model)
    attempt = await bot.engine.fork(link.task_id, profile)
    await bot.publisher.refresh(link.task_id)
    log.info("attempt_forked", task=link.task_id, attempt=attempt.id, agent=profile.name)
    return None


async def _status(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    await bot.publisher.refresh(link.task_id)
    return None


async def _compare(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    await bot.publisher.refresh(link.task_id)
    return render.compare_reply(compare(await bot.engine.attempts(link.task_id)))


async def _pick(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    attempt = await bot.resolve(link, command.target)
    if attempt.diff.empty or not attempt.commit_sha:
        raise Refused(f"attempt {attempt.id} ({attempt.agent}) changed nothing; there is nothing to open")
    if not attempt.status.terminal:
        raise Refused(f"attempt {attempt.id} ({attempt.agent}) is still {attempt.status.value}")
    pull = await bot.publisher.open_pull(link, attempt, issue_title=issue.title)
    return f"Opened #{pull.number} with attempt {attempt.id} ({attempt.agent})."


async def _merge(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    if refusal := await bot.authorize(issue.repo, sender, bot.behaviour.bot.merge_permissions):
        raise Refused(refusal)
    link = await bot.current_task(issue)
    attempt = await bot.resolve(link, command.target)
    if attempt.status is not AttemptStatus.SUCCEEDED:
        raise Refused(f"attempt {attempt.id} ({attempt.agent}) did not pass its checks; `/forge pick` it to review")
    await merging.merge(bot, link, attempt, issue_title=issue.title)
    return None  # the pull_request.closed event does the cleanup and the final line


async def _cancel(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    attempt_id = None if command.target is None else (await bot.resolve(link, command.target)).id
    await bot.engine.cancel(link.task_id, attempt_id)
    await bot.publisher.refresh(link.task_id)
    return None


async def _retry(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    attempt = await bot.resolve(link, command.target)
    await bot.engine.retry(attempt.id)
    await bot.publisher.refresh(link.task_id)
    return None


async def _followup(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    link = await bot.current_task(issue)
    attempt = await bot.resolve(link, command.target)
    await bot.engine.followup(attempt.id, command.text)  # its branch is pushed again when it finishes
    await bot.publisher.refresh(link.task_id)
    return None


async def _cleanup(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    """Worktrees go; branches go except the one worth keeping: the PR's, else the comparison's winner."""
    link = await bot.current_task(issue)
    attempts = await bot.engine.attempts(link.task_id)
    if not all(a.status.terminal for a in attempts):
        raise Refused("attempts are still running; `/forge cancel` them first")
    keep = (await bot.resolve(link, None)).branch if link.pr_number or compare(attempts).winner else None
    if keep is None:
        report = await bot.engine.cleanup_worktrees(task_id=link.task_id)
        removed, deleted = len(report.removed), 0
    else:
        removed, deleted = await bot.publisher.clean_up(link, keep=keep)
    kept = f"kept `{keep}`" if keep else "kept every branch: no winner yet"
    line = f"Cleaned up: removed {plural(removed, 'worktree')} and deleted {plural(deleted, 'branch')}; {kept}."
    await bot.publisher.refresh(link.task_id, footer=line)
    return None


async def _help(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    return render.help_reply(bot.behaviour.bot.trigger_label)


async def _template(bot: Bot, issue: Issue, command: Command, sender: str, key: str) -> str | None:
    """A task on the issue whose prompt is the rendered template followed by the issue's text; the task keeps
    the issue's title (its PR closes the issue) and runs the template's agents, else the configured ones."""
    _on_issues_only(issue, Verb.TEMPLATE)
    assert command.name is not None  # the grammar requires it
    settings = await bot.repo_settings(issue.repo, issue.default_branch)
    try:
        template = await fetch_template(bot.github, issue.repo, issue.default_branch, command.name, settings)
        rendered = template.render(command.parameters)
    except TemplateError as error:
        raise Refused(str(error)) from None
    await bot.start_task(issue, rendered.agents, requester=sender, delivery=key, instructions=rendered.description)
    log.info("template_used", repo=issue.repo, issue=issue.number, template=template.name, source=template.source)
    return None


ACTIONS: dict[Verb, Action] = {
    Verb.RUN: _run,
    Verb.FORK: _fork,
    Verb.STATUS: _status,
    Verb.COMPARE: _compare,
    Verb.PICK: _pick,
    Verb.MERGE: _merge,
    Verb.CANCEL: _cancel,
    Verb.RETRY: _retry,
    Verb.FOLLOWUP: _followup,
    Verb.CLEANUP: _cleanup,
    Verb.HELP: _help,
    Verb.TEMPLATE: _template,
}

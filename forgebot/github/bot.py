"""What the handlers share: the GitHub port, the engine, the bot's store, and the operations a command or a
label turns into (start a task for an issue, find the attempt a command means, reply)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from forgebot.config import ConfigError, Settings, load_repo_config, merge, to_checks, to_profiles
from forgebot.core import sanitize
from forgebot.core.commands import Target
from forgebot.core.models import AgentProfile, Attempt, Task
from forgebot.core.scoring import compare
from forgebot.core.templates import with_issue
from forgebot.engine.clones import Clones
from forgebot.engine.engine import Engine
from forgebot.engine.workspaces import WorkspaceError
from forgebot.github.permissions import Permissions, is_bot
from forgebot.github.port import GitHubError, GitHubPort
from forgebot.github.publisher import Publisher
from forgebot.github.replies import post_once
from forgebot.github.routing import WebhookEvent
from forgebot.github.settings import WRITE_PERMISSIONS, BotSettings
from forgebot.store.bot import BotStore, IssueTask

log = structlog.get_logger(__name__)
REPO_CONFIG = ".github/forge.yml"


class Refused(Exception):
    """A command that cannot be carried out for a reason the user should read (posted as a reply)."""


@dataclass(frozen=True)
class Issue:
    """The issue (or pull request) an event is about, as the payload had it when it was sent: text edited
    after the trigger is never read."""

    repo: str
    number: int
    title: str
    body: str
    is_pull_request: bool
    clone_url: str
    default_branch: str
    installation_id: int | None

    @classmethod
    def from_event(cls, event: WebhookEvent) -> Issue:
        payload = event.payload
        issue, repository = payload["issue"], payload["repository"]
        return cls(
            repo=repository["full_name"],
            number=int(issue["number"]),
            title=issue.get("title") or "",
            body=issue.get("body") or "",
            is_pull_request="pull_request" in issue,
            clone_url=repository["clone_url"],
            default_branch=repository.get("default_branch") or "main",
            installation_id=event.installation_id,
        )


@dataclass
class Bot:
    settings: Settings  # the server file: agents, checks, limits, policy
    behaviour: BotSettings
    github: GitHubPort
    engine: Engine
    store: BotStore
    clones: Clones
    publisher: Publisher
    permissions: Permissions
    clock: Callable[[], float] = time.time
    _starts: dict[tuple[str, int], asyncio.Lock] = field(default_factory=dict)
    _login: str | None = None
    _login_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- who and where -----------------------------------------------------------------------------

    async def ignored(self, event: WebhookEvent) -> str | None:
        """Why an event must not trigger work, or None."""
        sender: Mapping[str, Any] | None = event.payload.get("sender")
        if is_bot(sender, self.behaviour.bot.allowed_bots):
            return "sender is a bot"
        if event.repo is None or not self.behaviour.repos.allows(event.repo):
            return "repository not allowed"
        login = await self.own_login()
        if login is not None and str((sender or {}).get("login", "")).lower() == login.lower():
            return "sender is forgebot itself"  # a personal token's user is no [bot]: known by its login
        return None

    async def own_login(self) -> str | None:
        """The login forgebot acts as, asked of GitHub once; None while GitHub cannot say (asked again later)."""
        async with self._login_lock:
            if self._login is None:
                try:
                    self._login = await self.github.own_login()
                except GitHubError as error:
                    log.warning("own_login_failed", status=error.status)
        return self._login

    async def authorize(self, repo: str, user: str, levels: Sequence[str] = WRITE_PERMISSIONS) -> str | None:
        """None when `user` may act (with one of `levels`, by default write, maintain or admin); else the polite
        reason."""
        allowed, why = await self.permissions.may_write(repo, user, levels)
        return None if allowed else why

    async def reply(self, issue: Issue, text: str, *, key: str) -> None:
        """Reply on the issue once per `key` (see replies.py)."""
        await post_once(self.github, issue.repo, issue.number, text, key=key, author=self._login)

    # -- configuration -----------------------------------------------------------------------------

    async def repo_settings(self, repo: str, default_branch: str) -> Settings:
        """The server settings merged with the repository's .github/forge.yml from its default branch only,
        within what the server's policy allows."""
        text = await self.github.read_file(repo, REPO_CONFIG, default_branch)
        if text is None:
            return self.settings
        try:
            return merge(self.settings, load_repo_config(text, REPO_CONFIG))
        except ConfigError as error:
            raise Refused(f"`{REPO_CONFIG}` on `{default_branch}` is not valid:\n\n{error}") from None

    @staticmethod
    def profiles(settings: Settings, names: Sequence[str]) -> list[AgentProfile]:
        known = to_profiles(settings)
        names = list(names) or list(settings.defaults.agents)
        if not names:
            raise Refused("no agents named and none configured: name them (`/forge run claude gemini`)")
        unknown = [name for name in names if name not in known]
        if unknown:
            raise Refused(f"unknown agent `{unknown[0]}` (configured: {', '.join(sorted(known)) or 'none'})")
        return [known[name] for name in names]

    # -- tasks -------------------------------------------------------------------------------------

    async def start_task(
        self,
        issue: Issue,
        agents: Sequence[str],
        *,
        requester: str,
        delivery: str,
        extra: str = "",
        instructions: str = "",
    ) -> Task:
        """A task for the issue with these agents (or the default ones). Idempotent per delivery, so a
        delivery resumed after a crash does not start the task twice. `instructions` (a rendered template) lead
        the prompt, with the issue's text after them as context."""
        async with self._starts.setdefault((issue.repo, issue.number), asyncio.Lock()):
            existing = await asyncio.to_thread(self.store.link_for_delivery, delivery)
            if existing is not None:
                task = await self.engine.task(existing.task_id)
                await self._publish_and_start(existing)
                return task
            settings = await self.repo_settings(issue.repo, issue.default_branch)
            profiles = self.profiles(settings, agents)
            token = await self.github.git_token(issue.repo)
            try:
                path = await asyncio.to_thread(self.clones.ensure, issue.repo, issue.clone_url, token)
            except WorkspaceError as error:
                raise Refused(f"I could not fetch the repository: {error}") from None
            title, description = sanitize.prompt_from_issue(issue.title, issue.body, extra)
            if instructions:
                description = with_issue(instructions, issue.number, description)
            task = await self.engine.submit(
                title=title or f"Issue #{issue.number}",
                description=description,
                repo=path,
                profiles=profiles,
                base=settings.defaults.base or issue.default_branch,
                strategy=settings.defaults.strategy,
                quality_threshold=settings.defaults.quality_threshold,
                checks=to_checks(settings),
                source="github",
                external_ref=f"{issue.repo}#{issue.number}",
                start=False,
            )
            link = IssueTask(
                task_id=task.id,
                repo=issue.repo,
                issue=issue.number,
                requester=requester,
                created_at=self.clock(),
                delivery=delivery,
                installation_id=issue.installation_id,
            )
            await asyncio.to_thread(self.store.link, link)
            log.info("issue_task_created", repo=issue.repo, issue=issue.number, task=task.id, delivery=delivery)
            await self._publish_and_start(link)
            return task

    async def _publish_and_start(self, link: IssueTask) -> None:
        try:
            await self.publisher.open_progress(await asyncio.to_thread(self.store.get_link, link.task_id))
        except GitHubError as error:
            # The work goes on; the next refresh finds the comment by its marker (if the POST landed) or posts it.
            log.warning("progress_comment_failed", task=link.task_id, status=error.status)
        await self.engine.serve(link.task_id)

    async def current_task(self, issue: Issue) -> IssueTask:
        """The task a command on this issue means: the PR's own task on a bot PR, else the issue's latest."""
        if issue.is_pull_request:
            by_pull = await asyncio.to_thread(self.store.link_for_pull, issue.repo, issue.number)
            if by_pull is not None:
                return by_pull
        links = await asyncio.to_thread(self.store.links_for_issue, issue.repo, issue.number)
        if not links:
            raise Refused("there is no forgebot task on this issue yet: label it `forge` or use `/forge run`")
        return links[0]

    async def resolve(self, link: IssueTask, target: Target | None) -> Attempt:
        """The attempt `#n` (as numbered in the progress table) or `agent` (its latest attempt) means; with no
        target, the winner: the PR's attempt when there is one, else the comparison's winner."""
        attempts = await self.engine.attempts(link.task_id)
        if target is None:
            if link.pr_number:
                pull = await self.github.get_pull(link.repo, link.pr_number)
                match = [a for a in attempts if a.branch == pull.head]
                if match:
                    return match[0]
            winner = compare(attempts).winner
            if winner is None:
                raise Refused("no attempt has succeeded yet; name one (`/forge pick 2` or `/forge pick claude`)")
            return next(a for a in attempts if a.id == winner.attempt_id)
        if target.number is not None:
            # The number shown in the progress table's first column.
            numbered = [a for a in attempts if a.id == target.number]
            if not numbered:
                shown = ", ".join(str(a.id) for a in attempts)
                raise Refused(f"there is no attempt {target.number} on this task (its attempts: {shown})")
            return numbered[0]
        named = [a for a in attempts if a.agent == target.agent]
        if not named:
            raise Refused(f"no attempt by `{target.agent}` on this task")
        return named[-1]

    async def fork_profile(self, issue: Issue, agent: str, model: str | None) -> AgentProfile:
        settings = await self.repo_settings(issue.repo, issue.default_branch)
        profile = self.profiles(settings, [agent])[0]
        return replace(profile, model=model) if model else profile

    async def auto_pr(self, link: IssueTask) -> bool:
        """At the end of a task: open the winner's pull request when the server or the repository asks."""
        info = await self.github.get_repo(link.repo)
        try:
            settings = await self.repo_settings(link.repo, info.default_branch)
        except Refused:
            return False
        if not settings.bot.get("auto_pr", False):
            return False
        attempt = await self.resolve(link, None)
        task = await self.engine.task(link.task_id)
        await self.publisher.open_pull(link, attempt, issue_title=task.title)
        return True

"""Composition root for `forgebot serve`: settings → store, engine, GitHub client, clone cache, publisher,
handlers, metrics and the aiohttp application (`POST /webhook`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
the REST API under `/api/v1` and the dashboard at `/`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web

from forgebot.api import ApiContext, add_api
from forgebot.api.dashboard import add_dashboard
from forgebot.api.settings import api_settings
from forgebot.app import engine_settings
from forgebot.config import Settings
from forgebot.core.models import AttemptStatus, IllegalTransition
from forgebot.engine.clones import Clones
from forgebot.engine.engine import Engine
from forgebot.engine.housekeeping import CleanupReport
from forgebot.engine.layout import Layout
from forgebot.engine.workspaces import Workspaces
from forgebot.github.bot import Bot
from forgebot.github.client import PyGithubClient
from forgebot.github.handlers import register
from forgebot.github.permissions import Permissions
from forgebot.github.port import GitHubError, GitHubPort
from forgebot.github.publisher import Publisher, PublisherSettings, web_url
from forgebot.github.routing import Router
from forgebot.github.settings import BODY_LIMIT, BotSettings
from forgebot.github.sweeps import PullSweep, Redeliverer
from forgebot.github.webhooks import Webhooks
from forgebot.metrics import Metrics
from forgebot.scheduler import GitHubJobs, Jobs, Scheduler
from forgebot.store import SqlStore, open_store

log = structlog.get_logger(__name__)
# Of the shutdown grace, the part kept for interrupting what is left and posting the final edits.
FINAL_EDITS_SHARE = 0.25
FINAL_EDITS_MAX = 10.0
FINAL_EDITS_MIN = 1.0  # even with no grace at all, the final edits get this long


def data_dir(settings: Settings) -> str:
    return os.path.abspath(settings.data_dir or os.path.join(os.path.expanduser("~"), ".local", "share", "forgebot"))


def daemon_store_url(settings: Settings) -> str:
    """The daemon's store (also where `forgebot tokens` keeps the API tokens)."""
    return settings.store_url or "sqlite:///" + os.path.join(data_dir(settings), "forgebot.db")


@dataclass
class Daemon:
    settings: Settings
    behaviour: BotSettings
    store: SqlStore
    engine: Engine
    github: GitHubPort
    bot: Bot
    webhooks: Webhooks
    app: web.Application
    metrics: Metrics
    jobs: Jobs | None = None
    scheduler: Scheduler | None = None
    stopping: bool = False

    async def start(self) -> None:
        """Recover what a stopped daemon left: interrupted attempts are reported in their progress comments,
        accepted deliveries that never finished run again."""
        self.bot.publisher.attach()
        await asyncio.to_thread(cancel_unlinked, self.store, time.time())
        recovered = await self.engine.start()
        for task_id in sorted({attempt.task_id for attempt in recovered}):
            try:
                await self.bot.publisher.refresh(task_id)
            except GitHubError as error:
                log.warning("progress_reconcile_failed", task=task_id, status=error.status)
        resumed = await self.webhooks.resume()
        if self.scheduler is not None:
            self.scheduler.start()
        log.info("daemon_started", interrupted=len(recovered), resumed_deliveries=resumed)

    async def stop(self) -> None:
        """Stop taking work (/readyz and /webhook answer 503 from now on), then one deadline, `shutdown_grace`
        from now, for everything: running handlers and attempts may finish until the last quarter of it (at most
        10 s) is left, the rest are interrupted (their deliveries stay pending and run again on the next start),
        and the final progress edits are posted in what remains. A GitHub rate-limit wait cannot hold it up."""
        self.stopping = True
        self.webhooks.stop_accepting()
        grace = self.behaviour.server.shutdown_grace
        deadline = time.monotonic() + grace
        work_until = deadline - min(grace * FINAL_EDITS_SHARE, FINAL_EDITS_MAX)
        if self.scheduler is not None:
            await self.scheduler.stop(grace=min(_left(work_until), 5.0))
        await self.webhooks.drain(_left(work_until))
        await self.engine.shutdown(grace=_left(work_until))
        if not await self.bot.publisher.flush(max(_left(deadline), FINAL_EDITS_MIN)):
            log.warning("final_edits_cut_short")
        await self.bot.publisher.close()
        self.store.close()
        log.info("daemon_stopped")

    async def ready(self) -> dict[str, str]:
        problems = {}
        try:
            await asyncio.to_thread(self.store.list_tasks, limit=1)
        except Exception as error:
            problems["store"] = type(error).__name__
        try:
            await self.github.ping()
        except GitHubError as error:
            problems["github"] = f"status {error.status}" if error.status else "unreachable"
        return problems


UNLINKED = (
    "cancelled before it started: forgebot stopped before it linked this task to its issue, so it was never "
    "shown there; repeat the label or command that asked for it"
)


def cancel_unlinked(store: SqlStore, now: float) -> list[int]:
    """Before the engine starts: a GitHub task created but never linked to its issue (a daemon stopped between
    the two) was held in memory only, so it would now run unseen; its queued attempts are cancelled instead."""
    cancelled = []
    for attempt_id in store.bot_store().unlinked_queued_attempts():
        with contextlib.suppress(IllegalTransition):  # another process started or cancelled it meanwhile
            store.transition(attempt_id, AttemptStatus.CANCELLED, finished_at=now, error=UNLINKED)
            cancelled.append(attempt_id)
    if cancelled:
        log.warning("unlinked_attempts_cancelled", attempts=cancelled)
    return cancelled


def build(
    settings: Settings,
    behaviour: BotSettings,
    github: GitHubPort,
    *,
    environ: Mapping[str, str],
    plain_http_hosts: tuple[str, ...] = (),
) -> Daemon:
    settings = _daemon_policy(settings)
    api = api_settings(settings, environ)  # before anything is opened: a mistake there stops the start
    root = data_dir(settings)
    store = open_store(daemon_store_url(settings))
    workspaces = Workspaces()
    engine = Engine(
        store,
        workspaces,
        settings=engine_settings(settings),
        layout=Layout(state_root=root),
        environ=environ,
        serve_all=True,
    )
    clones = Clones(workspaces, os.path.join(root, "clones"), plain_http_hosts=plain_http_hosts)
    bot_store = store.bot_store()
    secrets = tuple(s for s in (behaviour.github.token, *behaviour.github.webhook_secrets) if s)
    publisher = Publisher(
        github,
        engine,
        bot_store,
        clones,
        PublisherSettings(
            web_url=web_url(behaviour.github.api_url),
            progress_interval=behaviour.bot.progress_interval,
            max_progress_edits=behaviour.bot.max_progress_edits,
            log_tail_lines=behaviour.bot.log_tail_lines,
            draft_pr=behaviour.bot.draft_pr,
            trigger_label=behaviour.bot.trigger_label,
            secrets=secrets,
            runtime_secrets=github.known_tokens,
        ),
    )
    permissions = Permissions(github, behaviour.bot.permission_cache_seconds)
    bot = Bot(settings, behaviour, github, engine, bot_store, clones, publisher, permissions)
    publisher.auto_pr = bot.auto_pr
    router = Router()
    register(router, bot)
    metrics = Metrics(store)
    metrics.watch(engine.bus)
    if isinstance(github, PyGithubClient):
        github.observer = metrics
    webhooks = Webhooks(behaviour.github.webhook_secrets, bot_store, router, on_result=metrics.webhook_result)
    app = web.Application(client_max_size=BODY_LIMIT + 1024)
    daemon = Daemon(settings, behaviour, store, engine, github, bot, webhooks, app, metrics)
    daemon.jobs = daemon_jobs(daemon, clones)
    daemon.scheduler = Scheduler(daemon.jobs, settings.schedule)
    app.router.add_post("/webhook", webhooks.handle)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(daemon))
    app.router.add_get("/metrics", metrics.handle)
    api_context = ApiContext(
        engine,
        store.token_store(),
        settings,
        secrets=secrets,
        bot_store=bot_store,
        web_url=web_url(behaviour.github.api_url),
        public_reads=api.dashboard_public,
    )
    add_api(app, api_context)
    add_dashboard(app)
    return daemon


def daemon_jobs(daemon: Daemon, clones: Clones) -> Jobs:
    """The scheduled jobs over the daemon's engine and GitHub; missed deliveries only for a GitHub App."""
    bot = daemon.bot
    pulls = PullSweep(daemon.github, daemon.engine, bot.store, clones, bot.publisher)
    redeliverer = None
    if daemon.behaviour.github.app_id is not None:
        redeliverer = Redeliverer(daemon.github, bot.store, lookback=daemon.settings.schedule.deliveries_lookback)
    def counted(report: CleanupReport) -> None:
        daemon.metrics.cleanup_done(report, branches_deleted=len(report.branches_deleted))

    return Jobs(daemon.engine, daemon.settings.schedule, GitHubJobs(pulls, redeliverer), on_cleanup=counted)


# Locked in a daemon unless the server file sets them: a repository's .github/forge.yml is written by whoever can
# push to its default branch, and a command agent, a check or an agent's ${VARIABLE} runs code on this machine;
# an agent's base_url or args would send a built-in agent, with the API key forgebot gives it, to any server.
DAEMON_LOCKED_POLICY = (
    "repo_may_add_command_agents", "repo_may_set_checks", "repo_may_set_agent_env", "repo_may_redirect_agents"
)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _daemon_policy(settings: Settings) -> Settings:
    """A repository may not add `command` agents, replace the checks, pull ${VARIABLES} out of the daemon's
    environment (where its own GitHub credentials live) or point an agent at another server unless the server file
    allows it explicitly."""
    locked = {key: False for key in DAEMON_LOCKED_POLICY if key not in settings.policy.model_fields_set}
    if not locked:
        return settings
    policy = settings.policy.model_copy(update=locked)
    return settings.model_copy(update={"policy": policy})


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


def _readyz(daemon: Daemon) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(_request: web.Request) -> web.Response:
        if daemon.stopping:  # a load balancer stops sending deliveries here
            return web.json_response({"status": "shutting down"}, status=503)
        problems = await daemon.ready()
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    return readyz


async def serve(daemon: Daemon, host: str, port: int, stop: asyncio.Event) -> None:
    """Run until `stop` is set (SIGTERM/SIGINT in the CLI), then shut down gracefully."""
    runner = web.AppRunner(daemon.app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    await daemon.start()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening", host=host, port=port)
    try:
        await stop.wait()
    finally:
        await daemon.stop()
        await runner.cleanup()

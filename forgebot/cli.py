"""The `forgebot` command line: the engine driven on a local repository."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from rich.console import Console
from rich.live import Live

from forgebot import cli_agents, cli_config, cli_serve, cli_templates, tui
from forgebot.agents.base import AgentUnavailable
from forgebot.app import LocalApp, open_local
from forgebot.config import ConfigError, parse_duration
from forgebot.core.models import ACTIVE, AttemptStatus, Strategy, TaskStatus, task_status
from forgebot.core.templates import TemplateError
from forgebot.engine.events import EngineEvent, EventKind
from forgebot.engine.housekeeping import EngineError
from forgebot.engine.processes import pid_alive, spawn_detached
from forgebot.engine.workspaces import WorkspaceError
from forgebot.logs import configure_logging
from forgebot.store import StoreError

USER_ERRORS = (EngineError, ConfigError, WorkspaceError, StoreError, AgentUnavailable, TemplateError)

Handler = Callable[[LocalApp, argparse.Namespace, Console], Awaitable[int]]


# -- task create / fork / retry: run attempts here, or in a detached background process -----------------


async def task_create(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    """Also `template use`, which fills in title, description and agents from the template first."""
    defaults = app.settings.defaults
    task = await app.engine.submit(
        title=args.title,
        description=args.description or "",
        repo=app.repo,
        profiles=app.pick_profiles(args.agent or []),
        base=args.base or defaults.base,
        strategy=Strategy(args.strategy or defaults.strategy),
        quality_threshold=args.threshold if args.threshold is not None else defaults.quality_threshold,
        checks=app.checks,
        start=not args.detach,
    )
    out.print(f"Task {task.id} created on {task.base_branch} ({task.base_sha[:8]}).")
    return await run_or_detach(app, args, out, task.id)


async def task_fork(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    for profile in app.pick_profiles(args.agent):
        attempt = await app.engine.fork(args.task, profile, start=not args.detach)
        out.print(f"Attempt {attempt.id} ({attempt.agent}) added to task {args.task} on {attempt.branch}.")
    return await run_or_detach(app, args, out, args.task)


async def task_retry(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    attempt = await app.engine.attempt(args.attempt)
    if attempt.task_id != args.task:
        raise EngineError(f"attempt {args.attempt} belongs to task {attempt.task_id}, not task {args.task}")
    await app.engine.retry(args.attempt, start=not args.detach)
    out.print(f"Attempt {args.attempt} ({attempt.agent}) queued again.")
    return await run_or_detach(app, args, out, args.task)


async def task_followup(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    attempt = await app.engine.attempt(args.attempt)
    if attempt.task_id != args.task:
        raise EngineError(f"attempt {args.attempt} belongs to task {attempt.task_id}, not task {args.task}")
    await app.engine.followup(args.attempt, args.prompt, start=not args.detach)
    out.print(f"Follow-up queued for attempt {args.attempt} ({attempt.agent}) on {attempt.branch}.")
    return await run_or_detach(app, args, out, args.task)


async def run_or_detach(app: LocalApp, args: argparse.Namespace, out: Console, task_id: int) -> int:
    if args.detach:
        log_path = os.path.join(app.repo, ".forge", "logs", f"runner-task-{task_id}.log")
        argv = [sys.executable, "-m", "forgebot.cli", "--repo", app.repo]
        if args.config:
            argv += ["--config", args.config]
        pid = spawn_detached([*argv, "task", "work", str(task_id)], cwd=app.repo, log_path=log_path)
        out.print(f"Running in the background (pid {pid}); watch with: forgebot task status {task_id} --watch")
        return 0
    return await watch_task(app, out, task_id, live=not args.no_live)


async def task_work(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    """The detached runner: runs the task's queued attempts in this process until none is left."""
    await app.engine.serve(args.task)
    await app.engine.wait_task(args.task)
    return 0


async def watch_task(app: LocalApp, out: Console, task_id: int, live: bool) -> int:
    engine = app.engine
    task = await engine.task(task_id)
    attempts = {a.id: a for a in await engine.attempts(task_id)}

    def on_event(event: EngineEvent) -> None:
        if event.task_id != task_id or event.attempt is None:
            return
        attempts[event.attempt.id] = event.attempt
        if not live and event.kind in (EventKind.ATTEMPT_STATUS, EventKind.ATTEMPT_ADDED):
            a = event.attempt
            detail = f": {a.error}" if a.error and a.status.terminal else ""
            out.print(f"attempt {a.id} {a.agent}: {a.status.value}{detail}")

    unsubscribe = engine.bus.subscribe(on_event)
    try:
        waiter = asyncio.ensure_future(engine.wait_task(task_id))
        if live:
            with Live(console=out, refresh_per_second=4) as screen:
                while not waiter.done():
                    screen.update(tui.attempts_table(task, sorted(attempts.values(), key=lambda a: a.id), time.time()))
                    await asyncio.wait([waiter], timeout=0.25)
        final = await waiter
    finally:
        unsubscribe()
    out.print(tui.attempts_table(task, final, time.time()))
    comparison = await engine.compare(task_id)
    out.print(tui.comparison_view(comparison, final))
    return 0 if task_status([a.status for a in final]) is TaskStatus.SUCCEEDED else 3


# -- reading -----------------------------------------------------------------------------------------------


async def task_list(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    tasks = await asyncio.to_thread(app.store.list_tasks, limit=args.limit)
    rows = [(task, await app.engine.attempts(task.id)) for task in tasks]
    out.print(tui.tasks_table(rows) if rows else "No tasks yet.")
    return 0


async def task_status_cmd(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    task = await app.engine.task(args.task)
    if not args.watch:
        out.print(tui.attempts_table(task, await app.engine.attempts(task.id), time.time()))
        return 0
    with Live(console=out, refresh_per_second=2) as screen:
        while True:
            attempts = await app.engine.attempts(task.id)
            screen.update(tui.attempts_table(task, attempts, time.time()))
            if all(a.status.terminal for a in attempts):
                return 0
            await asyncio.sleep(args.interval)


async def task_compare(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    comparison = await app.engine.compare(args.task)
    out.print(tui.comparison_view(comparison, await app.engine.attempts(args.task)))
    return 0


async def processes_list(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    import psutil

    def snapshot() -> list[tuple[object, bool, float | None]]:
        rows: list[tuple[object, bool, float | None]] = []
        for attempt in app.store.list_attempts(statuses=ACTIVE):
            alive = bool(attempt.pid) and pid_alive(attempt.pid or 0)
            rss = None
            if alive:
                try:
                    rss = psutil.Process(attempt.pid).memory_info().rss / 2**20
                except psutil.Error:
                    alive = False
            rows.append((attempt, alive, rss))
        return rows

    if not args.watch:
        rows = await asyncio.to_thread(snapshot)
        out.print(tui.processes_table(rows, time.time()) if rows else "No agent processes running.")  # type: ignore[arg-type]
        return 0
    with Live(console=out, refresh_per_second=2) as screen:
        while True:
            rows = await asyncio.to_thread(snapshot)
            screen.update(tui.processes_table(rows, time.time()))  # type: ignore[arg-type]
            await asyncio.sleep(args.interval)


# -- changing ----------------------------------------------------------------------------------------------


async def task_merge(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    result = await app.engine.merge(args.task, args.attempt, rebase=args.rebase)
    how = " after rebasing" if result.rebased else ""
    out.print(
        f"Merged attempt {args.attempt} into {result.base_branch}{how}: {result.old_sha[:8]} → {result.new_sha[:8]}."
    )
    return 0


async def task_cancel(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    for attempt in await app.engine.cancel(args.task, args.attempt):
        out.print(f"attempt {attempt.id} {attempt.agent}: {attempt.status.value}")
    return 0


async def attempts_delete(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    statuses = [AttemptStatus(s) for s in args.status]
    deleted = await app.engine.delete_attempts(statuses, task_id=args.task)
    out.print(
        f"Deleted {len(deleted)} attempt(s)"
        + (": " + ", ".join(f"#{a.id} {a.agent}" for a in deleted) if deleted else ".")
    )
    return 0


async def worktree_cleanup(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    report = await app.engine.cleanup_worktrees(dry_run=args.dry_run, older_than=args.older_than or 0.0)
    verb = "Would remove" if report.dry_run else "Removed"
    out.print(f"{verb} {len(report.removed)} worktree(s); {report.kept} still in use.")
    for path in report.removed:
        out.print(f"  {path}")
    out.print(
        f"Disk used by worktrees: {report.bytes_before / 2**20:.1f} MiB before, "
        f"{report.bytes_after / 2**20:.1f} MiB after."
    )
    return 0


# -- parsing -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forgebot", description="Run several coding agents on one task, compare, merge."
    )
    parser.add_argument("--repo", default=".", help="the git repository to work on (default: current directory)")
    parser.add_argument("--config", default=os.environ.get("FORGEBOT_CONFIG"), help="config file (YAML)")
    parser.add_argument("--log-level", help="debug, info, warning (default; info for serve), error")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    task = groups.add_parser("task", help="create, watch, compare and merge tasks").add_subparsers(
        dest="cmd", required=True
    )
    create = task.add_parser("create", help="run several agents on a new task")
    create.add_argument("title")
    create.add_argument("--description", default="")
    _create_flags(create)
    create.set_defaults(handler=task_create)

    fork = task.add_parser("fork", help="add another attempt to a task")
    fork.add_argument("task", type=int)
    fork.add_argument("--agent", action="append", required=True)
    _run_flags(fork)
    fork.set_defaults(handler=task_fork)

    retry = task.add_parser("retry", help="run a failed, cancelled or interrupted attempt again")
    retry.add_argument("task", type=int)
    retry.add_argument("--attempt", type=int, required=True)
    _run_flags(retry)
    retry.set_defaults(handler=task_retry)

    followup = task.add_parser("followup", help="continue an attempt's agent session with a new prompt")
    followup.add_argument("task", type=int)
    followup.add_argument("--attempt", type=int, required=True)
    followup.add_argument("prompt")
    _run_flags(followup)
    followup.set_defaults(handler=task_followup)

    work = task.add_parser("work")  # internal: the detached runner
    work.add_argument("task", type=int)
    work.set_defaults(handler=task_work)

    listing = task.add_parser("list", help="list tasks")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=task_list)

    status = task.add_parser("status", help="show a task's attempts")
    status.add_argument("task", type=int)
    status.add_argument("--watch", action="store_true")
    status.add_argument("--interval", type=float, default=1.0)
    status.set_defaults(handler=task_status_cmd)

    for name, handler, text in (("compare", task_compare, "rank the attempts"),):
        sub = task.add_parser(name, help=text)
        sub.add_argument("task", type=int)
        sub.set_defaults(handler=handler)

    merge = task.add_parser("merge", help="squash-merge an attempt into the base branch")
    merge.add_argument("task", type=int)
    merge.add_argument("--attempt", type=int, required=True)
    merge.add_argument("--rebase", action="store_true", help="replay the attempt when the base branch has moved")
    merge.set_defaults(handler=task_merge)

    cancel = task.add_parser("cancel", help="cancel a task or one attempt")
    cancel.add_argument("task", type=int)
    cancel.add_argument("--attempt", type=int)
    cancel.set_defaults(handler=task_cancel)

    attempts = groups.add_parser("attempts", help="manage attempts").add_subparsers(dest="cmd", required=True)
    delete = attempts.add_parser("delete", help="delete finished attempts by status")
    delete.add_argument("--status", action="append", required=True, choices=[s.value for s in AttemptStatus])
    delete.add_argument("--task", type=int)
    delete.set_defaults(handler=attempts_delete)

    worktree = groups.add_parser("worktree", help="manage worktrees").add_subparsers(dest="cmd", required=True)
    cleanup = worktree.add_parser("cleanup", help="remove worktrees of finished attempts")
    cleanup.add_argument("--dry-run", action="store_true")
    cleanup.add_argument("--older-than", type=_duration, help="only attempts finished this long ago (e.g. 24h)")
    cleanup.set_defaults(handler=worktree_cleanup)

    cli_agents.add_parsers(groups)
    cli_templates.add_parsers(groups, create=task_create, flags=_create_flags)
    cli_serve.add_parser(groups)
    cli_config.add_parser(groups)

    processes = groups.add_parser("processes", help="agent processes").add_subparsers(dest="cmd", required=True)
    plist = processes.add_parser("list", help="list running agent processes")
    plist.add_argument("--watch", action="store_true")
    plist.add_argument("--interval", type=float, default=1.0)
    plist.set_defaults(handler=processes_list)
    return parser


def _create_flags(parser: argparse.ArgumentParser) -> None:
    """The options of `task create` that a template does not set (`template use` takes them too)."""
    parser.add_argument("--agent", action="append", help="agent profile (repeat for several)")
    parser.add_argument("--strategy", choices=[s.value for s in Strategy])
    parser.add_argument("--threshold", type=_fraction, help="cascade: quality in [0, 1] needed to stop escalating")
    parser.add_argument("--base", help="base branch (default: the current branch)")
    _run_flags(parser)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detach", action="store_true", help="return at once; the work goes on in the background")
    parser.add_argument("--no-live", action="store_true", help="print status lines instead of a live table")


async def _dispatch(args: argparse.Namespace, out: Console) -> int:
    app = open_local(args.repo, args.config, os.environ)
    handler: Handler = args.handler
    # SIGTERM (a service manager, `kill`) stops like Ctrl-C: agents' process groups are killed, never orphaned.
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    try:
        await app.engine.start()
        return await handler(app, args, out)
    finally:
        await app.engine.shutdown(grace=0)
        app.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("info" if args.group == "serve" else "warning")
    configure_logging(level, json=os.environ.get("FORGEBOT_LOG_FORMAT") == "json" or None)
    out = Console()
    if not out.is_terminal:
        out = Console(width=140)  # logs and pipes: wide enough that tables do not wrap
        args.no_live = True
    try:
        if standalone := getattr(args, "standalone", None):  # needs no repository (config check)
            return int(standalone(args))
        if args.group == "serve":
            return asyncio.run(cli_serve.run_serve(args))
        return asyncio.run(_dispatch(args, out))
    except USER_ERRORS as error:
        print(f"forgebot: error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError) as stop:
        print(
            "forgebot: interrupted; running attempts were marked interrupted (retry them with task retry)",
            file=sys.stderr,
        )
        return 130 if isinstance(stop, KeyboardInterrupt) else 143


if __name__ == "__main__":
    sys.exit(main())

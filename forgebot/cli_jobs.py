"""`forgebot jobs run NAME [--dry-run]`: run one of the scheduled jobs once, by hand.

With a GitHub token or App configured (the server file of `forgebot serve`), the job runs over the daemon's store
and GitHub, exactly as the daemon schedules it; otherwise over the local repository's store (cleanup, reaper).
"""

from __future__ import annotations

import argparse
import os

from rich.console import Console

from forgebot.app import open_local
from forgebot.config import Settings, load_settings, parse_duration
from forgebot.engine.housekeeping import CleanupReport
from forgebot.engine.janitor import ReapReport
from forgebot.github.settings import BotSettings, bot_settings
from forgebot.github.sweeps import RedeliveryReport
from forgebot.scheduler import JOB_NAMES, Jobs


def older_than(text: str) -> float:
    """An --older-than value (argparse type): a duration, or 0 for every finished task."""
    if text.strip().lower() in ("0", "0s", "0m", "0h"):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = groups.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="cmd", required=True)
    run = jobs.add_parser("run", help="run a scheduled job once: " + ", ".join(JOB_NAMES))
    run.add_argument("name", choices=JOB_NAMES)
    run.add_argument("--dry-run", action="store_true", help="show what the job would do, change nothing")
    run.add_argument(
        "--older-than", type=older_than, help="cleanup: tasks finished this long ago (default: worktree_ttl)"
    )


async def run_job(args: argparse.Namespace, out: Console) -> int:
    settings = load_settings(args.config, os.environ)
    behaviour = bot_settings(settings, os.environ)
    options = {"older_than": args.older_than} if args.older_than is not None and args.name == "cleanup" else {}
    if behaviour.github.token or behaviour.github.app_id is not None:
        return await _on_daemon(args, out, settings, behaviour, options)
    app = open_local(args.repo, args.config, os.environ)
    try:
        report = await Jobs(app.engine, app.settings.schedule).run(args.name, dry_run=args.dry_run, **options)
    finally:
        await app.engine.shutdown(grace=0)
        app.close()
    for line in describe(report):
        out.print(line)
    return 0


async def _on_daemon(
    args: argparse.Namespace, out: Console, settings: Settings, behaviour: BotSettings, options: dict[str, float]
) -> int:
    from forgebot.cli_serve import github_client
    from forgebot.daemon import build

    client = github_client(behaviour)
    daemon = build(settings, behaviour, client, environ=os.environ)
    try:
        assert daemon.jobs is not None
        report = await daemon.jobs.run(args.name, dry_run=args.dry_run, **options)
        await daemon.bot.publisher.settle()
    finally:
        await daemon.bot.publisher.close()
        await daemon.engine.shutdown(grace=0)
        daemon.store.close()
        await client.close()
    for line in describe(report):
        out.print(line)
    return 0


def describe(report: object) -> list[str]:
    """What a job did (or would do), for a person."""
    if isinstance(report, CleanupReport):
        verb = "Would remove" if report.dry_run else "Removed"
        lines = [f"{verb} {len(report.removed)} worktree(s); kept {report.kept}."]
        lines += [f"  {path}" for path in report.removed]
        if report.branches_deleted or report.branch_errors:
            verb = "Would delete" if report.dry_run else "Deleted"
            lines.append(f"{verb} {len(report.branches_deleted)} remote branch(es); {report.branch_errors} error(s).")
            lines += [f"  {branch}" for branch in report.branches_deleted]
        lines.append(
            f"Disk used by worktrees: {report.bytes_before / 2**20:.1f} MiB before, "
            f"{report.bytes_after / 2**20:.1f} MiB after."
        )
        return lines
    if isinstance(report, ReapReport):
        verb = "Would finish" if report.dry_run else "Finished"
        return [
            f"Checked {report.checked} active attempt(s). {verb} {len(report.timed_out)} as timed out "
            f"{list(report.timed_out)} and {len(report.interrupted)} as interrupted {list(report.interrupted)}."
        ]
    if isinstance(report, RedeliveryReport):
        verb = "Would redeliver" if report.dry_run else "Redelivered"
        count = len(report.missed) if report.dry_run else report.redelivered
        lines = [f"Listed {report.listed} delivery attempt(s); {len(report.missed)} missed. {verb} {count}."]
        lines += [f"  {guid}" for guid in report.missed]
        if report.errors:
            lines.append(f"{report.errors} redelivery request(s) failed; the next run asks again.")
        return lines
    return [str(report)]


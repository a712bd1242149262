"""`forgebot --server URL ...`: the task, attempts and worktree commands on a running server, through the SDK."""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Mapping

from rich.console import Console
from rich.table import Table

from forgebot.config import ConfigError
from forgebot.sdk import Attempt, Comparison, ForgeClient, Task
from forgebot.tui import money

Remote = Callable[[ForgeClient, argparse.Namespace, Console], Awaitable[int]]
WAIT = 24 * 3600.0


def attempts_table(task: Task) -> Table:
    table = Table(title=f"Task {task.id}: {task.title}  [{task.status}]", title_justify="left")
    for column in ("#", "agent", "status", "elapsed", "files", "±lines", "checks", "cost", "branch"):
        table.add_column(column)
    for a in task.attempts:
        passed = sum(c.passed for c in a.checks)
        table.add_row(
            str(a.id),
            a.agent,
            a.status,
            f"{a.elapsed:.1f}s" if a.elapsed is not None else "-",
            str(a.diff.files),
            f"+{a.diff.insertions}/-{a.diff.deletions}",
            f"{passed}/{len(a.checks)}" if a.checks else "-",
            money(a.usage.cost_usd),
            a.branch,
        )
    return table


def print_comparison(comparison: Comparison, out: Console) -> None:
    out.print("Comparison")
    for ranked in comparison.ranking:
        out.print(f"  {ranked.rank}. {ranked.agent} (attempt {ranked.attempt_id}) quality {ranked.quality:.2f}: "
                  + "; ".join(ranked.reasons))  # fmt: skip
    out.print(f"  {comparison.verdict}")
    if comparison.speedup is not None:
        out.print(f"  Speedup over running them one by one: {comparison.speedup:.1f}x")
    out.print(f"  Total cost: {money(comparison.total_cost)}")


async def _finish(forge: ForgeClient, args: argparse.Namespace, out: Console, task_id: int) -> int:
    if getattr(args, "detach", False):
        out.print(f"Running on the server; watch with: forgebot --server {forge.base_url} task status {task_id}")
        return 0
    task = await forge.attempts.wait_for_completion(task_id=task_id, timeout=WAIT)
    out.print(attempts_table(task))
    print_comparison(await forge.attempts.compare(task_id), out)
    return 0 if task.status == "succeeded" else 3


async def _attempt_of(forge: ForgeClient, task_id: int, attempt_id: int) -> Attempt:
    attempt = await forge.attempts.get(attempt_id)
    if attempt.task_id != task_id:
        raise ConfigError(f"attempt {attempt_id} belongs to task {attempt.task_id}, not task {task_id}")
    return attempt


async def task_create(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    task = await forge.tasks.create(
        args.title,
        repo=os.path.abspath(args.repo),  # noqa: ASYNC240  (getcwd once; the path is the server's, pass --repo)
        agents=args.agent or [],
        description=args.description or "",
        base=args.base,
        strategy=args.strategy,
        quality_threshold=args.threshold,
    )
    out.print(f"Task {task.id} created on {task.base_branch} ({task.base_sha[:8]}).")
    return await _finish(forge, args, out, task.id)


async def task_fork(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    for name in args.agent:
        attempt = await forge.attempts.create(args.task, name)
        out.print(f"Attempt {attempt.id} ({attempt.agent}) added to task {args.task} on {attempt.branch}.")
    return await _finish(forge, args, out, args.task)


async def task_retry(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    attempt = await _attempt_of(forge, args.task, args.attempt)
    await forge.attempts.retry(attempt.id)
    out.print(f"Attempt {attempt.id} ({attempt.agent}) queued again.")
    return await _finish(forge, args, out, args.task)


async def task_followup(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    attempt = await _attempt_of(forge, args.task, args.attempt)
    await forge.attempts.followup(attempt.id, args.prompt)
    out.print(f"Follow-up queued for attempt {attempt.id} ({attempt.agent}) on {attempt.branch}.")
    return await _finish(forge, args, out, args.task)


async def task_list(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    tasks = await forge.tasks.list(limit=args.limit)
    if not tasks:
        out.print("No tasks yet.")
        return 0
    table = Table(title="Tasks", title_justify="left")
    for column in ("#", "title", "status", "attempts", "repository"):
        table.add_column(column)
    for task in tasks:
        table.add_row(str(task.id), task.title, task.status, str(len(task.attempts)), task.repo)
    out.print(table)
    return 0


async def task_status(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    task = await forge.tasks.get(args.task)
    if args.watch and not task.finished:
        task = await forge.attempts.wait_for_completion(task_id=task.id, timeout=WAIT)
    out.print(attempts_table(task))
    return 0


async def task_compare(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    print_comparison(await forge.attempts.compare(args.task), out)
    return 0


async def task_merge(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    result = await forge.tasks.merge(args.task, args.attempt, rebase=args.rebase)
    how = " after rebasing" if result.rebased else ""
    out.print(f"Merged attempt {args.attempt} into {result.base_branch}{how}: "
              f"{result.old_sha[:8]} → {result.new_sha[:8]}.")  # fmt: skip
    return 0


async def task_cancel(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    if args.attempt is not None:
        attempts = [await forge.attempts.cancel((await _attempt_of(forge, args.task, args.attempt)).id)]
    else:
        attempts = list((await forge.tasks.cancel(args.task)).attempts)
    for attempt in attempts:
        out.print(f"attempt {attempt.id} {attempt.agent}: {attempt.status}")
    return 0


async def attempts_delete(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    deleted = await forge.attempts.delete_where(status=args.status, task_id=args.task)
    listed = ": " + ", ".join(f"#{a.id} {a.agent}" for a in deleted) if deleted else "."
    out.print(f"Deleted {len(deleted)} attempt(s){listed}")
    return 0


async def worktree_cleanup(forge: ForgeClient, args: argparse.Namespace, out: Console) -> int:
    report = await forge.worktrees.cleanup(dry_run=args.dry_run, older_than=args.older_than)
    out.print(f"{'Would remove' if report.dry_run else 'Removed'} {len(report.removed)} worktree(s); "
              f"{report.kept} still in use.")  # fmt: skip
    for path in report.removed:
        out.print(f"  {path}")
    return 0


COMMANDS: dict[tuple[str, str], Remote] = {
    ("task", "create"): task_create,
    ("task", "fork"): task_fork,
    ("task", "retry"): task_retry,
    ("task", "followup"): task_followup,
    ("task", "list"): task_list,
    ("task", "status"): task_status,
    ("task", "compare"): task_compare,
    ("task", "merge"): task_merge,
    ("task", "cancel"): task_cancel,
    ("attempts", "delete"): attempts_delete,
    ("worktree", "cleanup"): worktree_cleanup,
}


async def run_remote(args: argparse.Namespace, out: Console) -> int:
    command = COMMANDS.get((args.group, getattr(args, "cmd", "")))
    if command is None:
        name = " ".join(part for part in (args.group, getattr(args, "cmd", "")) if part)
        raise ConfigError(f"`{name}` does not work with --server (it needs the local engine)")
    async with ForgeClient(args.server, remote_token(args.token_file, os.environ)) as forge:
        return await command(forge, args, out)


def remote_token(path: str | None, environ: Mapping[str, str]) -> str:
    """The API token from --token-file (its first line), else FORGEBOT_TOKEN. Never from argv: a secret there
    shows in `ps` and in the shell's history."""
    if path is None:
        token = environ.get("FORGEBOT_TOKEN", "").strip()
        if not token:
            raise ConfigError(
                "--server needs a token: pass --token-file PATH or set FORGEBOT_TOKEN (forgebot tokens create NAME)"
            )
        return token
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--token-file: cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    if not token:
        raise ConfigError(f"--token-file: {path} is empty (its first line must hold the token)")
    return token


class _RefuseTokenInArgv(argparse.Action):
    """`--token SECRET` is refused (without echoing SECRET); without this argparse would take it for an
    abbreviation of --token-file and name the secret as a missing file."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        parser.error("--token is not accepted (argv shows in `ps` and shell history): use --token-file PATH "
                     "or set FORGEBOT_TOKEN")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("FORGEBOT_SERVER"),
        help="act on a running forgebot server (URL) instead of the local engine; also FORGEBOT_SERVER",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="file whose first line is the API token for --server; else FORGEBOT_TOKEN (never the token in argv)",
    )
    parser.add_argument("--token", action=_RefuseTokenInArgv, help=argparse.SUPPRESS)

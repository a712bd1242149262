"""`forgebot agents list|check`: which agent profiles exist, whether their CLIs and keys are there, a smoke run."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from forgebot.agents import adapter_for
from forgebot.app import LocalApp
from forgebot.config import ConfigError, resolve_env
from forgebot.core.models import AgentProfile, AttemptStatus
from forgebot.core.prompt import format_duration
from forgebot.engine.engine import Engine
from forgebot.engine.layout import Layout
from forgebot.engine.processes import ProcessSpec, run_process, scrubbed_env
from forgebot.engine.workspaces import Workspaces
from forgebot.store import open_store
from forgebot.tui import money, tokens_cell

SMOKE_PROMPT = "Create a file named forgebot-check.txt containing the single word OK. Change nothing else."


@dataclass(frozen=True)
class AgentReadiness:
    profile: AgentProfile
    binary: str | None
    installed: bool
    version: str
    credentials: str  # "set", or what is missing


async def readiness(profile: AgentProfile, agents_path: list[str], environ: dict[str, str]) -> AgentReadiness:
    adapter = adapter_for(profile.executor)
    binary = adapter.binary or (profile.command[0] if profile.command else None)
    path = os.pathsep.join([*agents_path, environ.get("PATH", "")])
    found = shutil.which(binary, path=path) if binary else None
    version = await _version(found, path) if found and adapter.binary else ""
    try:
        env = resolve_env(profile.env, environ)
        missing = adapter.credential_env and not any(env.get(name) for name in adapter.credential_env)
        credentials = f"missing: {' or '.join(adapter.credential_env)}" if missing else "set"
    except ConfigError as error:
        credentials = f"missing: {error}"
    return AgentReadiness(profile, binary, found is not None, version, credentials)


async def _version(binary: str, path: str) -> str:
    with tempfile.TemporaryDirectory(prefix="forgebot-version-") as home:
        env = {**scrubbed_env(home), "PATH": path}
        try:
            result = await run_process(ProcessSpec(argv=(binary, "--version"), cwd=home, env=env, timeout=20))
        except OSError:
            return "?"
    return version_of(result.tail) if result.ok else "?"


# 1.2.3, v0.86.2, 1.0.0-beta.2: digits with at least one dot, not inside a longer word or number.
_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+(?:-[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?)(?!\w)")


def version_of(output: str) -> str:
    """The version in a CLI's `--version` output, "?" when none shows. CLIs print more than the version, before
    it (Codex: a WARNING line) or after it (Copilot: "Run 'copilot update' to check for updates."), so the first
    version-looking token of a line that is not a warning wins."""
    lines = [line.strip() for line in output.splitlines()]
    ordered = [line for line in lines if not line.lower().startswith("warning")] + lines
    for line in ordered:
        match = _VERSION.search(line)
        if match:
            return match.group(1)
    return "?"


async def agents_list(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    environ = dict(os.environ)
    rows = await asyncio.gather(
        *(readiness(profile, app.settings.agents_path, environ) for profile in app.profiles.values())
    )
    table = Table(title="Agent profiles", title_justify="left")
    for column in ("agent", "executor", "model", "tier", "installed", "version", "credentials"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: r.profile.name):
        profile = row.profile
        table.add_row(
            profile.name,
            profile.executor,
            profile.model or "-",
            str(profile.tier),
            ("yes" if row.installed else f"no ({adapter_for(profile.executor).install_hint})") if row.binary else "-",
            row.version or "-",
            row.credentials if adapter_for(profile.executor).credential_env else "-",
        )
    out.print(table)
    return 0


async def agents_check(app: LocalApp, args: argparse.Namespace, out: Console) -> int:
    """A tiny real task on a scratch repository, outside the user's repository and store."""
    profile = app.pick_profiles([args.name])[0]
    with tempfile.TemporaryDirectory(prefix="forgebot-check-") as scratch:
        workspaces = Workspaces()
        repo = await asyncio.to_thread(workspaces.create_repo, os.path.join(scratch, "repo"), {"README.md": "check\n"})
        store = await asyncio.to_thread(open_store, "sqlite:///" + os.path.join(scratch, "check.db"))
        engine = Engine(
            store,
            workspaces,
            settings=app.engine.settings,
            layout=Layout(os.path.join(scratch, "state")),
            environ=os.environ,
        )
        try:
            started = time.monotonic()
            task = await engine.submit(
                title="forgebot agent check", description=SMOKE_PROMPT, repo=repo, profiles=[profile]
            )
            (attempt,) = await engine.wait_task(task.id)
        finally:
            await engine.shutdown(grace=0)
            store.close()
    ok = attempt.status is AttemptStatus.SUCCEEDED
    out.print(
        f"{profile.name}: {'ok' if ok else attempt.status.value} in {format_duration(time.monotonic() - started)}"
    )
    if attempt.error:
        out.print(f"  error: {attempt.error}")
    out.print(f"  tokens in/out: {tokens_cell(attempt)}; cost: {money(attempt.usage.cost_usd)}")
    if attempt.session_id:
        out.print(f"  session: {attempt.session_id}")
    if attempt.final_message:
        out.print(f"  says: {attempt.final_message.strip()[:200]}")
    return 0 if ok else 1


def add_parsers(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agents = groups.add_parser("agents", help="agent profiles and their CLIs").add_subparsers(dest="cmd", required=True)
    listing = agents.add_parser("list", help="every profile, whether its CLI is installed and its keys are set")
    listing.set_defaults(handler=agents_list)
    check = agents.add_parser("check", help="run a tiny smoke prompt with one agent")
    check.add_argument("name")
    check.set_defaults(handler=agents_check)

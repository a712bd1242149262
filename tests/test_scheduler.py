"""The scheduled jobs against a whole daemon: the real fake GitHub over HTTP, a bare repository as the remote, real
agent processes; and APScheduler really firing them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from forgebot.config import ConfigError, Schedule, Settings, load_settings
from forgebot.core.models import AttemptStatus
from forgebot.engine.engine import Engine
from forgebot.engine.housekeeping import CleanupReport, EngineError
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.github.client import PyGithubClient
from forgebot.github.port import GitHubError
from forgebot.github.sweeps import RedeliveryReport
from forgebot.scheduler import Jobs, Scheduler
from forgebot.store import open_store
from tests import payloads
from tests.bot_harness import REPO, SECRET, BotHarness, bare_remote, daemon_config, fake_agent, seed
from tests.fake_github import FakeGitHub
from tests.support import agent, git, make_repo, rsa_key_pair

S = AttemptStatus
APP_ID = 4242
INSTALLATION = 1  # what tests/payloads.py puts in every payload
QUICK = {name: fake_agent("write", f"{name}.py", f"{name} = 1") for name in ("claude", "codex", "gemini")}


def _jobs(h: BotHarness) -> Jobs:
    assert h.daemon.jobs is not None
    return h.daemon.jobs


async def _merged_behind_our_back(h: BotHarness, *, merged: bool) -> str:
    """The PR forgebot opened is merged (or closed) on GitHub, and the webhook never reaches forgebot."""
    await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice"))
    await h.until_idle()
    issue = h.gh.repos[REPO].issues[2]
    assert issue.pull is not None and issue.pull.head.startswith("forge/1-")
    issue.state = "closed"
    if merged:
        issue.pull.merged, issue.pull.merged_at = True, "2026-01-01T00:00:00Z"
    # Branches forgebot did not create: one not forge/, one forge/ that no attempt recorded.
    git(h.remote, "branch", "feature/keep", "main")
    git(h.remote, "branch", "forge/999-stranger", "main")
    return issue.pull.head


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "closed"])
async def test_cleanup_finishes_what_a_missed_pr_webhook_would_have_done(tmp_path: Path, merged: bool) -> None:
    async with BotHarness.start(tmp_path, agents=QUICK, bot={"auto_pr": True}) as h:
        head = await _merged_behind_our_back(h, merged=merged)
        worktrees = [a.worktree for a in await h.daemon.engine.attempts(1)]
        before = h.remote_branches()
        ours = ["forge/1-claude", "forge/1-codex", "forge/1-gemini"]
        expected = ours if merged else [b for b in ours if b != head]  # closed unmerged: its head may be reopened

        dry = await _jobs(h).run("cleanup", dry_run=True)
        assert isinstance(dry, CleanupReport)
        assert sorted(dry.removed) == sorted(worktrees)  # at once, whatever the 24 h TTL says
        assert sorted(dry.branches_deleted) == [f"{REPO}:{b}" for b in expected]
        assert h.remote_branches() == before and all(Path(w).exists() for w in worktrees)
        assert h.daemon.bot.store.get_link(1).pr_state == "open"  # a dry run records nothing
        assert not h.gh.requests_to("DELETE", "/git/refs/")

        report = await _jobs(h).run("cleanup", dry_run=False)
        assert isinstance(report, CleanupReport)
        assert (report.removed, report.branches_deleted) == (dry.removed, dry.branches_deleted)
        assert report.bytes_after < report.bytes_before and report.branch_errors == 0
        kept = ["feature/keep", "forge/999-stranger", "main"] + ([] if merged else [head])
        assert h.remote_branches() == sorted(kept)
        assert not any(Path(w).exists() for w in worktrees)
        link = h.daemon.bot.store.get_link(1)
        assert (link.pr_state, link.cleaned_up) == ("merged" if merged else "closed", True)
        await h.daemon.bot.publisher.settle()
        state = "merged" if merged else "closed"
        line = f"PR #2 {state}: removed 3 worktrees and deleted {len(expected)} branches."
        assert line in h.comments()[0]

        deletes = len(h.gh.requests_to("DELETE", "/git/refs/"))
        again = await _jobs(h).run("cleanup", dry_run=False)
        assert isinstance(again, CleanupReport)
        assert again.removed == () and again.branches_deleted == ()
        assert len(h.gh.requests_to("DELETE", "/git/refs/")) == deletes


async def test_an_open_pr_and_a_running_task_are_left_alone(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=QUICK, bot={"auto_pr": True}) as h:
        await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice"))
        await h.until_idle()
        before = h.remote_branches()
        report = await _jobs(h).run("cleanup", dry_run=False, older_than=0.0)
        assert isinstance(report, CleanupReport)
        # TTL 0 removes the finished task's worktrees, but while its PR is open no branch is touched.
        assert len(report.removed) == 3 and report.branches_deleted == ()
        assert h.remote_branches() == before and "forge/1-claude" in before


async def test_a_github_5xx_during_cleanup_is_logged_and_the_next_run_succeeds(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=QUICK, bot={"auto_pr": True}) as h:
        await _merged_behind_our_back(h, merged=True)
        h.gh.fail("GET", r"/repos/acme/widgets/pulls/2$", 503, times=4)  # every retry of the client
        with structlog.testing.capture_logs() as logs:
            first = await _jobs(h).run("cleanup", dry_run=False)
        assert isinstance(first, CleanupReport)
        assert first.branch_errors == 1 and first.branches_deleted == () and first.removed == ()
        [summary] = [entry for entry in logs if entry["event"] == "cleanup_ran"]
        assert summary["errors"] == 1 and summary["branches_deleted"] == 0
        assert "forge/1-codex" in h.remote_branches()

        second = await _jobs(h).run("cleanup", dry_run=False)
        assert isinstance(second, CleanupReport)
        assert second.branch_errors == 0 and len(second.branches_deleted) == 3 and len(second.removed) == 3
        assert h.remote_branches() == ["feature/keep", "forge/999-stranger", "main"]


# ---- missed deliveries (GitHub App)


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return rsa_key_pair()


def _app_options(tmp_path: Path, key: tuple[str, str]) -> dict[str, Any]:
    key_file = tmp_path / "app.pem"
    key_file.write_text(key[0])
    return {
        "github": {"token": None, "app_id": APP_ID, "private_key_file": str(key_file)},
        "client": lambda gh: PyGithubClient(
            api_url=gh.url, app_id=APP_ID, private_key=key[0], write_interval=0, backoff=0.01
        ),
    }


@asynccontextmanager
async def _app_github(tmp_path: Path, key: tuple[str, str]) -> AsyncIterator[FakeGitHub]:
    """A fake GitHub with the repository, and forgebot installed on it as a GitHub App."""
    async with FakeGitHub() as gh:
        seed(gh, bare_remote(tmp_path))
        gh.add_app(APP_ID, key[1])
        gh.install(INSTALLATION, REPO)
        yield gh


async def test_missed_deliveries_are_redelivered_once_and_only_the_failed_ones(
    tmp_path: Path, app_key: tuple[str, str]
) -> None:
    async with _app_github(tmp_path, app_key) as gh:
        options = _app_options(tmp_path, app_key)
        async with BotHarness.start(tmp_path, gh=gh, agents=QUICK, schedule={"enabled": False}, **options) as h:
            gh.set_hook(h.url, SECRET)
            label = payloads.labeled(h.repo_payload, 1, "forge", "alice")
            now = time.time()
            for n in range(150):  # enough to need a second page
                gh.add_hook_delivery("issues", {"action": "edited"}, delivered_at=now - 3000 + n)
            missed = gh.add_hook_delivery("issues", label, status_code=0, delivered_at=now - 600)
            handled = gh.add_hook_delivery("issue_comment", {"action": "created"}, status_code=502)
            await asyncio.to_thread(
                h.daemon.bot.store.claim_delivery, handled.guid, event="issue_comment", action="created",
                repo=REPO, payload="{}", now=now,
            )  # fmt: skip
            old = gh.add_hook_delivery("issues", label, status_code=0, delivered_at=now - 2 * 86400)
            retried = gh.add_hook_delivery("issues", {"action": "opened"}, status_code=503, delivered_at=now - 900)
            gh.add_hook_delivery("issues", {"action": "opened"}, guid=retried.guid, redelivery=True)  # 200 later

            dry = await _jobs(h).run("deliveries", dry_run=True)
            assert isinstance(dry, RedeliveryReport)
            assert dry.missed == (missed.guid,) and dry.listed == 154 and dry.redelivered == 0
            assert not gh.requests_to("POST", "/attempts")
            assert len(gh.requests_to("GET", "/app/hook/deliveries")) == 2  # two pages, newest first: then stop
            assert old.guid not in dry.missed and handled.guid not in dry.missed

            report = await _jobs(h).run("deliveries", dry_run=False)
            assert isinstance(report, RedeliveryReport) and report.redelivered == 1
            await gh.settle_hooks()
            assert gh.hook_deliveries[-1].guid == missed.guid and gh.hook_deliveries[-1].status_code == 202
            await h.until_idle()
            assert len(await asyncio.to_thread(h.daemon.store.list_tasks)) == 1  # the label was acted on
            assert f"app: redeliver issues {missed.guid}" in gh.actions

            again = await _jobs(h).run("deliveries", dry_run=False)
            assert isinstance(again, RedeliveryReport) and again.missed == () and again.redelivered == 0
            assert len(gh.requests_to("POST", r"/app/hook/deliveries/\d+/attempts")) == 1
            assert all(r["auth"] == "forgebot[app]" for r in gh.requests_to("GET", "/app/hook/deliveries"))


async def test_the_sweep_runs_at_start_and_after_a_github_5xx_the_next_run_redelivers(
    tmp_path: Path, app_key: tuple[str, str]
) -> None:
    async with _app_github(tmp_path, app_key) as gh:
        missed = gh.add_hook_delivery("ping", {"zen": "Keep it logically awesome."}, status_code=0)
        gh.fail("GET", "/app/hook/deliveries", 503, times=4)  # every retry of the client's first run
        schedule = {"deliveries_interval": 3600, "cleanup_interval": 3600, "reaper_interval": 3600}
        with structlog.testing.capture_logs() as logs:
            async with BotHarness.start(tmp_path, gh=gh, schedule=schedule, **_app_options(tmp_path, app_key)) as h:
                # Deliveries missed while forgebot was down are swept right after it starts.
                await h.until(lambda: h.daemon.scheduler is not None and h.daemon.scheduler.runs.get("deliveries") == 1)
                assert not gh.requests_to("POST", "/attempts")
                report = await _jobs(h).run("deliveries", dry_run=False)
                assert isinstance(report, RedeliveryReport) and report.missed == (missed.guid,)
                assert report.redelivered == 1 and len(gh.requests_to("POST", "/attempts")) == 1
                await gh.settle_hooks()  # no hook URL: this redelivery failed too (forgebot still unreachable)
                assert gh.hook_deliveries[-1].redelivery and gh.hook_deliveries[-1].status_code == 0
                again = await _jobs(h).run("deliveries", dry_run=False)
                assert isinstance(again, RedeliveryReport) and again.missed == ()  # asked once: not again
                assert len(gh.requests_to("POST", "/attempts")) == 1
        assert [e["status"] for e in logs if e["event"] == "job_failed"] == [503]
        assert [e["redelivered"] for e in logs if e["event"] == "deliveries_swept"] == [1, 0]


async def test_with_a_token_the_delivery_sweep_is_not_scheduled(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with BotHarness.start(tmp_path, schedule={"reaper_interval": 3600}) as h:
            scheduler = h.daemon.scheduler
            assert scheduler is not None and scheduler._scheduler is not None
            jobs = {job.id: job for job in scheduler._scheduler.get_jobs()}
            assert sorted(jobs) == ["cleanup", "reaper"]
            assert all(j.max_instances == 1 and j.coalesce and j.misfire_grace_time == 300 for j in jobs.values())
            with pytest.raises(EngineError, match="GitHub App"):
                await _jobs(h).run("deliveries", dry_run=True)
            with pytest.raises(GitHubError, match="GitHub App"):
                await h.daemon.github.hook_deliveries(0.0)
    [why] = [e for e in logs if e["event"] == "job_not_scheduled"]
    assert why["job"] == "deliveries" and "GitHub App" in why["reason"]
    assert not h.gh.requests_to("GET", "/app/hook/deliveries")


# ---- the scheduler itself


async def test_the_scheduler_fires_jobs_on_their_interval_and_stops_cleanly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    engine = Engine(store, Workspaces(), settings=EngineSettings(kill_grace=0.2), environ={"PATH": os.environ["PATH"]})
    await engine.start()
    profiles = [agent("ok", "write", "f", "x")]
    finished = await engine.submit(title="Done", description="", repo=str(repo), profiles=profiles)
    (done,) = await asyncio.wait_for(engine.wait_task(finished.id), 30)
    stuck_task = await engine.submit(title="S", description="", repo=str(repo), profiles=[agent("s")], start=False)
    (stuck,) = await engine.attempts(stuck_task.id)
    child = subprocess.Popen(["true"])
    child.wait()
    gone = f"{socket.gethostname()}:{child.pid}"  # the forgebot process that ran it is gone
    await asyncio.to_thread(store.transition, stuck.id, S.PREPARING, started_at=time.time(), owner=gone)

    baseline = asyncio.all_tasks()
    schedule = Schedule(cleanup_interval=0.2, reaper_interval=0.2, worktree_ttl=0.01, misfire_grace=1)
    scheduler = Scheduler(Jobs(engine, schedule), schedule, ("cleanup", "reaper"))
    try:
        scheduler.start()
        deadline = time.monotonic() + 20
        while Path(done.worktree).exists() or (await engine.attempt(stuck.id)).status is not S.INTERRUPTED:
            assert time.monotonic() < deadline, f"jobs did not fire: {scheduler.runs}"
            await asyncio.sleep(0.05)
        await scheduler.stop()
        runs = dict(scheduler.runs)
        assert runs["cleanup"] >= 1 and runs["reaper"] >= 1
        await asyncio.sleep(0.5)
        assert scheduler.runs == runs  # stopped: nothing fires any more
        assert asyncio.all_tasks() - baseline == set()  # nothing leaked
    finally:
        await scheduler.stop()
        await engine.shutdown(grace=0)
        store.close()


# ---- configuration


def test_the_schedule_section_parses_durations_and_names_bad_keys(tmp_path: Path) -> None:
    schedule = {"cleanup_interval": "2h", "worktree_ttl": "1h30m", "dry_run": True}
    settings = Settings.model_validate({"schedule": schedule})
    assert (settings.schedule.cleanup_interval, settings.schedule.worktree_ttl) == (7200.0, 5400.0)
    assert settings.schedule.dry_run and settings.schedule.reaper_interval == 60.0
    assert Settings().schedule.worktree_ttl == 86400.0 and Settings().schedule.deliveries_lookback == 86400.0
    path = tmp_path / "forgebot.yml"
    path.write_text("schedule:\n  reaper_interval: soon\n  cleanup_every: 1h\n")
    with pytest.raises(ConfigError) as error:
        load_settings(str(path), {})
    text = str(error.value)
    assert "schedule.reaper_interval" in text and "not a duration" in text and "schedule.cleanup_every" in text
    env = load_settings(None, {"FORGEBOT_SCHEDULE__DRY_RUN": "true", "FORGEBOT_SCHEDULE__WORKTREE_TTL": "3h"})
    assert env.schedule.dry_run and env.schedule.worktree_ttl == 10800.0


def test_jobs_run_uses_the_daemons_store_and_github_from_the_server_config(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    config = tmp_path / "server.yml"
    config.write_text(yaml.safe_dump(daemon_config(fake_github, tmp_path / "data")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEBOT_")}

    def jobs(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "forgebot.cli", "--config", str(config), "jobs", "run", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)

    dry = jobs("cleanup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would remove 0 worktree(s)" in dry.stdout and (tmp_path / "data" / "forgebot.db").exists()
    reaper = jobs("reaper")
    assert reaper.returncode == 0 and "Checked 0 active attempt(s)" in reaper.stdout
    refused = jobs("deliveries")
    assert refused.returncode == 1 and "GitHub App" in refused.stderr and "Traceback" not in refused.stderr
    unknown = jobs("everything")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    assert fake_github.token not in dry.stdout + dry.stderr + refused.stderr

"""The daemon killed mid-task (SIGKILL to a real `forgebot serve`) and started again on the same data: no
duplicate comment or PR, the interrupted attempts are reported in the progress comment and can be retried."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from forgebot.core.models import AttemptStatus, Strategy
from forgebot.engine.processes import pid_alive
from forgebot.store import open_store
from tests import payloads
from tests.bot_harness import REPO, SECRET, BotHarness, bare_remote, daemon_config, fake_agent, seed
from tests.fake_github import DEFAULT_LOGIN, FakeGitHub
from tests.support import agent, make_repo

S = AttemptStatus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered")
            await asyncio.sleep(0.1)


async def _post(url: str, event: str, payload: dict[str, object], delivery: str) -> int:
    body, signature = payloads.signed(payload, SECRET)
    headers = payloads.headers(event, delivery, signature)
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as answer:
        return answer.status


def _attempts(data: Path) -> list[tuple[str, S, int | None]]:
    store = open_store(f"sqlite:///{data / 'forgebot.db'}")
    try:
        return [(a.agent, a.status, a.pid) for a in store.list_attempts()]
    finally:
        store.close()


async def test_killed_daemon_restarts_without_duplicates(tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    data = tmp_path / "data"
    agents = {
        "claude": fake_agent("sleep", "60", "write", "slug.py", "x = 1"),
        "codex": fake_agent("sleep", "60", "write", "other.py", "y = 2"),
    }
    async with FakeGitHub() as gh:
        seed(gh, remote)
        config = daemon_config(gh, data, agents=agents, bot={"auto_pr": True})
        config["defaults"]["agents"] = ["claude", "codex"]
        (tmp_path / "forgebot.yml").write_text(yaml.safe_dump(config))
        port = _free_port()
        argv = [sys.executable, "-m", "forgebot.cli", "serve", "--config", str(tmp_path / "forgebot.yml")]
        with open(tmp_path / "serve.log", "w") as log:
            serve = subprocess.Popen([*argv, "--port", str(port)], stdout=log, stderr=log, start_new_session=True)
        try:
            await _wait_http(f"http://127.0.0.1:{port}/healthz")
            repo = payloads.repository(REPO, str(remote))
            label = payloads.labeled(repo, 1, "forge", "alice")
            assert await _post(f"http://127.0.0.1:{port}/webhook", "issues", label, "guid-1") == 202
            for _ in range(300):
                running = [a for a in await asyncio.to_thread(_attempts, data) if a[1] is S.RUNNING and a[2]]
                if len(running) == 2:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"attempts never ran: {_attempts(data)}")
            agent_pids = [pid for _, _, pid in running if pid]
            serve.send_signal(signal.SIGKILL)  # no shutdown code runs
            serve.wait(timeout=10)
        finally:
            if serve.poll() is None:
                serve.kill()
        assert all(pid_alive(pid) for pid in agent_pids)  # orphans, until the next start reaps them

        async with BotHarness.start(tmp_path, gh=gh, agents=agents, data_dir=data) as h:
            await h.until_idle()
            assert not any(pid_alive(pid) for pid in agent_pids)
            assert [(a, s) for a, s, _ in await asyncio.to_thread(_attempts, data)] == [
                ("claude", S.INTERRUPTED),
                ("codex", S.INTERRUPTED),
            ]
            [progress] = [c.body for c in gh.repos[REPO].comment_list(1) if c.user == DEFAULT_LOGIN]
            assert progress.count("interrupted") >= 2
            # The GitHub redelivers the label (e.g. from the App's delivery log): still one task, one comment.
            assert await h.deliver("issues", label, delivery="guid-1") == 200
            await h.until_idle()
            assert len(await asyncio.to_thread(h.daemon.store.list_tasks)) == 1
            assert [n for n, i in gh.repos[REPO].issues.items() if i.pull] == []
            assert sum(1 for c in gh.repos[REPO].comment_list(1) if c.user == DEFAULT_LOGIN) == 1


async def test_a_task_never_linked_to_its_issue_is_cancelled_at_start(tmp_path: Path) -> None:
    """A daemon stopped between creating a GitHub task (held, in memory only) and linking it to its issue: on
    the next start its attempts would run unseen, so they are cancelled and say why."""
    data = tmp_path / "data"
    data.mkdir()
    store = open_store(f"sqlite:///{data / 'forgebot.db'}")
    try:
        task = store.create_task(title="Add a slugify helper", description="", repo=str(make_repo(tmp_path / "r")),
                                 base_branch="main", base_sha="0" * 40, strategy=Strategy.PARALLEL,
                                 quality_threshold=0.8, checks=(), created_at=1.0, source="github",
                                 external_ref=f"{REPO}#1")  # fmt: skip
        store.add_attempt(task_id=task.id, profile=agent("claude", "write", "x.py", "x = 1"), created_at=1.0,
                          worktree_root=str(tmp_path / "wt"))  # fmt: skip
    finally:
        store.close()
    async with BotHarness.start(tmp_path, data_dir=data) as h:
        await h.until_idle()
        [attempt] = await h.daemon.engine.attempts(task.id)
        assert attempt.status is S.CANCELLED and attempt.started_at is None
        assert attempt.error is not None and "never shown there" in attempt.error
        assert h.gh.actions == []

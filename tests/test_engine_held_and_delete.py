"""Engine operations the REST API needs: a task submitted with start=False waits for serve() even in a daemon
(serve_all) engine, and delete_task removes a finished task's worktrees, branches and records."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from forgebot.core.models import AttemptStatus
from forgebot.engine.engine import Engine, EngineError
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.store import NotFound, open_store
from tests.support import agent, git, make_repo

S = AttemptStatus


def daemon_engine(tmp_path: Path) -> Engine:
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'forgebot.db'}")
    settings = EngineSettings(kill_grace=0.5, cancel_poll=0.1)
    return Engine(store, Workspaces(), settings=settings, environ={"PATH": os.environ["PATH"]}, serve_all=True)


async def test_a_held_task_waits_for_serve_in_a_serve_all_engine(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    engine = daemon_engine(tmp_path)
    await engine.start()
    try:
        task = await engine.submit(
            title="Later", description="", repo=str(repo), profiles=[agent("a", "write", "a.txt", "x")], start=False
        )
        await asyncio.sleep(0.5)  # several poll rounds of the engine
        assert [a.status for a in await engine.attempts(task.id)] == [S.QUEUED]
        await engine.serve(task.id)
        (done,) = await asyncio.wait_for(engine.wait_task(task.id), 30)
        assert done.status is S.SUCCEEDED
    finally:
        await engine.shutdown(grace=0)
        engine.store.close()


async def test_delete_task_refuses_while_attempts_are_unfinished_then_removes_everything(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    engine = daemon_engine(tmp_path)
    await engine.start()
    try:
        task = await engine.submit(
            title="Gone", description="", repo=str(repo), profiles=[agent("a", "write", "a.txt", "x")], start=False
        )
        with pytest.raises(EngineError, match=r"unfinished attempts: 1 \(queued\); cancel it first"):
            await engine.delete_task(task.id)
        await engine.serve(task.id)
        (done,) = await asyncio.wait_for(engine.wait_task(task.id), 30)
        assert os.path.isdir(done.worktree) and git(repo, "branch", "--list", "forge/*") != ""
        for _ in range(300):  # the runner announces the outcome just after the attempt is stored finished
            if task.id in engine._finished_as:
                break
            await asyncio.sleep(0.01)
        assert task.id in engine._finished_as
        deleted = await engine.delete_task(task.id)
        assert [a.id for a in deleted] == [done.id]
        assert task.id not in engine._finished_as and task.id not in engine._tasks  # nothing held for it
        assert not os.path.exists(done.worktree)
        assert git(repo, "branch", "--list", "forge/*") == ""
        with pytest.raises(NotFound):
            engine.store.get_task(task.id)
        with pytest.raises(EngineError, match="not found"):
            await engine.delete_task(task.id)
    finally:
        await engine.shutdown(grace=0)
        engine.store.close()

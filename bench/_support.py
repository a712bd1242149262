"""Shared setup for the benchmarks: a real repository, an engine on a SQLite store, sleep-and-write agents."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from forgebot.core.models import AgentProfile
from forgebot.engine.engine import Engine
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.store import open_store

SLEEP_AND_WRITE = "import sys, time; time.sleep(float(sys.argv[1])); open(sys.argv[2], 'w').write('done\\n')"


def make_repo(files: int = 3) -> str:
    root = tempfile.mkdtemp(prefix="forgebot-bench-")
    repo = os.path.join(root, "repo")
    os.makedirs(repo)
    for i in range(files):
        folder = os.path.join(repo, f"pkg{i // 100}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"mod{i}.py"), "w", encoding="utf-8") as handle:
            handle.write(f"VALUE_{i} = {i}\n")
    git = ["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    return repo


def sleeper(name: str, seconds: float) -> AgentProfile:
    return AgentProfile(
        name=name,
        executor="command",
        command=(sys.executable, "-c", SLEEP_AND_WRITE, str(seconds), f"{name}.txt"),
    )


def make_engine(repo: str, **limits: int) -> Engine:
    store = open_store(
        "sqlite:///" + os.path.join(os.path.dirname(repo), f"state-{len(os.listdir(os.path.dirname(repo)))}.db")
    )
    return Engine(store, Workspaces(), settings=EngineSettings(**limits), environ={"PATH": os.environ["PATH"]})


def quiet_logs() -> None:
    from forgebot.logs import configure_logging

    configure_logging("warning")

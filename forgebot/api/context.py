"""What the API's handlers share: the engine, the tokens, the server settings and how a repository's own
settings (its agents, checks and defaults) are found."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from forgebot.config import REPO_CONFIG_PATH, Settings, load_repo_config, merge, read_repo_file
from forgebot.core.models import Task
from forgebot.engine.engine import Engine
from forgebot.store import Store
from forgebot.store.bot import BotStore
from forgebot.store.tokens import TokenStore


def worktree_settings(settings: Settings) -> Callable[[str], Settings]:
    """The server settings merged with `<repo>/.github/forge.yml` from the repository's work tree, within the
    server's policy. Blocking (reads a file). A symbolic link, or a file that cannot be read, is a ConfigError."""

    def resolve(repo: str) -> Settings:
        path = Path(repo) / REPO_CONFIG_PATH
        if not path.is_file() and not path.is_symlink():
            return settings
        return merge(settings, load_repo_config(read_repo_file(repo, path), str(path)))

    return resolve


@dataclass
class ApiContext:
    engine: Engine
    tokens: TokenStore
    settings: Settings
    repo_settings: Callable[[str], Settings] | None = None  # default: worktree_settings(settings)
    secrets: tuple[str, ...] = ()  # masked in all agent-written text the API sends (the GitHub token, webhook secrets)
    heartbeat: float = 15.0  # seconds between keep-alive comments on the event stream
    write_timeout: float = 30.0  # seconds one event stream write may wait on a client that stopped reading
    log_tail_lines: int = 40
    clock: Callable[[], float] = time.time
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # The dashboard's additions: issue/PR links of GitHub tasks, and read access without a token when configured.
    bot_store: BotStore | None = None
    web_url: str = "https://github.com"
    public_reads: bool = False

    @property
    def store(self) -> Store:
        return self.engine.store

    def settings_for(self, repo: str) -> Settings:
        return (self.repo_settings or worktree_settings(self.settings))(repo)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


API_CONTEXT = web.AppKey("forgebot_api_context", ApiContext)


def repo_names(task: Task) -> tuple[str, str | None]:
    """The names a task's repository goes by for a token's globs: its path, and owner/name for GitHub tasks."""
    full_name = task.external_ref.partition("#")[0] if task.external_ref and task.source == "github" else None
    return task.repo, full_name

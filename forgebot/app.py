"""Composition root for local mode: settings → store, workspaces, engine for one repository."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from forgebot.config import Settings, load_for_repo, to_checks, to_profiles
from forgebot.core.models import AgentProfile, CheckSpec
from forgebot.engine.engine import Engine
from forgebot.engine.housekeeping import EngineError
from forgebot.engine.layout import Layout
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.store import SqlStore, open_store


@dataclass
class LocalApp:
    repo: str
    settings: Settings
    store: SqlStore
    engine: Engine
    profiles: dict[str, AgentProfile]

    def pick_profiles(self, names: Sequence[str]) -> list[AgentProfile]:
        names = list(names) or list(self.settings.defaults.agents)
        if not names:
            raise EngineError("no agents given: pass --agent NAME or set defaults.agents in the config")
        unknown = [name for name in names if name not in self.profiles]
        if unknown:
            configured = ", ".join(sorted(self.profiles)) or "none"
            raise EngineError(f"unknown agent {unknown[0]!r} (configured: {configured})")
        return [self.profiles[name] for name in names]

    @property
    def checks(self) -> tuple[CheckSpec, ...]:
        return to_checks(self.settings)

    def close(self) -> None:
        self.store.close()


def engine_settings(settings: Settings) -> EngineSettings:
    limits = settings.limits
    return EngineSettings(
        max_parallel=limits.max_parallel,
        per_repo=limits.per_repo,
        per_agent=limits.per_agent,
        attempt_timeout=limits.attempt_timeout,
        log_cap_bytes=limits.log_cap_bytes,
        max_output_bytes=limits.max_output_bytes,
        agents_path=tuple(settings.agents_path),
    )


def store_url(settings: Settings, repo: str) -> str:
    if settings.store_url:
        return settings.store_url
    folder = settings.data_dir or os.path.join(repo, ".forge")
    return "sqlite:///" + os.path.abspath(os.path.join(folder, "forgebot.db"))


def open_local(repo_dir: str, config_path: str | None, environ: Mapping[str, str]) -> LocalApp:
    workspaces = Workspaces()
    repo = workspaces.repo_root(repo_dir)
    workspaces.ensure_excluded(repo, "/.forge/")
    settings = load_for_repo(repo, config_path, environ)
    store = open_store(store_url(settings, repo))
    engine = Engine(store, workspaces, settings=engine_settings(settings), layout=Layout(), environ=environ)
    return LocalApp(repo, settings, store, engine, to_profiles(settings))

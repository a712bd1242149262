"""Turns an adapter's invocation into a process spec: files in the private HOME, environment, PATH, checks
that the CLI and its credentials are there. Blocking (it writes files); the runner calls it in a thread."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from forgebot.agents.base import Adapter, AgentUnavailable, RunRequest
from forgebot.config import ConfigError, resolve_env
from forgebot.engine.processes import ProcessSpec, scrubbed_env

ARTIFACT_LIMIT = 1_000_000  # bytes read back from one artifact file


@dataclass(frozen=True)
class Launch:
    spec: ProcessSpec
    artifacts: Mapping[str, str]


def build_launch(
    adapter: Adapter,
    request: RunRequest,
    *,
    environ: Mapping[str, str],
    agents_path: Sequence[str],
    log_path: str,
    timeout: float,
    log_cap_bytes: int,
    max_output_bytes: int,
    kill_grace: float,
) -> Launch:
    profile = request.profile
    os.makedirs(request.home, exist_ok=True)
    _write(request.prompt_file, request.prompt)
    with contextlib.suppress(FileNotFoundError):
        os.remove(log_path)  # a retry or follow-up starts a fresh log
    try:
        allowed = resolve_env(profile.env, environ)
    except ConfigError as error:
        raise AgentUnavailable(
            f"agent {profile.name}: {error}; export it before starting forgebot or set agents.{profile.name}.env"
        ) from None
    if adapter.credential_env and not any(allowed.get(name) for name in adapter.credential_env):
        names = " or ".join(adapter.credential_env)
        raise AgentUnavailable(f"agent {profile.name}: no credentials: set {names} in agents.{profile.name}.env")
    invocation = adapter.invocation(request)
    env = scrubbed_env(request.home, {**allowed, **invocation.env})
    env["PATH"] = os.pathsep.join([*agents_path, env["PATH"]])
    if adapter.binary and shutil.which(adapter.binary, path=env["PATH"]) is None:
        raise AgentUnavailable(f"agent {profile.name}: `{adapter.binary}` is not installed: {adapter.install_hint}")
    for path in invocation.artifacts.values():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # a follow-up must not read the previous run's usage again
    for path, text in invocation.files.items():
        if not os.path.abspath(path).startswith(os.path.abspath(request.home) + os.sep):
            raise AgentUnavailable(f"agent {profile.name}: adapter wanted to write {path} outside its HOME")
        _write(path, text)
    spec = ProcessSpec(
        argv=invocation.argv,
        cwd=request.workdir,
        env=env,
        timeout=timeout,
        log_path=log_path,
        log_cap_bytes=log_cap_bytes,
        stdin_data=invocation.stdin,
        kill_grace=kill_grace,
        output_limit_bytes=max_output_bytes,
    )
    return Launch(spec, invocation.artifacts)


def read_artifacts(paths: Mapping[str, str]) -> dict[str, str]:
    """The texts of the artifact files that exist (the tail end of a huge one)."""
    texts = {}
    for name, path in paths.items():
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(path) - ARTIFACT_LIMIT))
                texts[name] = handle.read().decode("utf-8", errors="replace")
        except OSError:
            continue
    return texts


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)

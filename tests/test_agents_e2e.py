"""The real agent CLIs, at pinned versions, driven through the engine against the scripted fake LLM server.

The CLIs come from scripts/install-agents.sh (a cache folder outside the clone; .ci/run installs them).
Run only the fast suite with `pytest -m "not agents_e2e"`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from forgebot.agents import adapter_for
from forgebot.agents.builtin import BUILTIN_PROFILES
from forgebot.cli_agents import readiness
from forgebot.core.models import AgentProfile, AttemptStatus
from forgebot.engine.engine import Engine
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.store import open_store
from tests.fake_llm import ThreadedFakeLLM, run_in_thread
from tests.support import git, make_repo

pytestmark = pytest.mark.agents_e2e

S = AttemptStatus
AGENTS_DIR = Path(os.environ.get("FORGEBOT_AGENTS_DIR") or Path.home() / ".cache" / "forgebot" / "agents")
AGENTS_PATH = (str(AGENTS_DIR / "npm" / "node_modules" / ".bin"), str(AGENTS_DIR / "bin"))
OFFLINE_CLIS = ("claude", "codex", "gemini", "qwen", "opencode", "copilot", "aider")
BINARIES = {
    "claude": "claude",
    "codex": "codex",
    "gemini": "gemini",
    "qwen": "qwen",
    "opencode": "opencode",
    "copilot": "copilot",
    "aider": "aider",
}
OUTPUT_TOKENS = 30  # what the fake server bills per reply (its default)
WRITE_HELLO = "@@fake-write hello.txt\nHello from the fake LLM\n@@end"


def _require_clis() -> None:
    path = os.pathsep.join(AGENTS_PATH)
    missing = [name for name in BINARIES.values() if shutil.which(name, path=path) is None]
    if missing:
        message = f"agent CLIs not installed in {AGENTS_DIR} ({', '.join(missing)}): run scripts/install-agents.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def llm() -> Iterator[ThreadedFakeLLM]:
    _require_clis()
    server = run_in_thread()
    try:
        yield server
    finally:
        server.stop()


def profile_for(executor: str, url: str, name: str | None = None) -> AgentProfile:
    """How each CLI is pointed at the fake server: its own base URL convention, a fake key, a model."""
    openai = f"{url}/v1"
    table: dict[str, tuple[str, str, dict[str, str]]] = {
        "claude": ("claude-sonnet-4-5", url, {"ANTHROPIC_API_KEY": "sk-ant-fake"}),
        "codex": ("fake-model", openai, {"OPENAI_API_KEY": "sk-fake"}),
        "gemini": ("gemini-2.5-flash", url, {"GEMINI_API_KEY": "fake-key"}),
        "qwen": ("fake-model", openai, {"OPENAI_API_KEY": "sk-fake"}),
        "opencode": ("fake-model", openai, {"OPENAI_API_KEY": "sk-fake"}),
        "copilot": ("fake-model", openai, {"COPILOT_PROVIDER_API_KEY": "sk-fake"}),
        "aider": ("openai/fake-model", openai, {"OPENAI_API_KEY": "sk-fake"}),
    }
    model, base_url, env = table[executor]
    return AgentProfile(name=name or executor, executor=executor, model=model, base_url=base_url, env=env)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'forgebot.db'}")
    settings = EngineSettings(attempt_timeout=90, kill_grace=1.0, cancel_poll=0.2, agents_path=AGENTS_PATH)
    engine = Engine(store, Workspaces(), settings=settings, environ={"PATH": os.environ["PATH"]})
    await engine.start()
    yield engine
    await engine.shutdown(grace=0)
    store.close()


async def run_one(engine: Engine, repo: Path, profile: AgentProfile, description: str) -> object:
    task = await engine.submit(title="Say hello", description=description, repo=str(repo), profiles=[profile])
    (attempt,) = await asyncio.wait_for(engine.wait_task(task.id), 240)
    return attempt


def _log_tail(attempt: object) -> str:
    path = getattr(attempt, "log_path", None)
    return Path(path).read_text(errors="replace")[-3000:] if path and os.path.exists(path) else "(no log)"


@pytest.mark.parametrize("executor", OFFLINE_CLIS)
async def test_agent_edits_a_file(executor: str, llm: ThreadedFakeLLM, engine: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    attempt = await run_one(engine, repo, profile_for(executor, llm.url), WRITE_HELLO)
    assert attempt.status is S.SUCCEEDED, f"{attempt.error}\n{_log_tail(attempt)}"  # type: ignore[attr-defined]
    assert git(repo, "show", f"{attempt.branch}:hello.txt") == "Hello from the fake LLM"  # type: ignore[attr-defined]
    assert attempt.diff.files == 1  # type: ignore[attr-defined]  # nothing the CLI leaves behind is committed
    usage = attempt.usage  # type: ignore[attr-defined]
    assert usage.tokens_in and usage.tokens_out, usage
    assert usage.cost_usd is None or usage.cost_usd > 0


@pytest.mark.parametrize("executor", OFFLINE_CLIS)
async def test_api_error_fails_the_attempt(executor: str, llm: ThreadedFakeLLM, engine: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    attempt = await run_one(engine, repo, profile_for(executor, llm.url), "@@fake-error 400\n" + WRITE_HELLO)
    assert attempt.status is S.FAILED, _log_tail(attempt)  # type: ignore[attr-defined]
    # Every request failed, so the tree is unchanged: a parser blind to the error would still fail the attempt,
    # but as "no changes". The error must be the one the CLI read from the API: the fake's status and message.
    error = attempt.error or ""  # type: ignore[attr-defined]
    assert error.startswith("agent reported an error: "), f"{error}\n{_log_tail(attempt)}"
    assert "injected HTTP 400" in error, f"{error}\n{_log_tail(attempt)}"


# How each CLI words a model API that keeps answering HTTP 500, once its retries are spent. Codex replaces the
# server's message by its own for every 5xx.
SERVER_ERROR_TEXT = {executor: "injected HTTP 500" for executor in OFFLINE_CLIS} | {"codex": "experiencing high demand"}
SERVER_ERROR_TIMEOUT = 240


@pytest.fixture(scope="module")
def server_error_attempts(llm: ThreadedFakeLLM, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every offline CLI against a model API that answers every request with HTTP 500, side by side in one task:
    several of them back off for about a minute (a retry count fixed in their code), so one run serves all."""
    root = tmp_path_factory.mktemp("server-error")
    repo = make_repo(root / "repo")
    profiles = [profile_for(executor, llm.url) for executor in OFFLINE_CLIS]
    parallel = len(profiles)

    async def run_all() -> dict[str, Any]:
        store = open_store(f"sqlite:///{root / 'forgebot.db'}")
        settings = EngineSettings(
            max_parallel=parallel,
            per_repo=parallel,
            attempt_timeout=SERVER_ERROR_TIMEOUT,
            kill_grace=1.0,
            agents_path=AGENTS_PATH,
        )
        engine = Engine(store, Workspaces(), settings=settings, environ={"PATH": os.environ["PATH"]})
        await engine.start()
        try:
            description = "@@fake-error 500\n" + WRITE_HELLO
            task = await engine.submit(title="Say hello", description=description, repo=str(repo), profiles=profiles)
            attempts = await asyncio.wait_for(engine.wait_task(task.id), SERVER_ERROR_TIMEOUT + 60)
        finally:
            await engine.shutdown(grace=0)
            store.close()
        return {attempt.profile.executor: attempt for attempt in attempts}

    return asyncio.run(run_all())


@pytest.mark.timeout(SERVER_ERROR_TIMEOUT + 120)
@pytest.mark.parametrize("executor", OFFLINE_CLIS)
def test_persistent_server_error_fails_well_before_the_timeout(
    executor: str, server_error_attempts: dict[str, Any]
) -> None:
    """The retries inside each CLI are bounded (adapters set the knobs each CLI has), so a dead API fails the
    attempt with the API's error instead of running into forgebot's timeout."""
    attempt = server_error_attempts[executor]
    assert attempt.status is S.FAILED, f"{attempt.error}\n{_log_tail(attempt)}"
    assert attempt.error.startswith("agent reported an error: "), f"{attempt.error}\n{_log_tail(attempt)}"
    assert SERVER_ERROR_TEXT[executor] in attempt.error, f"{attempt.error}\n{_log_tail(attempt)}"
    assert attempt.elapsed(0) < SERVER_ERROR_TIMEOUT / 2, attempt.elapsed(0)


async def test_codex_without_base_url_still_bounds_its_retries(
    llm: ThreadedFakeLLM, engine: Engine, tmp_path: Path
) -> None:
    """Without base_url, Codex runs through forgebot's provider at OpenAI's URL (its built-in provider takes no
    retry bound). Offline, the test moves only that provider's URL to the fake, through the profile's args."""
    repo = make_repo(tmp_path / "repo")
    profile = profile_for("codex", llm.url)
    moved = f'model_providers.forgebot.base_url="{llm.url}/v1"'
    profile = AgentProfile(name="codex", executor="codex", model=profile.model, env=profile.env, args=("-c", moved))
    before = len(llm.requests)
    attempt = await run_one(engine, repo, profile, "@@fake-error 500\n" + WRITE_HELLO)
    assert attempt.status is S.FAILED, _log_tail(attempt)  # type: ignore[attr-defined]
    assert SERVER_ERROR_TEXT["codex"] in (attempt.error or ""), _log_tail(attempt)  # type: ignore[attr-defined]
    # 2 stream retries of a request sent with 2 retries: 9 at most (Codex's own defaults would make it 30).
    assert 3 <= len(llm.requests) - before <= 9, len(llm.requests) - before


@pytest.mark.parametrize("executor", OFFLINE_CLIS)
async def test_hung_model_times_out(executor: str, llm: ThreadedFakeLLM, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    settings = EngineSettings(attempt_timeout=6, kill_grace=1.0, agents_path=AGENTS_PATH)
    engine = Engine(store, Workspaces(), settings=settings, environ={"PATH": os.environ["PATH"]})
    await engine.start()
    try:
        attempt = await run_one(engine, repo, profile_for(executor, llm.url), "@@fake-sleep 60\n" + WRITE_HELLO)
    finally:
        await engine.shutdown(grace=0)
        store.close()
    assert attempt.status is S.TIMED_OUT, _log_tail(attempt)  # type: ignore[attr-defined]
    assert attempt.error == "timed out after 6s"  # type: ignore[attr-defined]


@pytest.mark.parametrize("executor", OFFLINE_CLIS)
async def test_followup_resumes_the_session(
    executor: str, llm: ThreadedFakeLLM, engine: Engine, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    requests_before = len(llm.requests)
    first = await run_one(engine, repo, profile_for(executor, llm.url), WRITE_HELLO)
    assert first.status is S.SUCCEEDED, _log_tail(first)  # type: ignore[attr-defined]
    await engine.followup(first.id, "@@fake-write second.txt\nAnd a second file\n@@end")  # type: ignore[attr-defined]
    (second,) = await asyncio.wait_for(engine.wait_task(first.task_id), 240)  # type: ignore[attr-defined]
    assert second.status is S.SUCCEEDED, f"{second.error}\n{_log_tail(second)}"
    assert git(repo, "show", f"{second.branch}:second.txt") == "And a second file"
    assert git(repo, "show", f"{second.branch}:hello.txt") == "Hello from the fake LLM"
    assert second.usage.tokens_in and second.usage.tokens_in > (first.usage.tokens_in or 0)  # type: ignore[attr-defined]
    # Both runs together, never more than the server billed: a CLI whose usage covers the whole session is not
    # counted twice.
    billed_out = OUTPUT_TOKENS * (len(llm.requests) - requests_before)
    assert second.usage.tokens_out and second.usage.tokens_out <= billed_out, (second.usage, billed_out)


@pytest.mark.parametrize("executor", OFFLINE_CLIS)
async def test_agents_list_shows_the_pinned_version(executor: str, llm: ThreadedFakeLLM) -> None:
    """`forgebot agents list` runs `CLI --version`; the version it shows is the one the install hint pins
    (which tests/test_agents_install_hints.py ties to scripts/install-agents.sh)."""
    adapter = adapter_for(executor)
    pinned = re.search(r"[@=](\d[\w.-]*)", adapter.install_hint)
    assert pinned, adapter.install_hint
    row = await readiness(BUILTIN_PROFILES[executor], list(AGENTS_PATH), {"PATH": os.environ["PATH"]})
    assert row.installed
    assert row.version == pinned[1], row.version


def test_three_agents_in_parallel_through_the_cli(llm: ThreadedFakeLLM, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    lines = ["agents:"]
    for executor in ("claude", "codex", "gemini"):
        profile = profile_for(executor, llm.url)
        env = ", ".join(f"{key}: {value}" for key, value in profile.env.items())
        # "fake-model" has no list price: give codex one, as a user would for a model the table lacks.
        price = ", price: {input_per_mtok: 1.25, output_per_mtok: 10}" if executor == "codex" else ""
        lines.append(f"  {executor}: {{model: {profile.model}, base_url: '{profile.base_url}', env: {{{env}}}{price}}}")
    lines.append(f"agents_path: [{', '.join(AGENTS_PATH)}]")
    config = tmp_path / "forgebot.yml"
    config.write_text("\n".join(lines) + "\n")
    command = [
        sys.executable,
        "-m",
        "forgebot.cli",
        "--repo",
        str(repo),
        "--config",
        str(config),
        "task",
        "create",
        "Say hello",
        "--description",
        WRITE_HELLO,
        "--agent",
        "claude",
        "--agent",
        "codex",
        "--agent",
        "gemini",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    branches = git(repo, "branch", "--list", "forge/*", "--format=%(refname:short)").split()
    assert sorted(branches) == ["forge/1-claude", "forge/1-codex", "forge/1-gemini"]
    out = done.stdout
    assert "attempt 1 claude: succeeded" in out and "attempt 2 codex: succeeded" in out
    assert "attempt 3 gemini: succeeded" in out
    assert "Comparison" in out and " wins: " in out
    for name in ("claude", "codex", "gemini"):
        row = next(line for line in out.splitlines() if f"│ {name} " in line and "forge/" in line)
        # Tokens reported per attempt: the fake bills OUTPUT_TOKENS per reply and a run takes one or more replies.
        tokens = re.search(r"│ (\d+)/(\d+) +│", row)
        assert tokens, row
        assert int(tokens[1]) > 0 and int(tokens[2]) > 0 and int(tokens[2]) % OUTPUT_TOKENS == 0, row
        assert "$0." in row, row  # a cost for each: the CLI's own figure or the model's list price

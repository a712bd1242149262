"""The command line against a running API server (`--server URL`), and `forgebot tokens`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api_support import ApiServer
from tests.support import git


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer.start(tmp_path) as server:
        yield server


async def forgebot(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FORGEBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "forgebot.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**base, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_task_commands_act_on_the_server(server: ApiServer) -> None:
    env = {"FORGEBOT_SERVER": server.url, "FORGEBOT_TOKEN": server.token("cli")}
    code, out, err = await forgebot(
        "--repo", str(server.repo), "task", "create", "Add things", "--agent", "fast", "--agent", "broken", env=env
    )
    assert code == 0, err
    assert "Task 1 created on main" in out and "fast wins:" in out
    assert "Total cost: $0.0001" in out
    code, out, _ = await forgebot("task", "list", env=env)
    assert code == 0 and "Add things" in out and "succeeded" in out
    code, out, _ = await forgebot("task", "status", "1", env=env)
    assert "forge/1-broken" in out and "failed" in out
    code, out, _ = await forgebot("task", "compare", "1", env=env)
    assert "1. fast (attempt 1)" in out
    code, out, _ = await forgebot("task", "fork", "1", "--agent", "slow", "--detach", env=env)
    assert code == 0 and "Attempt 3 (slow) added to task 1 on forge/1-slow" in out
    await server.until_idle(1)
    code, out, err = await forgebot("task", "retry", "1", "--attempt", "2", "--detach", env=env)
    assert code == 0 and "Attempt 2 (broken) queued again." in out, err
    await server.until_idle(1)
    code, out, err = await forgebot("task", "followup", "1", "--attempt", "3", "more please", "--detach", env=env)
    assert code == 0 and "Follow-up queued for attempt 3 (slow)" in out, err
    await server.until_idle(1)
    code, out, err = await forgebot("task", "merge", "1", "--attempt", "1", env=env)
    assert code == 0 and "Merged attempt 1 into main" in out, err
    assert git(server.repo, "show", "main:fast.txt") == "fast"
    code, out, err = await forgebot("attempts", "delete", "--status", "failed", env=env)
    assert code == 0 and "Deleted 1 attempt(s): #2 broken" in out, err
    code, out, err = await forgebot("worktree", "cleanup", "--dry-run", env=env)
    assert code == 0 and "Would remove 2 worktree(s)" in out, err
    code, out, err = await forgebot("task", "cancel", "1", env=env)
    assert code == 0 and "attempt 1 fast: succeeded" in out, err


async def test_remote_errors_are_one_line_and_exit_1(server: ApiServer) -> None:
    env = {"FORGEBOT_SERVER": server.url, "FORGEBOT_TOKEN": server.token("cli")}
    code, _, err = await forgebot("task", "status", "42", env=env)
    assert code == 1 and err.strip() == "forgebot: error: task 42 not found (HTTP 404, not_found)"
    code, _, err = await forgebot("--repo", str(server.repo), "task", "create", "x", "--agent", "ghost", env=env)
    assert code == 1 and "unknown agent 'ghost'" in err
    bad = server.root / "bad-token"
    bad.write_text("fgb_bad\nsecond line ignored\n")
    code, _, err = await forgebot("--token-file", str(bad), "--server", server.url, "task", "list")
    assert code == 1 and "unknown token (HTTP 401, unauthorized)" in err and "fgb_bad" not in err
    code, _, err = await forgebot("--server", server.url, "task", "list")
    assert code == 1 and "--server needs a token: pass --token-file PATH or set FORGEBOT_TOKEN" in err
    code, _, err = await forgebot("processes", "list", env=env)
    assert code == 1 and "`processes list` does not work with --server" in err


async def test_the_token_comes_from_a_file_never_from_argv(server: ApiServer) -> None:
    token_file = server.root / "token"
    token_file.write_text(server.token("cli") + "\n")
    token_file.chmod(0o600)
    remote = ("--server", server.url, "task", "list")
    code, out, err = await forgebot("--token-file", str(token_file), *remote)
    assert code == 0 and "No tasks yet." in out, err
    # the file wins over FORGEBOT_TOKEN
    code, out, err = await forgebot("--token-file", str(token_file), *remote, env={"FORGEBOT_TOKEN": "fgb_stale"})
    assert code == 0, err
    code, _, err = await forgebot("--token-file", str(server.root / "missing"), *remote)
    assert code == 1 and f"--token-file: cannot read {server.root / 'missing'}: No such file" in err
    (server.root / "empty").write_text("\n")
    code, _, err = await forgebot("--token-file", str(server.root / "empty"), *remote)
    assert code == 1 and "is empty (its first line must hold the token)" in err
    for argv in (("--token", "fgb_in-argv"), ("--token=fgb_in-argv",)):
        code, _, err = await forgebot(*argv, *remote)
        assert code == 2 and "--token is not accepted" in err and "fgb_in-argv" not in err, argv
    code, _, err = await forgebot("--tok", "fgb_in-argv", *remote)  # no abbreviation names the secret as a file
    assert code == 2 and "ambiguous option" in err and "fgb_in-argv" not in err


async def test_tokens_create_list_revoke(server: ApiServer) -> None:
    env = {"FORGEBOT_DATA_DIR": str(server.root / "data")}  # the store the server uses
    code, out, err = await forgebot("tokens", "create", "robot", "--repo", str(server.repo), env=env)
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("fgb_") and "is not shown again" in out
    async with server.session(secret) as http, http.get("/api/v1/tasks") as response:
        assert response.status == 200
    code, out, _ = await forgebot("tokens", "list", env=env)
    assert code == 0 and "robot" in out and "active" in out and secret not in out
    code, _, err = await forgebot("tokens", "create", "robot", env=env)
    assert code == 1 and "a token named 'robot' exists already" in err
    code, out, _ = await forgebot("tokens", "revoke", "robot", env=env)
    assert code == 0 and "revoked" in out
    async with server.session(secret) as http, http.get("/api/v1/tasks") as response:
        assert response.status == 401
    code, _, err = await forgebot("tokens", "revoke", "nobody", env=env)
    assert code == 1 and "no token named 'nobody'" in err
    assert secret not in (server.root / "data" / "forgebot.db").read_bytes().decode("latin-1")

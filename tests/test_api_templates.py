"""/templates on a real server: the config's and the repository's templates, and tasks made from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from forgebot.sdk import ForgeClient, NotFoundError
from tests.api_support import ApiServer, settings
from tests.support import git
from tests.test_api_tasks import call

FIX_BUG = """\
---
description: Fix a bug in one file
title: "Fix {{ file }}"
agents: [slow]
params:
  file: {description: the file to fix}
  style: {default: minimal}
---
Fix the bug in {{ file }}; keep the change {{ style }}.
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    config = settings(templates={"docs": {"prompt": "Document {{ topic }}.", "params": ["topic"]}})
    async with ApiServer.start(tmp_path, config) as server:
        folder = server.repo / ".github/forge/templates"
        folder.mkdir(parents=True)
        (folder / "fix-bug.md").write_text(FIX_BUG)
        git(server.repo, "add", "-A")
        git(server.repo, "commit", "-qm", "template")
        yield server


@pytest.fixture
async def http(server: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with server.session(server.token("test")) as session:
        yield session


async def test_list_shows_the_configs_and_the_repositorys_templates(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    listed = await call(http, "GET", "/templates", 200, params={"repo": str(server.repo)})
    by_name = {t["name"]: t for t in listed["templates"]}
    assert sorted(by_name) == ["docs", "fix-bug"]
    assert by_name["fix-bug"]["params"] == [
        {"name": "file", "required": True, "default": None, "description": "the file to fix"},
        {"name": "style", "required": False, "default": "minimal", "description": ""},
    ]
    assert by_name["fix-bug"]["source"].endswith(".github/forge/templates/fix-bug.md")


async def test_use_renders_the_prompt_and_runs_the_templates_agents(
    server: ApiServer, http: aiohttp.ClientSession
) -> None:
    body = {"repo": str(server.repo), "params": {"file": "app.py"}, "start": False}
    task = await call(http, "POST", "/templates/fix-bug/use", 201, json=body)
    assert task["title"] == "Fix app.py"
    assert task["description"] == "Fix the bug in app.py; keep the change minimal."
    assert [a["agent"] for a in task["attempts"]] == ["slow"]
    chosen = await call(
        http, "POST", "/templates/docs/use", 201, json={**body, "params": {"topic": "x"}, "agents": ["fast"]}
    )
    assert [a["agent"] for a in chosen["attempts"]] == ["fast"]


@pytest.mark.parametrize(
    ("name", "params", "status", "message"),
    [
        ("nope", {}, 404, "unknown template `nope` (available: docs, fix-bug)"),
        ("fix-bug", {}, 422, "file"),
        ("fix-bug", {"file": "a.py", "colour": "red"}, 422, "colour"),
    ],
)
async def test_bad_uses_say_why_and_create_nothing(
    server: ApiServer, http: aiohttp.ClientSession, name: str, params: dict[str, str], status: int, message: str
) -> None:
    failed = await call(
        http, "POST", f"/templates/{name}/use", status, json={"repo": str(server.repo), "params": params}
    )
    assert message in failed["error"]["message"]
    assert (await call(http, "GET", "/tasks", 200))["tasks"] == []


async def test_a_token_for_other_repositories_cannot_list_or_use_them(server: ApiServer) -> None:
    async with server.session(server.token("limited", repos=("/elsewhere/*",))) as http:
        await call(http, "GET", "/templates", 403, params={"repo": str(server.repo)})
        await call(http, "POST", "/templates/docs/use", 403, json={"repo": str(server.repo), "params": {"topic": "x"}})


async def test_the_sdk_lists_and_uses_templates(server: ApiServer) -> None:
    async with ForgeClient(server.url, server.token("sdk")) as forge:
        names = [t.name for t in await forge.templates.list(repo=str(server.repo))]
        assert names == ["docs", "fix-bug"]
        task = await forge.templates.use("fix-bug", repo=str(server.repo), params={"file": "app.py"})
        assert task.title == "Fix app.py" and [a.agent for a in task.attempts] == ["slow"]
        done = await forge.attempts.wait_for_completion(task_id=task.id, timeout=60)
        assert {a.status for a in done.attempts} == {"succeeded"}
        with pytest.raises(NotFoundError, match="unknown template"):
            await forge.templates.use("nope", repo=str(server.repo))

"""`forgebot serve` mounts the REST API: a GitHub task is visible to tokens whose globs name its owner/name."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from forgebot.api.tokens import hash_secret, new_secret
from tests import payloads
from tests.bot_harness import REPO, BotHarness


async def test_the_daemon_serves_the_api_with_github_tasks_matched_by_owner_and_name(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge:claude", "alice")) == 202
        await h.until_idle()
        tokens = h.daemon.store.token_store()
        secrets = {}
        for name, globs in (("team", ["acme/*"]), ("others", ["other/*"])):
            secrets[name] = new_secret()
            tokens.create(name=name, token_hash=hash_secret(secrets[name]), repos=globs, now=1.0)
        base = h.url.removesuffix("/webhook") + "/api/v1"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/openapi.json") as response:
                assert response.status == 200
            async with http.get(f"{base}/tasks/1", headers={"Authorization": f"Bearer {secrets['team']}"}) as answer:
                task = await answer.json()
                assert answer.status == 200 and task["external_ref"] == f"{REPO}#1" and task["source"] == "github"
                assert task["status"] == "succeeded"
            async with http.get(f"{base}/tasks/1", headers={"Authorization": f"Bearer {secrets['others']}"}) as answer:
                assert answer.status == 404
            async with http.get(f"{base}/tasks") as answer:
                assert answer.status == 401

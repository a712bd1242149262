"""forgebot.github.permissions against the HTTP fake of GitHub: cached levels that expire, refusal on any error
(fail closed), bots, and silence for the unauthorized when so configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forgebot.github.client import PyGithubClient
from forgebot.github.permissions import Permissions, is_bot
from tests import payloads
from tests.bot_harness import BotHarness
from tests.fake_github import FakeGitHub

REPO = "octo/demo"
PERMISSION = r"/collaborators/[^/]+/permission$"
COULD_NOT = "I could not check your permission on this repository just now; please try again later"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[tuple[FakeGitHub, PyGithubClient]]:
    async with FakeGitHub() as gh:
        gh.add_repo(REPO)
        gh.set_permission(REPO, "alice", "write")
        gh.set_permission(REPO, "mona", "maintain")
        gh.set_permission(REPO, "reader", "read")
        github = PyGithubClient(api_url=gh.url, token=gh.token, write_interval=0, backoff=0.01, max_attempts=2)
        yield gh, github
        await github.close()


async def test_levels_are_cached_until_they_expire(client: tuple[FakeGitHub, PyGithubClient]) -> None:
    gh, github = client
    clock = Clock()
    permissions = Permissions(github, ttl=60, clock=clock)
    assert await permissions.may_write(REPO, "alice") == (True, "")
    gh.set_permission(REPO, "alice", "read")  # demoted on GitHub
    clock.now += 59
    assert await permissions.may_write(REPO, "Alice") == (True, "")  # cached (logins are case-insensitive)
    assert len(gh.requests_to("GET", PERMISSION)) == 1
    clock.now += 2
    allowed, why = await permissions.may_write(REPO, "alice")
    assert (allowed, why) == (False, "only people with write access to this repository can run forgebot")
    assert len(gh.requests_to("GET", PERMISSION)) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_refuses_and_is_not_cached(client: tuple[FakeGitHub, PyGithubClient], status: int) -> None:
    gh, github = client
    permissions = Permissions(github, ttl=60, clock=Clock())
    gh.fail("GET", PERMISSION, status, times=2)  # both of the client's tries
    assert await permissions.may_write(REPO, "alice") == (False, COULD_NOT)
    assert await permissions.may_write(REPO, "alice") == (True, "")  # asked again, not a cached refusal


async def test_a_404_refuses(client: tuple[FakeGitHub, PyGithubClient]) -> None:
    _, github = client
    permissions = Permissions(github, ttl=60, clock=Clock())
    # Not a collaborator; and a repository the token cannot see answers 404 too.
    assert (await permissions.may_write(REPO, "stranger"))[0] is False
    assert (await permissions.may_write("octo/hidden", "alice"))[0] is False
    assert await permissions.level(REPO, "stranger") == "none"


async def test_other_client_errors_refuse(client: tuple[FakeGitHub, PyGithubClient]) -> None:
    gh, github = client
    permissions = Permissions(github, ttl=60, clock=Clock())
    gh.fail("GET", PERMISSION, 401, times=1)
    assert await permissions.may_write(REPO, "alice") == (False, COULD_NOT)


async def test_stricter_levels(client: tuple[FakeGitHub, PyGithubClient]) -> None:
    _, github = client
    permissions = Permissions(github, ttl=60, clock=Clock())
    strict = ("maintain", "admin")
    assert await permissions.may_write(REPO, "mona", strict) == (True, "")
    assert await permissions.may_write(REPO, "alice", strict) == (
        False,
        "this needs maintain or admin permission on this repository",
    )
    assert (await permissions.may_write(REPO, "reader"))[0] is False


@pytest.mark.parametrize(
    ("sender", "allowed", "expected"),
    [
        ({"login": "alice", "type": "User"}, (), False),
        ({"login": "dependabot[bot]", "type": "Bot"}, (), True),
        ({"login": "renovate[bot]", "type": "User"}, (), True),
        ({"login": "ci-robot", "type": "Bot"}, (), True),
        ({"login": "ci-robot", "type": "Bot"}, ("ci-robot",), False),
        (None, (), True),
        ({}, (), True),
    ],
)
def test_is_bot(sender: dict[str, str] | None, allowed: tuple[str, ...], expected: bool) -> None:
    assert is_bot(sender, allowed) is expected


async def test_unauthorized_users_get_silence_when_configured(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"reply_to_unauthorized": False}) as h:
        for sender in ("mallory", "stranger"):  # read access; not a collaborator
            made = h.gh.add_comment("acme/widgets", 1, "/forge run", user=sender)
            payload = payloads.commented(h.repo_payload, 1, "/forge run", sender, comment_id=made.id)
            assert await h.deliver("issue_comment", payload) == 202
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "mallory")) == 202
        await h.until_idle()
        assert h.gh.actions == []  # no reply, no reaction, no task
        assert [r["method"] for r in h.gh.requests if r["method"] != "GET"] == []

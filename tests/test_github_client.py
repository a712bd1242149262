"""PyGithubClient against the HTTP fake of GitHub: real PyGithub, real HTTP, no mocks."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forgebot.github.client import PyGithubClient
from forgebot.github.port import CommentInfo, GitHubError, IssueInfo, NotFoundOnGitHub, PullInfo, RepoInfo
from tests.fake_github import FakeGitHub
from tests.support import rsa_key_pair

REPO = "octo/demo"
APP_ID = 4242
INSTALLATION = 77


def seed(gh: FakeGitHub) -> None:
    gh.add_repo(REPO, clone_url="/srv/git/demo.git")
    gh.add_issue(REPO, "Add auth", "Please add auth.", user="alice", labels=("forge",))
    gh.set_permission(REPO, "alice", "write")


def token_client(gh: FakeGitHub, **options: float) -> PyGithubClient:
    settings: dict[str, float] = {"write_interval": 0.0, "backoff": 0.01, **options}
    return PyGithubClient(api_url=gh.url, token=gh.token, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def client(fake_github: FakeGitHub) -> AsyncIterator[PyGithubClient]:
    seed(fake_github)
    c = token_client(fake_github)
    yield c
    await c.close()


# ---- every port method


async def test_get_repo_and_issue(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, "feature", title="A PR")

    assert await client.get_repo(REPO) == RepoInfo(REPO, "main", "/srv/git/demo.git", False)
    assert await client.get_issue(REPO, 1) == IssueInfo(1, "Add auth", "Please add auth.", "alice", ("forge",))
    assert (await client.get_issue(REPO, 2)).is_pull_request
    with pytest.raises(NotFoundOnGitHub) as missing:
        await client.get_issue(REPO, 99)
    assert missing.value.status == 404
    with pytest.raises(ValueError, match="owner/name"):
        await client.get_issue("octo/demo/../x", 1)


async def test_permission_reads_role_name(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.set_permission(REPO, "mia", "maintain")
    fake_github.set_permission(REPO, "tim", "triage")

    assert await client.permission(REPO, "alice") == "write"
    assert await client.permission(REPO, "mia") == "maintain"  # the legacy `permission` field says "write"
    assert await client.permission(REPO, "tim") == "triage"
    assert await client.permission(REPO, "octo") == "admin"  # the owner
    assert await client.permission(REPO, "stranger") == "none"  # 404: not a collaborator


async def test_permission_fails_closed_on_other_errors(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.fail("GET", r"/permission$", 500, times=None)

    with pytest.raises(GitHubError) as failed:
        await client.permission(REPO, "alice")
    assert failed.value.status == 500
    assert len(fake_github.requests_to("GET", r"/permission$")) == 4  # a read: retried, then given up


async def test_comments_create_list_edit_react(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    created = await client.create_comment(REPO, 1, "Working on it\n<!-- forgebot:task=1 kind=progress -->")
    await client.edit_comment(REPO, created.id, "Done")
    await client.react_to_comment(REPO, created.id, "eyes")
    await client.react_to_comment(REPO, created.id, "eyes")  # already there: GitHub answers 200, nothing changes
    await client.react_to_issue(REPO, 1, "rocket")

    assert created.author == "forgebot"
    assert created.html_url == f"{fake_github.root}/{REPO}/issues/1#issuecomment-{created.id}"
    assert await client.list_comments(REPO, 1) == [CommentInfo(created.id, "Done", "forgebot", created.html_url)]
    assert fake_github.actions == [
        f"{REPO}#1: comment 'Working on it <!-- forgebot:task=1 kind=progress -->'",
        f"{REPO}#1: edit comment {created.id}",
        f"{REPO} comment {created.id}: react eyes",
        f"{REPO}#1: react rocket",
    ]
    with pytest.raises(ValueError, match="reaction"):
        await client.react_to_issue(REPO, 1, "thumbsup")
    with pytest.raises(ValueError, match="65536"):
        await client.create_comment(REPO, 1, "x" * 65537)


async def test_list_comments_follows_pages(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    for n in range(230):
        fake_github.add_comment(REPO, 1, f"comment {n}")

    comments = await client.list_comments(REPO, 1)

    assert [c.body for c in comments] == [f"comment {n}" for n in range(230)]
    pages = fake_github.requests_to("GET", r"/issues/1/comments")
    assert [r["path"].split("?")[1] for r in pages] == ["per_page=100", "page=2&per_page=100", "page=3&per_page=100"]


async def test_read_file(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.set_file(REPO, ".github/forge.yml", "agents: [claude]\n")
    fake_github.set_file(REPO, ".github/forge.yml", "agents: [gemini]\n", ref="other")

    assert await client.read_file(REPO, ".github/forge.yml", "main") == "agents: [claude]\n"
    assert await client.read_file(REPO, ".github/forge.yml", "other") == "agents: [gemini]\n"
    assert await client.read_file(REPO, ".github/missing.yml", "main") is None
    assert await client.read_file(REPO, ".github/forge.yml", "no-such-branch") is None
    assert await client.read_file(REPO, ".github", "main") is None  # a directory


async def test_list_dir(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.set_file(REPO, ".github/forge/templates/fix.md", "Fix it.")
    fake_github.set_file(REPO, ".github/forge/templates/add-tests.md", "Add tests.")
    fake_github.set_file(REPO, ".github/forge/templates/parts/header.md", "Header")
    fake_github.set_file(REPO, ".github/forge/templates/new.md", "New", ref="other")

    assert await client.list_dir(REPO, ".github/forge/templates", "main") == ["add-tests.md", "fix.md"]  # no folders
    assert await client.list_dir(REPO, ".github/forge/templates", "other") == ["new.md"]
    assert await client.list_dir(REPO, ".github/forge/missing", "main") is None
    assert await client.list_dir(REPO, ".github/forge/templates", "no-such-branch") is None
    assert await client.list_dir(REPO, ".github/forge/templates/fix.md", "main") is None  # a file


async def test_pull_lifecycle(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.add_branch(REPO, "forge/1-claude", "forge/1-codex")
    fake_github.set_permission(REPO, "bob", "write")
    assert await client.find_pull(REPO, "forge/1-claude") is None

    opened = await client.create_pull(
        REPO, title="Add auth", body="Closes #1", head="forge/1-claude", base="main", draft=True
    )
    await client.edit_pull_body(REPO, opened.number, "Closes #1\n\nbetter")
    await client.request_review(REPO, opened.number, ["bob"])
    await client.add_labels(REPO, opened.number, ["forge", "forge:done"])
    with pytest.raises(GitHubError, match="Pull Request is still a draft") as draft:
        await client.merge_pull(REPO, opened.number)
    assert draft.value.status == 405
    await client.mark_ready(REPO, opened.number)
    await client.mark_ready(REPO, opened.number)  # already ready: nothing sent
    merged = await client.merge_pull(REPO, opened.number, sha=opened.head_sha)

    url, sha = f"{fake_github.root}/{REPO}/pull/2", fake_github.pull(REPO, 2).head_sha
    assert opened == PullInfo(2, "forge/1-claude", "main", "open", False, True, url, (), sha)
    assert merged is True
    after = await client.get_pull(REPO, opened.number)
    assert (after.state, after.merged, after.labels, after.draft) == ("closed", True, ("forge", "forge:done"), False)
    assert (await client.find_pull(REPO, "forge/1-claude"), after.requested_reviewers) == (after, ("bob",))
    assert await client.delete_branch(REPO, "forge/1-codex") is True
    assert await client.delete_branch(REPO, "forge/1-codex") is False  # 422 "Reference does not exist"
    assert fake_github.actions == [
        f"{REPO}: open PR #2 forge/1-claude -> main (draft) 'Add auth'",
        f"{REPO}#2: edit PR (body)",
        f"{REPO}#2: request review bob",
        f"{REPO}#2: add labels forge, forge:done",
        f"{REPO}#2: ready for review",
        f"{REPO}#2: merge PR (squash)",
        f"{REPO}: delete branch forge/1-codex",
    ]


async def test_find_pull_prefers_the_open_one(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, "forge/1-claude", state="closed")
    reopened = fake_github.add_pull(REPO, "forge/1-claude")
    fake_github.add_pull(REPO, "forge/1-claude", state="closed")
    fake_github.add_pull(REPO, "other")

    found = await client.find_pull(REPO, "forge/1-claude")

    assert found is not None and (found.number, found.state) == (reopened.number, "open")


async def test_duplicate_pull_raises_422(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, "forge/1-claude")

    with pytest.raises(GitHubError) as duplicate:
        await client.create_pull(REPO, title="t", body="b", head="forge/1-claude", base="main", draft=False)
    assert duplicate.value.status == 422
    assert len(fake_github.requests_to("POST", r"/pulls$")) == 1


async def test_merge_refused_raises_githubs_reason(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    issue = fake_github.add_pull(REPO, "forge/1-claude")
    fake_github.pull(REPO, issue.number).mergeable = False
    squash_only = fake_github.add_pull(REPO, "forge/1-codex")
    fake_github.repos[REPO].allow_rebase_merge = False

    with pytest.raises(GitHubError, match="HTTP 405 Pull Request is not mergeable"):
        await client.merge_pull(REPO, issue.number, method="rebase")
    with pytest.raises(GitHubError, match="Rebase merges are not allowed on this repository"):
        await client.merge_pull(REPO, squash_only.number, method="rebase")
    with pytest.raises(GitHubError, match="HTTP 409 Head branch was modified") as moved:
        await client.merge_pull(REPO, squash_only.number, method="squash", sha="f" * 40)
    assert moved.value.status == 409 and fake_github.actions == []
    with pytest.raises(ValueError, match="merge method"):
        await client.merge_pull(REPO, issue.number, method="octopus")
    info = await client.get_repo(REPO)
    assert (info.allow_squash_merge, info.allow_merge_commit, info.allow_rebase_merge) == (True, True, False)


async def test_commit_checks_read_statuses_and_check_runs(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.add_branch(REPO, "forge/1-claude", "forge/1-codex")
    fake_github.set_status(REPO, "forge/1-claude", "ci/legacy", "success")
    fake_github.set_status(REPO, "forge/1-claude", "ci/lint", "error")
    fake_github.add_check(REPO, "forge/1-claude", "tests", "failure")
    fake_github.add_check(REPO, "forge/1-claude", "docs", "skipped")
    fake_github.add_check(REPO, "forge/1-claude", "build", None, status="in_progress")
    sha = (
        await client.create_pull(REPO, title="t", body="b", head="forge/1-claude", base="main", draft=False)
    ).head_sha

    found = await client.commit_checks(REPO, sha)
    none = await client.commit_checks(REPO, (await client.create_pull(
        REPO, title="t", body="b", head="forge/1-codex", base="main", draft=False)).head_sha)  # fmt: skip

    assert [(c.name, c.state) for c in found] == [
        ("ci/legacy", "success"),
        ("ci/lint", "failure"),
        ("tests", "failure"),
        ("docs", "success"),
        ("build", "pending"),
    ]
    assert none == []  # GitHub says "pending" with no statuses: that is no checks, not a pending one
    with pytest.raises(GitHubError) as unknown:
        await client.commit_checks(REPO, "nope")
    assert unknown.value.status == 422


async def test_own_login_with_a_token(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    assert await client.own_login() == "forgebot"
    assert fake_github.requests[-1]["path"] == "/user"


async def test_merge_that_landed_before_a_502_is_reported_merged(
    client: PyGithubClient, fake_github: FakeGitHub
) -> None:
    issue = fake_github.add_pull(REPO, "forge/1-claude")
    fake_github.fail("PUT", r"/merge$", 502, after=True)

    assert await client.merge_pull(REPO, issue.number) is True  # the retry gets 405, then sees it merged
    assert [r["status"] for r in fake_github.requests_to("PUT", r"/merge$")] == [502, 405]


async def test_git_token_and_ping(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    assert await client.git_token(REPO) == fake_github.token
    await client.ping()
    assert fake_github.requests[-1]["path"] == "/rate_limit"


async def test_ghes_base_path() -> None:
    async with FakeGitHub(prefix="/api/v3") as gh:
        seed(gh)
        client = token_client(gh)
        assert gh.url.endswith("/api/v3")

        comment = await client.create_comment(REPO, 1, "hi")
        assert await client.list_comments(REPO, 1) == [comment]
        await client.ping()
        await client.close()
    comments = f"/repos/{REPO}/issues/1/comments"
    assert [r["path"] for r in gh.requests] == [comments, comments + "?per_page=100", "/rate_limit"]
    assert [r["status"] for r in gh.requests] == [201, 200, 200]  # served below /api/v3, or it would be 404


# ---- threads


async def test_calls_run_off_the_event_loop(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.slow("GET", r"/issues/1$", 0.4)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await client.get_issue(REPO, 1)
    ticker.cancel()
    assert ticks >= 10  # a blocking call on the loop would have starved the ticker


async def test_calls_of_one_token_run_one_at_a_time(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    # PyGithub's Requester shares one connection object between threads (not thread-safe): the client serializes.
    fake_github.slow("GET", r"/issues/1$", 0.1)

    issues = await asyncio.gather(*(client.get_issue(REPO, 1) for _ in range(3)))

    arrivals = [r["time"] for r in fake_github.requests_to("GET", r"/issues/1$")]
    assert [i.number for i in issues] == [1, 1, 1]
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.1


async def test_a_cancelled_call_leaves_the_client_usable(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.slow("GET", r"/issues/1$", 0.3, times=1)
    slow = asyncio.create_task(client.get_issue(REPO, 1))
    await asyncio.sleep(0.05)
    slow.cancel()

    assert (await client.get_repo(REPO)).full_name == REPO
    with pytest.raises(asyncio.CancelledError):
        await slow


# ---- retries


async def test_502_on_a_read_is_retried(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.fail("GET", r"/issues/1$", 502, times=2)

    assert (await client.get_issue(REPO, 1)).title == "Add auth"
    assert [r["status"] for r in fake_github.requests_to("GET", r"/issues/1$")] == [502, 502, 200]
    assert (client.stats.reads, client.stats.retries) == (3, 2)


async def test_a_read_gives_up_after_bounded_attempts(fake_github: FakeGitHub) -> None:
    seed(fake_github)
    client = token_client(fake_github, max_attempts=3)
    fake_github.fail("GET", r"/issues/1$", 503, times=None)

    with pytest.raises(GitHubError) as failed:
        await client.get_issue(REPO, 1)
    assert failed.value.status == 503
    assert len(fake_github.requests_to("GET", r"/issues/1$")) == 3


async def test_502_on_create_comment_is_raised_not_repeated(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.fail("POST", r"/issues/1/comments$", 502)

    with pytest.raises(GitHubError) as failed:
        await client.create_comment(REPO, 1, "hello")
    assert failed.value.status == 502
    assert len(fake_github.requests_to("POST", r"/comments$")) == 1
    assert client.stats.retries == 0


async def test_a_post_that_landed_then_502_is_not_repeated(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.fail("POST", r"/issues/1/comments$", 502, after=True)

    with pytest.raises(GitHubError):
        await client.create_comment(REPO, 1, "<!-- forgebot:task=1 kind=progress --> hello")
    assert len(fake_github.requests_to("POST", r"/comments$")) == 1
    # It landed: the caller finds its marker instead of posting again.
    assert [c.body for c in await client.list_comments(REPO, 1)] == ["<!-- forgebot:task=1 kind=progress --> hello"]


async def test_502_on_create_pull_is_raised_not_repeated(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.add_branch(REPO, "forge/1-claude")
    fake_github.fail("POST", r"/pulls$", 502, after=True)

    with pytest.raises(GitHubError):
        await client.create_pull(REPO, title="t", body="b", head="forge/1-claude", base="main", draft=True)
    assert len(fake_github.requests_to("POST", r"/pulls$")) == 1
    assert await client.find_pull(REPO, "forge/1-claude") is not None


async def test_idempotent_writes_are_retried(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    comment = fake_github.add_comment(REPO, 1, "old")
    fake_github.fail("PATCH", r"/issues/comments/\d+$", 502, after=True)
    fake_github.fail("POST", r"/labels$", 500)

    await client.edit_comment(REPO, comment.id, "new")
    await client.add_labels(REPO, 1, ["forge:running"])

    assert comment.body == "new"
    assert [r["status"] for r in fake_github.requests_to("PATCH", "/comments/")] == [502, 200]
    assert fake_github.repos[REPO].issues[1].labels == ["forge", "forge:running"]


async def test_connection_errors(fake_github: FakeGitHub) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = PyGithubClient(api_url=f"http://127.0.0.1:{port}", token=fake_github.token, backoff=0.01, write_interval=0)

    with pytest.raises(GitHubError) as read:
        await client.get_issue(REPO, 1)
    assert (read.value.status, client.stats.reads, client.stats.retries) == (None, 4, 3)
    with pytest.raises(GitHubError):
        await client.create_comment(REPO, 1, "hi")
    assert (client.stats.writes, client.stats.retries) == (1, 3)  # a create is not repeated


# ---- rate limits


async def test_403_rate_limit_waits_for_reset(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fault = fake_github.rate_limit("GET", r"/issues/1$", reset_in=1.2)
    reset = int(fault.headers["x-ratelimit-reset"])

    assert (await client.get_issue(REPO, 1)).number == 1
    first, second = fake_github.requests_to("GET", r"/issues/1$")
    assert (first["status"], second["status"]) == (403, 200)
    # x-ratelimit-reset is a whole second and clocks drift: one second more, so the retry is never early.
    assert second["time"] >= reset + 1.0 - 0.01
    assert (client.stats.rate_limit_waits, client.stats.retries) == (1, 0)


async def test_429_retry_after_waits_and_a_rate_limited_post_is_repeated(
    client: PyGithubClient, fake_github: FakeGitHub
) -> None:
    fake_github.rate_limit("POST", r"/issues/1/comments$", status=429, retry_after=1)

    await client.create_comment(REPO, 1, "hello")  # not processed when limited: safe to send again

    first, second = fake_github.requests_to("POST", r"/comments$")
    assert (first["status"], second["status"]) == (429, 201)
    assert second["time"] - first["time"] >= 1.0
    assert len(fake_github.repos[REPO].comments) == 1
    assert client.stats.rate_limit_waits == 1


async def test_rate_limit_longer_than_the_cap_raises(fake_github: FakeGitHub) -> None:
    seed(fake_github)
    client = token_client(fake_github, max_rate_limit_wait=5)
    fake_github.rate_limit("GET", r"/issues/1$", reset_in=600)

    started = time.monotonic()
    with pytest.raises(GitHubError) as limited:
        await client.get_issue(REPO, 1)
    assert limited.value.status == 403 and "rate limit" in str(limited.value)
    assert time.monotonic() - started < 1


async def test_a_plain_403_is_not_a_rate_limit(client: PyGithubClient, fake_github: FakeGitHub) -> None:
    fake_github.fail("POST", r"/labels$", 403, body={"message": "Resource not accessible by integration"})

    with pytest.raises(GitHubError) as denied:
        await client.add_labels(REPO, 1, ["x"])
    assert denied.value.status == 403
    assert client.stats.rate_limit_waits == 0 and len(fake_github.requests_to("POST", "/labels")) == 1


# ---- pacing


async def test_writes_are_paced(fake_github: FakeGitHub) -> None:
    seed(fake_github)
    client = token_client(fake_github, write_interval=0.15)
    comment = fake_github.add_comment(REPO, 1, "c")

    await asyncio.gather(
        client.edit_comment(REPO, comment.id, "a"),
        client.react_to_comment(REPO, comment.id, "eyes"),
        client.add_labels(REPO, 1, ["x"]),
        client.get_issue(REPO, 1),
    )
    await client.create_comment(REPO, 1, "b")

    writes = [r["time"] for r in fake_github.requests if r["method"] != "GET"]
    assert len(writes) == 4
    assert min(b - a for a, b in itertools.pairwise(writes)) >= 0.15
    reads = [r["time"] for r in fake_github.requests if r["method"] == "GET"]
    assert reads[0] - fake_github.requests[0]["time"] < 0.15  # reads are not paced


# ---- App auth


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return rsa_key_pair()


def app_client(gh: FakeGitHub, private_key: str, **options: float) -> PyGithubClient:
    settings: dict[str, float] = {"write_interval": 0.0, "backoff": 0.01, **options}
    return PyGithubClient(api_url=gh.url, app_id=APP_ID, private_key=private_key, **settings)  # type: ignore[arg-type]


@pytest.fixture
def app_github(fake_github: FakeGitHub, app_key: tuple[str, str]) -> FakeGitHub:
    seed(fake_github)
    fake_github.add_repo("octo/private", private=True)
    fake_github.add_app(APP_ID, app_key[1], slug="forgebot")
    fake_github.install(INSTALLATION, REPO)
    return fake_github


async def test_app_auth_end_to_end(app_github: FakeGitHub, app_key: tuple[str, str]) -> None:
    client = app_client(app_github, app_key[0])

    await client.ping()
    issue = await client.get_issue(REPO, 1)
    comment = await client.create_comment(REPO, 1, "hello from the app")
    token = await client.git_token(REPO)

    assert issue.title == "Add auth" and comment.author == "forgebot[bot]"
    assert app_github.token_requests == [INSTALLATION]  # one token for all calls
    assert token == app_github.installation_tokens(INSTALLATION)[0]
    assert len(app_github.requests_to("GET", f"/repos/{REPO}/installation$")) == 1
    assert all(claims["iss"] == str(APP_ID) for claims in app_github.jwts) and len(app_github.jwts) == 3
    with pytest.raises(NotFoundOnGitHub):
        await client.get_repo("octo/private")  # not installed there
    assert await client.own_login() == "forgebot[bot]"  # GET /app: an installation token cannot GET /user


async def test_an_app_marks_a_pull_ready_through_graphql(app_github: FakeGitHub, app_key: tuple[str, str]) -> None:
    client = app_client(app_github, app_key[0])
    draft = app_github.add_pull(REPO, "forge/1-claude", draft=True)
    elsewhere = app_github.add_pull("octo/private", "forge/1-x", draft=True)

    await client.mark_ready(REPO, draft.number)

    assert app_github.pull(REPO, draft.number).draft is False
    [mutation] = app_github.requests_to("POST", "/graphql$")
    assert "markPullRequestReadyForReview" in mutation["json"]["query"]
    with pytest.raises(NotFoundOnGitHub):
        await client.mark_ready("octo/private", elsewhere.number)  # not installed there: REST says 404 first


async def test_concurrent_calls_share_one_token_request(app_github: FakeGitHub, app_key: tuple[str, str]) -> None:
    client = app_client(app_github, app_key[0])

    await asyncio.gather(*(client.get_issue(REPO, 1) for _ in range(5)))

    assert app_github.token_requests == [INSTALLATION]
    assert len(app_github.requests_to("GET", "/installation$")) == 1


async def test_a_token_near_expiry_is_replaced(app_github: FakeGitHub, app_key: tuple[str, str]) -> None:
    app_github.token_lifetime = 200  # inside the 5-minute refresh margin
    client = app_client(app_github, app_key[0])

    first = await client.git_token(REPO)
    second = await client.git_token(REPO)

    assert first != second and app_github.token_requests == [INSTALLATION, INSTALLATION]
    assert first and second and {first, second} <= set(client.known_tokens())  # both are scrubbed from comments


def test_a_token_client_knows_its_token(fake_github: FakeGitHub) -> None:
    assert token_client(fake_github).known_tokens() == (fake_github.token,)


async def test_a_revoked_token_is_replaced_on_the_next_call(app_github: FakeGitHub, app_key: tuple[str, str]) -> None:
    client = app_client(app_github, app_key[0])
    revoked = await client.git_token(REPO)
    assert revoked is not None
    app_github.revoke_token(revoked)

    with pytest.raises(GitHubError) as refused:
        await client.get_issue(REPO, 1)
    assert refused.value.status == 401
    assert (await client.get_issue(REPO, 1)).number == 1
    assert await client.git_token(REPO) != revoked


async def test_a_jwt_signed_with_another_key_is_refused(app_github: FakeGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    client = app_client(app_github, pem)

    with pytest.raises(GitHubError) as refused:
        await client.get_issue(REPO, 1)
    assert refused.value.status == 401
    assert app_github.jwts == []


# ---- secrets


async def test_no_secret_in_errors_or_logs(
    app_github: FakeGitHub,
    app_key: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")
    bad = PyGithubClient(api_url=app_github.url, token="ghp_not_a_valid_token_000000000000000", backoff=0.01)
    app = app_client(app_github, app_key[0])
    token_user = token_client(app_github)
    app_github.fail("GET", r"/issues/1$", 502, times=None)
    app_github.rate_limit("POST", r"/comments$", retry_after=0)
    errors: list[BaseException] = []
    with structlog.testing.capture_logs() as events:
        for call in (
            bad.get_repo(REPO),
            app.get_issue(REPO, 1),
            app.create_comment(REPO, 1, "x"),
            token_user.get_issue(REPO, 1),
        ):
            try:
                await call
            except GitHubError as exc:
                errors.append(exc)
        installation_token = await app.git_token(REPO)

    assert installation_token and len(errors) == 3 and events
    secrets = ["ghp_not_a_valid_token_000000000000000", app_github.token, installation_token, app_key[0][40:80]]
    seen = "\n".join([repr(e) + str(e) + repr(e.__cause__) for e in errors] + [str(e) for e in events])
    seen += caplog.text + "".join(capsys.readouterr())
    assert [s for s in secrets if s in seen] == []
    assert "GitHub get_repo: HTTP 401" in seen and "github_retry" in seen  # the logs did capture something

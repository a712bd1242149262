"""The fake GitHub's own behaviour, over raw HTTP: routing, auth, faults, pagination, the logs."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fake_github import FakeGitHub, run_in_thread, short
from tests.support import git, make_repo

REPO = "o/r"


class Api:
    """A tiny HTTP client for the fake: `await api.get(path)` -> (status, json, headers)."""

    def __init__(self, gh: FakeGitHub, session: aiohttp.ClientSession) -> None:
        self.gh = gh
        self.session = session
        self.auth = f"token {gh.token}"

    async def call(self, method: str, path: str, body: Any = None, auth: str | None = None) -> tuple[int, Any, Any]:
        headers = {"Authorization": auth if auth is not None else self.auth}
        url = path if path.startswith("http") else self.gh.url + path
        async with self.session.request(method, url, json=body, headers=headers) as answer:
            text = await answer.text()
            try:
                return answer.status, json.loads(text) if text else None, answer.headers
            except ValueError:
                return answer.status, text, answer.headers

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("POST", path, body, **kw)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with FakeGitHub() as gh, aiohttp.ClientSession() as session:
        gh.add_repo(REPO)
        gh.add_issue(REPO, "Title", "Body", user="alice")
        yield Api(gh, session)
        assert not gh.errors


async def test_responses_point_at_the_fake(api: Api) -> None:
    status, issue, _ = await api.get(f"/repos/{REPO}/issues/1")

    assert status == 200
    assert issue["url"] == f"{api.gh.url}/repos/{REPO}/issues/1"
    assert issue["html_url"] == f"{api.gh.root}/{REPO}/issues/1"
    assert issue["user"]["url"].startswith(api.gh.url)
    assert "pull_request" not in issue


async def test_auth(api: Api) -> None:
    assert (await api.get(f"/repos/{REPO}", auth=""))[0] == 401
    status, body, _ = await api.get(f"/repos/{REPO}", auth="token ghp_unknown")
    assert (status, body["message"]) == (401, "Bad credentials")
    assert body["documentation_url"].startswith("https://docs.github.com")
    assert (await api.get("/app"))[0] == 401  # needs an App JWT
    assert (await api.get(f"/repos/{REPO}", auth=f"Bearer {api.gh.token}"))[0] == 200
    assert [r["auth"] for r in api.gh.requests] == [None, None, None, "forgebot"]


async def test_unknown_routes_and_repos_are_404(api: Api) -> None:
    assert (await api.get("/repos/o/missing"))[0] == 404
    assert (await api.get(f"/repos/{REPO}/frobnicate"))[0] == 404
    assert (await api.call("DELETE", f"/repos/{REPO}/issues/1"))[0] == 404


async def test_fault_then_normal_answer(api: Api) -> None:
    fault = api.gh.fail("GET", r"/issues/1$", 502, times=2)

    statuses = [(await api.get(f"/repos/{REPO}/issues/1"))[0] for _ in range(3)]

    assert statuses == [502, 502, 200]
    assert fault.hits == 2


async def test_fault_after_the_state_change(api: Api) -> None:
    api.gh.fail("POST", r"/comments$", 502, after=True)

    status, _, _ = await api.post(f"/repos/{REPO}/issues/1/comments", {"body": "hello"})

    assert status == 502
    assert [c.body for c in api.gh.repos[REPO].comments.values()] == ["hello"]  # it landed anyway
    assert api.gh.actions == ["o/r#1: comment 'hello'"]


async def test_fault_before_leaves_state_alone(api: Api) -> None:
    api.gh.fail("*", r"/comments$", 500, body="<html>oops</html>")

    status, body, _ = await api.post(f"/repos/{REPO}/issues/1/comments", {"body": "x"})

    assert (status, body) == (500, "<html>oops</html>")
    assert api.gh.repos[REPO].comments == {} and api.gh.actions == []


async def test_rate_limit_headers(api: Api) -> None:
    api.gh.rate_limit("GET", r"/issues/1$", reset_in=30)
    api.gh.rate_limit("GET", r"/issues/1$", status=429, retry_after=2)

    first = await api.get(f"/repos/{REPO}/issues/1")
    second = await api.get(f"/repos/{REPO}/issues/1")

    assert (first[0], first[2]["x-ratelimit-remaining"], first[1]["message"][:23]) == (
        403,
        "0",
        "API rate limit exceeded",
    )
    assert int(first[2]["x-ratelimit-reset"]) >= time.time() + 28
    assert (second[0], second[2]["retry-after"]) == (429, "2")
    assert (await api.get(f"/repos/{REPO}/issues/1"))[2]["x-ratelimit-remaining"] == "4999"


async def test_slow(api: Api) -> None:
    api.gh.slow("GET", r"/issues/1$", 0.3, times=1)

    started = time.monotonic()
    await api.get(f"/repos/{REPO}/issues/1")
    slow = time.monotonic() - started
    started = time.monotonic()
    await api.get(f"/repos/{REPO}/issues/1")

    assert slow >= 0.3 and time.monotonic() - started < 0.3


async def test_pagination(api: Api) -> None:
    for n in range(5):
        api.gh.add_comment(REPO, 1, f"c{n}")

    status, page1, headers = await api.get(f"/repos/{REPO}/issues/1/comments?per_page=2")
    links = dict(reversed(part.split("; ")) for part in headers["Link"].split(", "))
    _, page3, last_headers = await api.get(links['rel="last"'].strip("<>"))

    assert status == 200 and [c["body"] for c in page1] == ["c0", "c1"]
    assert links['rel="next"'] == f"<{api.gh.url}/repos/{REPO}/issues/1/comments?per_page=2&page=2>"
    assert [c["body"] for c in page3] == ["c4"]
    assert 'rel="next"' not in last_headers["Link"] and 'rel="prev"' in last_headers["Link"]
    _, everything, plain = await api.get(f"/repos/{REPO}/issues/1/comments")
    assert len(everything) == 5 and "Link" not in plain


async def test_pull_requests_share_the_issue_numbers_and_duplicates_are_422(api: Api) -> None:
    api.gh.add_branch(REPO, "forge/1-claude")
    body = {"title": "T", "head": "forge/1-claude", "base": "main", "draft": True}

    created = await api.post(f"/repos/{REPO}/pulls", body)
    duplicate = await api.post(f"/repos/{REPO}/pulls", {**body, "head": "o:forge/1-claude"})
    no_branch = await api.post(f"/repos/{REPO}/pulls", {**body, "head": "nope"})

    assert (created[0], created[1]["number"], created[1]["draft"]) == (201, 2, True)
    assert duplicate[0] == 422
    assert duplicate[1]["errors"][0]["message"] == "A pull request already exists for o:forge/1-claude."
    assert no_branch[0] == 422
    _, issue, _ = await api.get(f"/repos/{REPO}/issues/2")
    assert issue["pull_request"]["url"] == f"{api.gh.url}/repos/{REPO}/pulls/2"
    _, listed, _ = await api.get(f"/repos/{REPO}/pulls?head=o:forge/1-claude&state=all")
    assert [p["number"] for p in listed] == [2] and "merged" not in listed[0]  # list items are "simple" pulls
    assert api.gh.actions == ["o/r: open PR #2 forge/1-claude -> main (draft) 'T'"]


async def test_merge_and_delete_branch(api: Api) -> None:
    api.gh.add_pull(REPO, "forge/1-a")
    stuck = api.gh.add_pull(REPO, "forge/1-b")
    api.gh.pull(REPO, stuck.number).mergeable = False

    merged = await api.call("PUT", f"/repos/{REPO}/pulls/2/merge", {"merge_method": "squash"})
    again = await api.call("PUT", f"/repos/{REPO}/pulls/2/merge", {})
    refused = await api.call("PUT", f"/repos/{REPO}/pulls/3/merge", {})
    deleted = await api.call("DELETE", f"/repos/{REPO}/git/refs/heads/forge/1-a")
    gone = await api.call("DELETE", f"/repos/{REPO}/git/refs/heads/forge/1-a")

    assert (merged[0], merged[1]["merged"]) == (200, True)
    assert again[0] == 405 and refused[0] == 405
    assert deleted[0] == 204 and (gone[0], gone[1]["message"]) == (422, "Reference does not exist")
    assert api.gh.actions == ["o/r#2: merge PR (squash)", "o/r: delete branch forge/1-a"]


async def test_merge_refuses_drafts_and_disallowed_methods_like_github(api: Api) -> None:
    draft = api.gh.add_pull(REPO, "forge/1-a", draft=True)
    api.gh.repos[REPO].allow_merge_commit = False

    as_draft = await api.call("PUT", f"/repos/{REPO}/pulls/{draft.number}/merge", {"merge_method": "squash"})
    api.gh.pull(REPO, draft.number).draft = False
    as_merge = await api.call("PUT", f"/repos/{REPO}/pulls/{draft.number}/merge", {})  # "merge" is the default
    _, repo, _ = await api.get(f"/repos/{REPO}")

    assert (as_draft[0], as_draft[1]["message"]) == (405, "Pull Request is still a draft")
    assert (as_merge[0], as_merge[1]["message"]) == (405, "Merge commits are not allowed on this repository.")
    assert (repo["allow_squash_merge"], repo["allow_merge_commit"], repo["allow_rebase_merge"]) == (True, False, True)
    assert api.gh.actions == []


async def test_graphql_marks_ready_and_answers_errors_like_github(api: Api) -> None:
    draft = api.gh.add_pull(REPO, "forge/1-a", draft=True)
    query = "mutation M($input: MarkPullRequestReadyForReviewInput!) { markPullRequestReadyForReview(input: $input) "
    query += "{ clientMutationId pullRequest { isDraft } } }"
    _, pull, _ = await api.get(f"/repos/{REPO}/pulls/{draft.number}")

    ready = await api.post("/graphql", {"query": query, "variables": {"input": {"pullRequestId": pull["node_id"]}}})
    unknown = await api.post("/graphql", {"query": query, "variables": {"input": {"pullRequestId": "PR_9_9"}}})
    other = await api.post("/graphql", {"query": "{ viewer { login } }", "variables": {}})
    user = await api.get("/user")

    assert ready[:2] == (200, {"data": {"markPullRequestReadyForReview": {
        "clientMutationId": None, "pullRequest": {"isDraft": False}}}})  # fmt: skip
    assert unknown[0] == 200 and unknown[1]["errors"][0]["type"] == "NOT_FOUND"
    assert other[0] == 200 and "errors" in other[1]
    assert (user[0], user[1]["login"]) == (200, "forgebot")
    assert api.gh.actions == ["o/r#2: ready for review"]


async def test_commit_checks_follow_the_branch(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "source")
    async with FakeGitHub() as gh, aiohttp.ClientSession() as session:
        gh.add_repo(REPO, clone_url=str(source))
        api = Api(gh, session)
        first = git(source, "rev-parse", "main")
        gh.add_check(REPO, "main", "tests", "failure")
        git(source, "commit", "-q", "--allow-empty", "-m", "more")
        gh.set_status(REPO, "main", "ci", "pending")

        _, old, _ = await api.get(f"/repos/{REPO}/commits/{first}/check-runs")
        _, new, _ = await api.get(f"/repos/{REPO}/commits/main/status")
        _, bare, _ = await api.get(f"/repos/{REPO}/commits/{first}/status")

    assert [(r["name"], r["conclusion"]) for r in old["check_runs"]] == [("tests", "failure")]
    assert (new["state"], [s["context"] for s in new["statuses"]]) == ("pending", ["ci"])
    assert (bare["state"], bare["total_count"]) == ("pending", 0)


async def test_reactions_labels_and_permissions(api: Api) -> None:
    comment = api.gh.add_comment(REPO, 1, "hi")
    api.gh.set_permission(REPO, "mia", "maintain")

    first = await api.post(f"/repos/{REPO}/issues/comments/{comment.id}/reactions", {"content": "eyes"})
    second = await api.post(f"/repos/{REPO}/issues/comments/{comment.id}/reactions", {"content": "eyes"})
    bad = await api.post(f"/repos/{REPO}/issues/1/reactions", {"content": "thumbs"})
    labels = await api.post(f"/repos/{REPO}/issues/1/labels", ["forge", "forge"])
    wrapped = await api.post(f"/repos/{REPO}/issues/1/labels", {"labels": ["bug"]})
    permission = await api.get(f"/repos/{REPO}/collaborators/mia/permission")

    assert (first[0], second[0], bad[0]) == (201, 200, 422)
    assert [label["name"] for label in labels[1]] == ["forge"]
    assert [label["name"] for label in wrapped[1]] == ["forge", "bug"]
    assert (permission[1]["permission"], permission[1]["role_name"]) == ("write", "maintain")
    assert (await api.get(f"/repos/{REPO}/collaborators/nobody/permission"))[0] == 404
    assert api.gh.actions == [
        f"o/r comment {comment.id}: react eyes",
        "o/r#1: add labels forge",
        "o/r#1: add labels bug",
    ]


async def test_contents(api: Api) -> None:
    api.gh.set_file(REPO, ".github/forge.yml", "agents: [claude]\n")
    api.gh.set_file(REPO, ".github/forge/templates/fix.md", "Fix it.\n")

    status, file, _ = await api.get(f"/repos/{REPO}/contents/.github/forge.yml?ref=main")
    listing = await api.get(f"/repos/{REPO}/contents/.github")

    assert status == 200 and file["encoding"] == "base64"
    assert base64.b64decode(file["content"]) == b"agents: [claude]\n"
    # Only what is directly inside, folders as "dir", as GitHub lists a folder.
    assert [(entry["path"], entry["type"]) for entry in listing[1]] == [
        (".github/forge", "dir"),
        (".github/forge.yml", "file"),
    ]
    assert (await api.get(f"/repos/{REPO}/contents/nope.txt"))[0] == 404
    missing_ref = await api.get(f"/repos/{REPO}/contents/.github/forge.yml?ref=nope")
    assert (missing_ref[0], missing_ref[1]["message"]) == (404, "No commit found for the ref nope")


async def test_comment_bodies_are_limited(api: Api) -> None:
    status, body, _ = await api.post(f"/repos/{REPO}/issues/1/comments", {"body": "x" * 65537})
    assert status == 422 and "too long" in body["errors"][0]["message"]
    assert (await api.post(f"/repos/{REPO}/issues/1/comments", {}))[0] == 422


async def test_app_jwt_and_installation_tokens(api: Api) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    api.gh.add_app(5, public.decode())
    api.gh.add_repo("o/other")
    api.gh.install(9, REPO)
    now = int(time.time())
    good = jwt.encode({"iat": now - 60, "exp": now + 300, "iss": "5"}, key, algorithm="RS256")
    too_long = jwt.encode({"iat": now, "exp": now + 3600, "iss": "5"}, key, algorithm="RS256")

    installation = await api.get(f"/repos/{REPO}/installation", auth=f"Bearer {good}")
    token = await api.post("/app/installations/9/access_tokens", {}, auth=f"Bearer {good}")
    assert (await api.get("/app", auth=f"Bearer {too_long}"))[0] == 401
    assert (await api.get(f"/repos/{REPO}/installation", auth=f"token {api.gh.token}"))[0] == 401

    assert installation[1]["id"] == 9 and installation[1]["access_tokens_url"].startswith(api.gh.url)
    assert token[0] == 201 and token[1]["token"].startswith("ghs_")
    assert time.strptime(token[1]["expires_at"], "%Y-%m-%dT%H:%M:%SZ") > time.gmtime(time.time() + 3500)
    scoped = f"token {token[1]['token']}"
    assert (await api.get(f"/repos/{REPO}/issues/1", auth=scoped))[0] == 200
    assert (await api.get("/repos/o/other", auth=scoped))[0] == 404  # outside the installation
    created = await api.post(f"/repos/{REPO}/issues/1/comments", {"body": "hi"}, auth=scoped)
    assert created[1]["user"]["login"] == "forgebot[bot]" and created[1]["user"]["type"] == "Bot"
    assert api.gh.jwts[0]["iss"] == "5" and api.gh.token_requests == [9]


async def test_request_log_and_actions(api: Api) -> None:
    await api.post(f"/repos/{REPO}/issues/1/comments", {"body": "a long\n\nbody " + "x" * 80})
    await api.get(f"/repos/{REPO}/issues/1/comments?per_page=5")

    lines = [json.loads(line) for line in api.gh.request_log().splitlines()]

    assert lines == [
        {"method": "POST", "path": f"/repos/{REPO}/issues/1/comments", "json": {"body": "a long\n\nbody " + "x" * 80},
         "status": 201},
        {"method": "GET", "path": f"/repos/{REPO}/issues/1/comments?per_page=5", "json": None, "status": 200},
    ]  # fmt: skip
    assert api.gh.actions == ["o/r#1: comment 'a long body " + "x" * 45 + "...'"]
    assert len(short("y" * 100)) == 60


async def test_a_handler_bug_is_a_500_and_recorded(api: Api) -> None:
    api.gh.repos[REPO].issues[1].labels = None  # type: ignore[assignment]  (state broken by a test)

    status, _, _ = await api.get(f"/repos/{REPO}/issues/1")

    assert status == 500 and "Traceback" in api.gh.errors[0]
    api.gh.errors.clear()


async def test_prefix_mount() -> None:
    async with FakeGitHub(prefix="api/v3") as gh, aiohttp.ClientSession() as session:
        gh.add_repo(REPO)
        headers = {"Authorization": f"token {gh.token}"}
        async with session.get(f"{gh.url}/repos/{REPO}", headers=headers) as inside:
            body = await inside.json()
        async with session.get(f"{gh.root}/repos/{REPO}", headers=headers) as outside:
            assert outside.status == 404
        async with session.post(f"{gh.root}/api/graphql", json={"query": "{}"}, headers=headers) as graphql:
            assert graphql.status == 200  # GitHub Enterprise: GraphQL beside the REST root
        gh.requests.pop()
        root = gh.root
    assert inside.status == 200 and body["url"] == f"{root}/api/v3/repos/{REPO}"
    assert [(r["path"], r["status"]) for r in gh.requests] == [(f"/repos/{REPO}", 200), (f"/repos/{REPO}", 404)]


def test_thread_variant_serves_synchronous_code(fake_github: FakeGitHub) -> None:
    import urllib.request

    fake_github.add_repo(REPO)
    request = urllib.request.Request(
        f"{fake_github.url}/repos/{REPO}", headers={"Authorization": "token " + fake_github.token}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.load(answer)["full_name"] == REPO
    with run_in_thread(prefix="/api/v3") as other:
        assert other.url.endswith("/api/v3") and other.url != fake_github.url


async def test_a_local_bare_repository_supplies_branches_and_files(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "source", {".github/forge.yml": "agents: [codex]\n", ".github/forge/t/a.md": "A"})
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    git(source, "push", "-q", str(bare), "HEAD:refs/heads/forge/1-claude")
    async with FakeGitHub() as gh, aiohttp.ClientSession() as session:
        api = Api(gh, session)
        gh.add_repo(REPO, clone_url=str(bare))
        gh.add_issue(REPO)

        file = await api.get(f"/repos/{REPO}/contents/.github/forge.yml?ref=forge/1-claude")
        folder = await api.get(f"/repos/{REPO}/contents/.github?ref=main")
        nested = await api.get(f"/repos/{REPO}/contents/.github/forge/t?ref=main")
        pull = await api.post(f"/repos/{REPO}/pulls", {"title": "T", "head": "forge/1-claude", "base": "main"})
        deleted = await api.call("DELETE", f"/repos/{REPO}/git/refs/heads/forge/1-claude")

    assert base64.b64decode(file[1]["content"]) == b"agents: [codex]\n"
    assert [(e["name"], e["type"]) for e in folder[1]] == [("forge", "dir"), ("forge.yml", "file")]
    assert [(e["path"], e["type"]) for e in nested[1]] == [(".github/forge/t/a.md", "file")]
    assert pull[0] == 201 and pull[1]["head"]["ref"] == "forge/1-claude"
    assert deleted[0] == 204
    assert git(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads") == "main"


async def test_concurrent_requests(api: Api) -> None:
    results = await asyncio.gather(
        *(api.post(f"/repos/{REPO}/issues/1/comments", {"body": f"c{n}"}) for n in range(10))
    )

    assert sorted(r[1]["id"] for r in results) == list(range(1, 11))

"""The dashboard's server side without a browser: the page and its headers, the session cookie, public reads,
GitHub links in task JSON and the `api` config section. (tests/test_dashboard_browser.py drives the page.)"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from forgebot.api.auth import SESSION_COOKIE
from forgebot.api.dashboard import FILES
from forgebot.api.links import github_json
from forgebot.api.settings import api_settings
from forgebot.config import ConfigError, Settings
from forgebot.store.bot import IssueTask
from tests.dashboard_support import WEB_URL, DashboardServer

STATIC = Path(__file__).parent.parent / "forgebot" / "api" / "static"
WRITE = {"X-Requested-With": "forgebot-dashboard"}


def _set_cookie(headers: object) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for value in headers.getall("Set-Cookie", []):  # type: ignore[attr-defined]
        cookie.load(value)
    return cookie


async def test_page_and_files_carry_a_strict_content_security_policy(tmp_path: Path) -> None:
    async with DashboardServer.start(tmp_path) as server, server.client() as http:
        for path, (_, content_type) in FILES.items():
            async with http.get(path) as answer:
                assert answer.status == 200
                assert answer.content_type == content_type
                csp = answer.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "default-src 'none'" in csp
                assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
                assert answer.headers["X-Content-Type-Options"] == "nosniff"
                assert answer.headers["X-Frame-Options"] == "DENY"
        async with http.get("/") as answer:
            page = await answer.text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts), "no inline script"
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]  # type: ignore[union-attr]
    assert sources == ["static/render.js", "static/dashboard.js"]  # dashboard.js uses what render.js defines
    assert all(f"/{source}" in FILES for source in sources)
    assert "style=" not in page, "no inline styles either: style-src is 'self'"


@pytest.mark.parametrize("name", ["render.js", "dashboard.js"])
def test_the_scripts_never_parse_text_as_html(name: str) -> None:
    script = (STATIC / name).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, f"{name} uses {sink}"


async def test_a_token_becomes_an_httponly_strict_cookie_that_the_api_accepts(tmp_path: Path) -> None:
    async with DashboardServer.start(tmp_path) as server:
        secret = server.token("dash")
        async with server.client() as http:
            async with http.get("/api/v1/tasks") as answer:
                assert answer.status == 401
            async with http.get("/api/v1/session") as answer:
                assert await answer.json() == {"authenticated": False, "token": None, "public": False}
            async with http.post("/api/v1/session", json={"token": "fgb_not-a-token"}) as answer:
                assert answer.status == 401
                assert "Set-Cookie" not in answer.headers
            async with http.post("/api/v1/session", json={"token": secret}) as answer:
                assert answer.status == 200
                assert await answer.json() == {"authenticated": True, "token": "dash", "public": False}
                morsel = _set_cookie(answer.headers)[SESSION_COOKIE]
                assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
                assert secret not in await answer.text(), "the secret goes into the cookie only"
            async with http.get("/api/v1/tasks") as answer:
                assert answer.status == 200
            async with http.get("/api/v1/session") as answer:
                assert (await answer.json())["token"] == "dash"
            body = {"title": "by cookie", "repo": str(server.repo), "agents": ["steady"], "start": False}
            async with http.post("/api/v1/tasks", json=body) as answer:
                assert answer.status == 403, "a cookie write without the dashboard's header could be a forged form"
                assert "X-Requested-With" in (await answer.json())["error"]["message"]
            async with http.post("/api/v1/tasks", json=body, headers=WRITE) as answer:
                assert answer.status == 201
            async with http.delete("/api/v1/session") as answer:
                assert answer.status == 200
                assert _set_cookie(answer.headers)[SESSION_COOKIE].value == ""
            async with http.get("/api/v1/tasks") as answer:
                assert answer.status == 401


async def test_a_revoked_token_ends_the_session(tmp_path: Path) -> None:
    async with DashboardServer.start(tmp_path) as server:
        secret = server.token("short-lived")
        async with server.client() as http:
            async with http.post("/api/v1/session", json={"token": secret}) as answer:
                assert answer.status == 200
            server.ctx.tokens.revoke("short-lived")
            async with http.get("/api/v1/tasks") as answer:
                assert answer.status == 401
                assert "sign in again" in (await answer.json())["error"]["message"]
            async with http.get("/api/v1/session") as answer:
                assert (await answer.json())["authenticated"] is False


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [(b"not json", 400, "JSON"), (b'{"token": ""}', 422, "token"), (b'{"secret": "x"}', 422, "token")],
)
async def test_a_bad_sign_in_body_is_refused_and_names_the_problem(
    tmp_path: Path, body: bytes, status: int, named: str
) -> None:
    json_type = {"Content-Type": "application/json"}
    async with (
        DashboardServer.start(tmp_path) as server,
        server.client() as http,
        http.post("/api/v1/session", data=body, headers=json_type) as answer,
    ):
        assert answer.status == status
        assert named in (await answer.json())["error"]["message"]
        assert "Set-Cookie" not in answer.headers


async def test_public_dashboard_reads_without_a_token_but_writes_need_one(tmp_path: Path) -> None:
    async with DashboardServer.start(tmp_path, public=True) as server:
        task = await server.create_task(server.token("writer"), "visible to all", ["sleeper"])
        async with server.client() as http:
            async with http.get("/api/v1/session") as answer:
                assert await answer.json() == {"authenticated": False, "token": None, "public": True}
            async with http.get("/api/v1/tasks") as answer:
                assert answer.status == 200
                assert [t["title"] for t in (await answer.json())["tasks"]] == ["visible to all"]
            async with http.get("/api/v1/events") as answer:
                assert answer.status == 200
                assert answer.content_type == "text/event-stream"
                assert await answer.content.readline() == b": subscribed\n"
            async with http.post(f"/api/v1/tasks/{task['id']}/cancel", headers=WRITE) as answer:
                assert answer.status == 401
            # A stale cookie on a public dashboard still reads (as the public), and still cannot write.
            http.cookie_jar.update_cookies({SESSION_COOKIE: "fgb_revoked-or-unknown"})
            async with http.get(f"/api/v1/tasks/{task['id']}") as answer:
                assert answer.status == 200
            async with http.post(f"/api/v1/tasks/{task['id']}/cancel", headers=WRITE) as answer:
                assert answer.status == 401
        attempts = await server.engine.attempts(task["id"])
        assert all(not a.status.terminal for a in attempts), "nothing was cancelled"


async def test_the_public_cannot_make_the_server_look_at_paths(tmp_path: Path) -> None:
    """Naming a repository runs git in it: the public reader gets the same 401 for every path, which tells it
    nothing about the server's file system."""
    async with DashboardServer.start(tmp_path, public=True) as server, server.client() as http:
        answers = []
        for repo in (str(server.repo), "/etc", "/no/such/path", "relative"):
            async with http.get("/api/v1/templates", params={"repo": repo}) as answer:
                answers.append((answer.status, await answer.json()))
        assert answers[0][0] == 401 and answers[0][1]["error"]["code"] == "unauthorized"
        assert all(a == answers[0] for a in answers), answers
        async with server.client(server.token("reader")) as http, http.get(
            "/api/v1/templates", params={"repo": str(server.repo)}
        ) as answer:
            assert answer.status == 200


async def test_tasks_from_issues_carry_their_issue_pr_and_branch_links(tmp_path: Path) -> None:
    async with DashboardServer.start(tmp_path) as server:
        token = server.token("links")
        linked = await server.create_task(token, "from an issue", ["steady"])
        plain = await server.create_task(token, "from the API", ["steady"])
        server.link_issue(linked["id"], issue=7, pr=12)
        async with server.client(token) as http:
            async with http.get(f"/api/v1/tasks/{linked['id']}") as answer:
                github = (await answer.json())["github"]
            async with http.get("/api/v1/tasks") as answer:
                listed = {t["id"]: t["github"] for t in (await answer.json())["tasks"]}
    assert github == {
        "repo": "acme/widgets",
        "issue": 7,
        "issue_url": f"{WEB_URL}/acme/widgets/issues/7",
        "pr": 12,
        "pr_url": f"{WEB_URL}/acme/widgets/pull/12",
        "pr_state": "open",
        "tree_url": f"{WEB_URL}/acme/widgets/tree/",
        "requester": "alice",
    }
    assert listed == {linked["id"]: github, plain["id"]: None}


def test_github_json_without_a_pull_request_yet() -> None:
    link = IssueTask(task_id=1, repo="o/r", issue=3, requester="bob", created_at=0.0)
    body = github_json(link, "https://ghe.example/")
    assert body["issue_url"] == "https://ghe.example/o/r/issues/3"
    assert body["pr"] is None and body["pr_url"] is None


def test_api_settings_from_the_file_and_the_environment() -> None:
    assert api_settings(Settings(), {}).dashboard_public is False
    assert api_settings(Settings.model_validate({"api": {"dashboard_public": True}}), {}).dashboard_public is True
    assert api_settings(Settings(), {"FORGEBOT_API_DASHBOARD_PUBLIC": "true"}).dashboard_public is True
    with pytest.raises(ConfigError, match=r"environment FORGEBOT_API_DASHBOARD_PUBLIC"):
        api_settings(Settings(), {"FORGEBOT_API_DASHBOARD_PUBLIC": "sometimes"})
    with pytest.raises(ConfigError, match=r"api\.dashboard_publik"):
        api_settings(Settings.model_validate({"api": {"dashboard_publik": True}}), {})

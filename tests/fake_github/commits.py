"""More of the fake's endpoints: a commit's checks (combined status and check runs), the authenticated user, and
the one GraphQL mutation forgebot sends (mark a draft pull request ready for review).

Shapes follow GitHub's: the combined status of a commit without statuses is "pending" with `total_count` 0; a
GraphQL error comes back with HTTP 200 and an `errors` list (a `NOT_FOUND` type for an unknown node id).
"""

from __future__ import annotations

import re
from typing import Any

from tests.fake_github.handlers import ApiError, Call, Handler, Handlers, R, Reply
from tests.fake_github.state import CheckRun, Issue, Repo, now_iso

_FAILED_STATUSES = ("failure", "error")
_READY = "markPullRequestReadyForReview"
_NODE_RE = re.compile(r"PR_(\d+)_(\d+)")


def _commit(h: Handlers, call: Call) -> tuple[Repo, str]:
    repo = h.repo(call)
    sha = repo.resolve(call.params["ref"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {call.params['ref']}")
    return repo, sha


def combined_status(h: Handlers, call: Call) -> Reply:
    repo, sha = _commit(h, call)
    statuses = [c for c in repo.checks.get(sha, []) if c.status is None]
    states = {s.conclusion for s in statuses}
    if states & set(_FAILED_STATUSES):
        state = "failure"
    elif "pending" in states or not statuses:
        state = "pending"
    else:
        state = "success"
    api = f"{h.shapes.api}/repos/{repo.full_name}"
    body = {
        "state": state,
        "statuses": [_status(h, repo, s) for s in statuses],
        "sha": sha,
        "total_count": len(statuses),
        "repository": {"id": repo.id, "full_name": repo.full_name, "url": api},
        "commit_url": f"{api}/commits/{sha}",
        "url": f"{api}/commits/{sha}/status",
    }
    return Reply(200, body)


def _status(h: Handlers, repo: Repo, status: CheckRun) -> dict[str, Any]:
    return {
        "id": status.id,
        "node_id": f"SC_{status.id}",
        "url": f"{h.shapes.api}/repos/{repo.full_name}/statuses/{status.id}",
        "state": status.conclusion,
        "description": None,
        "target_url": None,
        "context": status.name,
        "created_at": now_iso(),
        "updated_at": now_iso(),
    }


def check_runs(h: Handlers, call: Call) -> Reply:
    repo, sha = _commit(h, call)
    runs = [c for c in repo.checks.get(sha, []) if c.status is not None]
    return Reply(200, {"total_count": len(runs), "check_runs": [_run(h, repo, sha, r) for r in runs]})


def _run(h: Handlers, repo: Repo, sha: str, run: CheckRun) -> dict[str, Any]:
    html = f"{h.shapes.web}/{repo.full_name}/runs/{run.id}"
    completed = run.status == "completed"
    return {
        "id": run.id,
        "node_id": f"CR_{run.id}",
        "head_sha": sha,
        "external_id": "",
        "url": f"{h.shapes.api}/repos/{repo.full_name}/check-runs/{run.id}",
        "html_url": html,
        "details_url": html,
        "status": run.status,
        "conclusion": run.conclusion if completed else None,
        "started_at": now_iso(),
        "completed_at": now_iso() if completed else None,
        "name": run.name,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0, "annotations_url": ""},
        "check_suite": {"id": run.id},
        "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        "pull_requests": [],
    }


def authenticated_user(h: Handlers, call: Call) -> Reply:
    if call.principal.installation_id is not None:
        raise ApiError(403, "Resource not accessible by integration")
    return Reply(200, h.shapes.user(call.principal.login))


def graphql(h: Handlers, call: Call) -> Reply:
    """Only `markPullRequestReadyForReview` (what PyGithub's PullRequest.mark_ready_for_review sends)."""
    body = call.body if isinstance(call.body, dict) else {}
    query = str(body.get("query") or "")
    if _READY not in query:
        return _graphql_error("fake GitHub: only the markPullRequestReadyForReview mutation is implemented")
    variables = body.get("variables") or {}
    node = str((variables.get("input") or {}).get("pullRequestId") or "")
    issue = _pull_by_node(h, call, node)
    if issue is None:
        return _graphql_error(f"Could not resolve to a node with the global id of '{node}'.", "NOT_FOUND")
    assert issue.pull is not None
    if issue.pull.draft:
        issue.pull.draft = False
        repo = next(r for r in h.state.repos.values() if r.issues.get(issue.number) is issue)
        h.state.act(f"{repo.full_name}#{issue.number}: ready for review")
    mutation_id = (variables.get("input") or {}).get("clientMutationId")
    result = {"clientMutationId": mutation_id, "pullRequest": {"isDraft": issue.pull.draft}}
    return Reply(200, {"data": {_READY: result}})


def _pull_by_node(h: Handlers, call: Call, node: str) -> Issue | None:
    found = _NODE_RE.fullmatch(node)
    if found is None:
        return None
    repo = next((r for r in h.state.repos.values() if r.id == int(found[1])), None)
    if repo is None:
        return None
    installation = call.principal.installation_id
    if installation is not None and repo.installation_id != installation:
        return None  # an installation token sees only its installation's repositories
    issue = repo.issues.get(int(found[2]))
    return issue if issue is not None and issue.pull is not None else None


def _graphql_error(message: str, kind: str | None = None) -> Reply:
    error: dict[str, Any] = {"message": message, "locations": [{"line": 1, "column": 1}], "path": [_READY]}
    if kind:
        error["type"] = kind
    return Reply(200, {"data": {_READY: None} if kind else None, "errors": [error]})


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", R + r"/commits/(?P<ref>.+)/status", combined_status, "token"),
    ("GET", R + r"/commits/(?P<ref>.+)/check-runs", check_runs, "token"),
    ("GET", r"/user", authenticated_user, "token"),
    ("POST", r"/graphql", graphql, "token"),
]

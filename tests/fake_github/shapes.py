"""JSON bodies in GitHub's REST shapes (a useful subset of each object's fields), every URL on the fake's base.

`api` is the API root (`http://127.0.0.1:PORT` or `.../api/v3`), `web` the root of the `html_url`s.
"""

from __future__ import annotations

import base64
import hashlib
import time
import zlib
from typing import Any

from tests.fake_github.state import App, Comment, GitHubState, Installation, Issue, Reaction, Repo, now_iso

JSON = dict[str, Any]


class Shapes:
    def __init__(self, state: GitHubState, api: str, web: str) -> None:
        self.state = state
        self.api = api
        self.web = web

    def user(self, login: str) -> JSON:
        return {
            "login": login,
            "id": self.state.user_id(login),
            "node_id": f"U_{login}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
            "url": f"{self.api}/users/{login}",
            "html_url": f"{self.web}/{login}",
        }

    def repo(self, repo: Repo) -> JSON:
        api = f"{self.api}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name,
            "owner": self.user(repo.owner),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "fork": False,
            "archived": False,
            "default_branch": repo.default_branch,
            "allow_squash_merge": repo.allow_squash_merge,
            "allow_merge_commit": repo.allow_merge_commit,
            "allow_rebase_merge": repo.allow_rebase_merge,
            "url": api,
            "html_url": f"{self.web}/{repo.full_name}",
            "clone_url": repo.clone_url or f"{self.web}/{repo.full_name}.git",
            "issues_url": api + "/issues{/number}",
            "pulls_url": api + "/pulls{/number}",
        }

    def label(self, repo: Repo, name: str) -> JSON:
        return {
            "id": zlib.crc32(f"{repo.full_name}:{name}".encode()),
            "node_id": f"LA_{name}",
            "url": f"{self.api}/repos/{repo.full_name}/labels/{name}",
            "name": name,
            "color": repo.labels.get(name, "ededed"),
            "default": False,
            "description": None,
        }

    def issue(self, repo: Repo, issue: Issue) -> JSON:
        api = f"{self.api}/repos/{repo.full_name}/issues/{issue.number}"
        data: JSON = {
            "id": repo.id * 100000 + issue.number,
            "node_id": f"I_{repo.id}_{issue.number}",
            "url": api,
            "repository_url": f"{self.api}/repos/{repo.full_name}",
            "comments_url": f"{api}/comments",
            "labels_url": api + "/labels{/name}",
            "html_url": f"{self.web}/{repo.full_name}/{'pull' if issue.pull else 'issues'}/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self.label(repo, name) for name in issue.labels],
            "locked": False,
            "comments": len(repo.comment_list(issue.number)),
            "created_at": issue.created_at,
            "updated_at": issue.created_at,
            "closed_at": None,
            "author_association": "OWNER" if issue.user == repo.owner else "CONTRIBUTOR",
        }
        if issue.pull is not None:
            pull_api = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
            html = f"{self.web}/{repo.full_name}/pull/{issue.number}"
            data["pull_request"] = {"url": pull_api, "html_url": html, "diff_url": html + ".diff"}
        return data

    def pull(self, repo: Repo, issue: Issue) -> JSON:
        pull = issue.pull
        assert pull is not None
        api = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
        issue_api = f"{self.api}/repos/{repo.full_name}/issues/{issue.number}"
        return {
            "id": repo.id * 100000 + issue.number,
            "node_id": f"PR_{repo.id}_{issue.number}",
            "url": api,
            "html_url": f"{self.web}/{repo.full_name}/pull/{issue.number}",
            "issue_url": issue_api,
            "comments_url": f"{issue_api}/comments",
            "commits_url": f"{api}/commits",
            "number": issue.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self.label(repo, name) for name in issue.labels],
            "created_at": issue.created_at,
            "updated_at": issue.created_at,
            "requested_reviewers": [self.user(login) for login in pull.requested_reviewers],
            "requested_teams": [],
            "head": self._end(repo, pull.head, repo.head_sha(pull)),
            "base": self._end(repo, pull.base, "1" * 40),
            "draft": pull.draft,
            "merged": pull.merged,
            "merged_at": pull.merged_at,
            "mergeable": pull.mergeable and not pull.merged,
            "mergeable_state": "clean" if pull.mergeable else "dirty",
            "merge_commit_sha": "2" * 40 if pull.merged else None,
            "maintainer_can_modify": False,
        }

    def pull_simple(self, repo: Repo, issue: Issue) -> JSON:
        """A pull request as lists show it: without merged, mergeable and the other computed fields."""
        data = self.pull(repo, issue)
        for key in ("merged", "mergeable", "mergeable_state", "maintainer_can_modify"):
            data.pop(key)
        return data

    def _end(self, repo: Repo, ref: str, sha: str) -> JSON:
        return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": self.user(repo.owner)}

    def comment(self, repo: Repo, comment: Comment) -> JSON:
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}",
            "html_url": f"{self.web}/{repo.full_name}/issues/{comment.issue}#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{repo.full_name}/issues/{comment.issue}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": "OWNER" if comment.user == repo.owner else "NONE",
        }

    def reaction(self, reaction: Reaction) -> JSON:
        return {
            "id": reaction.id,
            "node_id": f"REA_{reaction.id}",
            "user": self.user(reaction.user),
            "content": reaction.content,
            "created_at": now_iso(),
        }

    def permission(self, repo: Repo, login: str, role: str) -> JSON:
        # `permission` holds the legacy base roles: maintain reads as write and triage as read; `role_name` is exact.
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        return {"permission": legacy, "role_name": role, "user": self.user(login)}

    def content(self, repo: Repo, ref: str, path: str, text: str) -> JSON:
        raw = text.encode()
        encoded = base64.b64encode(raw).decode()
        api = f"{self.api}/repos/{repo.full_name}/contents/{path}?ref={ref}"
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n",
            "sha": hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest(),  # the git blob id
            "url": api,
            "html_url": f"{self.web}/{repo.full_name}/blob/{ref}/{path}",
            "_links": {"self": api, "html": f"{self.web}/{repo.full_name}/blob/{ref}/{path}"},
        }

    def dir_entry(self, repo: Repo, ref: str, path: str, kind: str = "file") -> JSON:
        data = self.content(repo, ref, path, "")
        for key in ("content", "encoding"):
            data.pop(key)
        data["type"] = kind
        return data

    def installation(self, installation: Installation) -> JSON:
        app = self.state.apps[installation.app_id]
        return {
            "id": installation.id,
            "app_id": app.id,
            "app_slug": app.slug,
            "account": self.user(installation.account),
            "target_type": "Organization",
            "repository_selection": "selected",
            "access_tokens_url": f"{self.api}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web}/organizations/{installation.account}/settings/installations/{installation.id}",
            "permissions": {"issues": "write", "pull_requests": "write", "contents": "write", "metadata": "read"},
            "events": ["issues", "issue_comment", "pull_request"],
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }

    def app(self, app: App) -> JSON:
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": f"A_{app.id}",
            "name": app.slug,
            "owner": self.user("octo"),
            "html_url": f"{self.web}/apps/{app.slug}",
            "permissions": {"issues": "write", "pull_requests": "write", "contents": "write", "metadata": "read"},
            "events": ["issues", "issue_comment", "pull_request"],
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }

    def rate_limit(self) -> JSON:
        core = {"limit": 5000, "used": 1, "remaining": 4999, "reset": int(time.time()) + 3600}
        return {"resources": {"core": core, "search": {**core, "limit": 30, "remaining": 29}}, "rate": core}

    def root(self) -> JSON:
        return {
            "current_user_url": f"{self.api}/user",
            "repository_url": self.api + "/repos/{owner}/{repo}",
            "rate_limit_url": f"{self.api}/rate_limit",
            "issues_url": f"{self.api}/issues",
        }

"""The REST endpoints: a routing table and one small function per operation.

Handlers are synchronous: they read and change `GitHubState`, append readable lines to its action log and return a
`Reply`, or raise `ApiError` for GitHub's error shape (`{"message": ..., "documentation_url": ...}`).
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fake_github.hooks import shape as delivery_shape
from tests.fake_github.shapes import JSON, Shapes
from tests.fake_github.state import REACTIONS, Comment, GitHubState, Issue, Pull, Reaction, Repo, Token, now_iso, short

DOCS = "https://docs.github.com/rest"
# merge_method -> the repository setting that allows it, and how GitHub names it when it does not
_ALLOWED = {
    "merge": ("allow_merge_commit", "Merge commits"),
    "squash": ("allow_squash_merge", "Squash merges"),
    "rebase": ("allow_rebase_merge", "Rebase merges"),
}
MAX_COMMENT = 65536


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[JSON] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def body(self) -> JSON:
        data: JSON = {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}
        if self.errors:
            data["errors"] = self.errors
        return data


def _number(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() else default


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as: a token (user or installation) or an App (JWT)."""

    login: str
    token: Token | None = None
    app_id: int | None = None

    @property
    def installation_id(self) -> int | None:
        return self.token.installation_id if self.token else None


@dataclass
class Call:
    method: str
    path: str  # below the API root, without the query string
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    principal: Principal


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["Handlers", Call], Reply]
R = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


class Handlers:
    def __init__(self, state: GitHubState, shapes: Shapes) -> None:
        self.state = state
        self.shapes = shapes

    # ---- helpers

    def repo(self, call: Call) -> Repo:
        repo = self.state.repos.get(f"{call.params['owner']}/{call.params['name']}")
        installation = call.principal.installation_id
        if repo is None or (installation is not None and repo.installation_id != installation):
            raise not_found()  # an installation token sees only the installation's repositories
        return repo

    def issue(self, call: Call, repo: Repo) -> Issue:
        issue = repo.issues.get(int(call.params["number"]))
        if issue is None:
            raise not_found()
        return issue

    def pull(self, call: Call, repo: Repo) -> tuple[Issue, Pull]:
        issue = self.issue(call, repo)
        if issue.pull is None:
            raise not_found()
        return issue, issue.pull

    def comment(self, call: Call, repo: Repo) -> Comment:
        comment = repo.comments.get(int(call.params["id"]))
        if comment is None:
            raise not_found()
        return comment

    @staticmethod
    def arg(call: Call, name: str, kind: type = str, required: bool = True) -> Any:
        body = call.body if isinstance(call.body, dict) else {}
        if name not in body:
            if required:
                raise ApiError(422, "Validation Failed", [{"resource": "Body", "field": name, "code": "missing_field"}])
            return None
        if not isinstance(body[name], kind):
            raise ApiError(422, f"Invalid request.\n\nFor '{name}', {body[name]!r} is not a {kind.__name__}.")
        return body[name]

    def paginate(self, call: Call, items: list[JSON]) -> Reply:
        per_page = min(max(_number(call.query.get("per_page"), 30), 1), 100)  # GitHub ignores junk values
        page = max(_number(call.query.get("page"), 1), 1)
        last = max(math.ceil(len(items) / per_page), 1)
        links = []
        for rel, target in (("prev", page - 1), ("next", page + 1), ("last", last), ("first", 1)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                query = urllib.parse.urlencode({**call.query, "page": target, "per_page": per_page})
                links.append(f'<{self.shapes.api}{call.path}?{query}>; rel="{rel}"')
        headers = {"Link": ", ".join(links)} if links else {}
        return Reply(200, items[(page - 1) * per_page : page * per_page], headers)

    def react(self, reactions: list[Reaction], call: Call) -> tuple[Reply, bool]:
        content = self.arg(call, "content")
        if content not in REACTIONS:
            raise ApiError(422, "Validation Failed", [{"resource": "Reaction", "field": "content", "code": "invalid"}])
        for reaction in reactions:
            if reaction.user == call.principal.login and reaction.content == content:
                return Reply(200, self.shapes.reaction(reaction)), False
        reaction = Reaction(self.state.next_id("reaction"), call.principal.login, content)
        reactions.append(reaction)
        return Reply(201, self.shapes.reaction(reaction)), True

    # ---- meta and apps

    def root(self, call: Call) -> Reply:
        return Reply(200, self.shapes.root())

    def rate_limit(self, call: Call) -> Reply:
        return Reply(200, self.shapes.rate_limit())

    def get_app(self, call: Call) -> Reply:
        assert call.principal.app_id is not None
        return Reply(200, self.shapes.app(self.state.apps[call.principal.app_id]))

    def repo_installation(self, call: Call) -> Reply:
        repo = self.repo(call)
        installation = self.state.installations.get(repo.installation_id or -1)
        if installation is None or installation.app_id != call.principal.app_id:
            raise not_found()
        return Reply(200, self.shapes.installation(installation))

    def create_token(self, call: Call) -> Reply:
        installation = self.state.installations.get(int(call.params["id"]))
        if installation is None or installation.app_id != call.principal.app_id:
            raise not_found()
        expires = int(time.time() + self.state.token_lifetime)
        slug = self.state.apps[installation.app_id].slug
        token = Token(f"ghs_{secrets.token_hex(18)}", f"{slug}[bot]", installation.id, float(expires))
        self.state.tokens[token.value] = token
        self.state.token_requests.append(installation.id)
        body = {"token": token.value, "expires_at": now_iso(expires), "repository_selection": "selected"}
        return Reply(201, {**body, "permissions": {"issues": "write", "pull_requests": "write", "contents": "write"}})

    def list_hook_deliveries(self, call: Call) -> Reply:
        """Newest first, cursor-paginated like GitHub (`cursor` names the last delivery of the previous page)."""
        per_page = min(max(_number(call.query.get("per_page"), 30), 1), 100)
        ordered = sorted(self.state.hook_deliveries, key=lambda d: (d.delivered_at, d.id), reverse=True)
        cursor = call.query.get("cursor", "")
        if cursor:
            ids = [f"v1_{d.id}" for d in ordered]
            if cursor not in ids:
                raise ApiError(400, "Bad Request: invalid cursor")
            ordered = ordered[ids.index(cursor) + 1 :]
        page = ordered[:per_page]
        headers = {}
        if len(ordered) > per_page:
            query = urllib.parse.urlencode({"per_page": per_page, "cursor": f"v1_{page[-1].id}"})
            headers["Link"] = f'<{self.shapes.api}{call.path}?{query}>; rel="next"'
        return Reply(200, [delivery_shape(d, now_iso(d.delivered_at)) for d in page], headers)

    def redeliver_hook_delivery(self, call: Call) -> Reply:
        original = next((d for d in self.state.hook_deliveries if d.id == int(call.params["id"])), None)
        if original is None:
            raise not_found()
        again = self.state.add_hook_delivery(
            original.event,
            original.payload,
            status_code=0,
            guid=original.guid,
            redelivery=True,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
        )
        self.state.outbox.append(again)
        self.state.act(f"app: redeliver {original.event} {original.guid}")
        return Reply(202, {})

    # ---- repositories, files, refs

    def get_repo(self, call: Call) -> Reply:
        return Reply(200, self.shapes.repo(self.repo(call)))

    def permission(self, call: Call) -> Reply:
        repo = self.repo(call)
        role = repo.permissions.get(call.params["user"])
        if role is None:
            raise ApiError(404, f"{call.params['user']} is not a user")
        return Reply(200, self.shapes.permission(repo, call.params["user"], role))

    def contents(self, call: Call) -> Reply:
        repo = self.repo(call)
        ref = call.query.get("ref") or repo.default_branch
        path = call.params["path"].strip("/")
        if ref not in repo.branch_names() and not any(r == ref for r, _ in repo.files):
            raise ApiError(404, f"No commit found for the ref {ref}")
        text = repo.file(ref, path)
        if text is not None:
            return Reply(200, self.shapes.content(repo, ref, path, text))
        entries = repo.dir_entries(ref, path)
        if not entries:
            raise not_found()
        return Reply(200, [self.shapes.dir_entry(repo, ref, p, kind) for p, kind in entries])

    def get_ref(self, call: Call) -> Reply:
        repo = self.repo(call)
        ref = call.params["ref"]
        if not ref.startswith("heads/") or ref[len("heads/") :] not in repo.branch_names():
            raise not_found()
        url = f"{self.shapes.api}/repos/{repo.full_name}/git/refs/{ref}"
        return Reply(200, {"ref": f"refs/{ref}", "url": url, "object": {"type": "commit", "sha": "0" * 40}})

    def delete_ref(self, call: Call) -> Reply:
        repo = self.repo(call)
        ref = call.params["ref"]
        if not ref.startswith("heads/") or not repo.delete_branch(ref[len("heads/") :]):
            raise ApiError(422, "Reference does not exist")
        self.state.act(f"{repo.full_name}: delete branch {ref[len('heads/') :]}")
        return Reply(204)

    # ---- issues, comments, labels, reactions

    def get_issue(self, call: Call) -> Reply:
        repo = self.repo(call)
        return Reply(200, self.shapes.issue(repo, self.issue(call, repo)))

    def list_comments(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue = self.issue(call, repo)
        return self.paginate(call, [self.shapes.comment(repo, c) for c in repo.comment_list(issue.number)])

    def create_comment(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue = self.issue(call, repo)
        body = self.arg(call, "body")
        if len(body) > MAX_COMMENT:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ],
            )
        comment = Comment(self.state.next_id("comment"), repo.full_name, issue.number, body, call.principal.login)
        repo.comments[comment.id] = comment
        self.state.act(f"{repo.full_name}#{issue.number}: comment '{short(body)}'")
        return Reply(201, self.shapes.comment(repo, comment))

    def get_comment(self, call: Call) -> Reply:
        repo = self.repo(call)
        return Reply(200, self.shapes.comment(repo, self.comment(call, repo)))

    def edit_comment(self, call: Call) -> Reply:
        repo = self.repo(call)
        comment = self.comment(call, repo)
        comment.body = self.arg(call, "body")
        comment.updated_at = now_iso()
        self.state.act(f"{repo.full_name}#{comment.issue}: edit comment {comment.id}")
        return Reply(200, self.shapes.comment(repo, comment))

    def react_to_comment(self, call: Call) -> Reply:
        repo = self.repo(call)
        comment = self.comment(call, repo)
        reply, new = self.react(comment.reactions, call)
        if new:
            self.state.act(f"{repo.full_name} comment {comment.id}: react {reply.body['content']}")
        return reply

    def react_to_issue(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue = self.issue(call, repo)
        reply, new = self.react(issue.reactions, call)
        if new:
            self.state.act(f"{repo.full_name}#{issue.number}: react {reply.body['content']}")
        return reply

    def add_labels(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue = self.issue(call, repo)
        raw = call.body.get("labels") if isinstance(call.body, dict) else call.body  # PyGithub sends a bare list
        if not isinstance(raw, list):
            raise ApiError(422, "Invalid request.\n\nFor 'labels', a list of label names is required.")
        names = [item["name"] if isinstance(item, dict) else str(item) for item in raw]
        added = [name for name in dict.fromkeys(names) if name not in issue.labels]
        for name in added:
            repo.labels.setdefault(name, "ededed")
            issue.labels.append(name)
        if added:
            self.state.act(f"{repo.full_name}#{issue.number}: add labels {', '.join(added)}")
        return Reply(200, [self.shapes.label(repo, name) for name in issue.labels])

    # ---- pull requests

    def list_pulls(self, call: Call) -> Reply:
        repo = self.repo(call)
        state = call.query.get("state", "open")
        head = call.query.get("head")
        base = call.query.get("base")
        found = [
            issue
            for issue in repo.issues.values()
            if issue.pull is not None
            and state in ("all", issue.state)
            and (head is None or head in (f"{repo.owner}:{issue.pull.head}", issue.pull.head))
            and (base is None or base == issue.pull.base)
        ]
        found.sort(key=lambda i: i.number, reverse=call.query.get("direction", "desc") == "desc")
        return self.paginate(call, [self.shapes.pull_simple(repo, issue) for issue in found])

    def create_pull(self, call: Call) -> Reply:
        repo = self.repo(call)
        head = self.arg(call, "head").split(":")[-1]
        base = self.arg(call, "base")
        title = self.arg(call, "title", required=False) or ""
        branches = repo.branch_names()
        for name, branch in (("head", head), ("base", base)):
            if branch not in branches:
                raise ApiError(
                    422, "Validation Failed", [{"resource": "PullRequest", "field": name, "code": "invalid"}]
                )
        for issue in repo.issues.values():
            if issue.pull and issue.state == "open" and (issue.pull.head, issue.pull.base) == (head, base):
                message = f"A pull request already exists for {repo.owner}:{head}."
                raise ApiError(
                    422, "Validation Failed", [{"resource": "PullRequest", "code": "custom", "message": message}]
                )
        draft = bool(self.arg(call, "draft", bool, required=False))
        issue = Issue(repo.next_number(), title, self.arg(call, "body", required=False) or "", call.principal.login)
        issue.pull = Pull(head, base, draft)
        issue.pull.head_sha = repo.resolve(head) or issue.pull.head_sha
        repo.issues[issue.number] = issue
        kind = " (draft)" if draft else ""
        self.state.act(f"{repo.full_name}: open PR #{issue.number} {head} -> {base}{kind} '{short(title)}'")
        return Reply(201, self.shapes.pull(repo, issue))

    def get_pull(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue, _ = self.pull(call, repo)
        return Reply(200, self.shapes.pull(repo, issue))

    def edit_pull(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue, pull = self.pull(call, repo)
        body = call.body if isinstance(call.body, dict) else {}
        changed = [key for key in ("title", "body", "state", "base") if key in body]
        for key in changed:
            if key == "base":
                pull.base = body[key]
            else:
                setattr(issue, key, body[key])
        self.state.act(f"{repo.full_name}#{issue.number}: edit PR ({', '.join(changed)})")
        return Reply(200, self.shapes.pull(repo, issue))

    def request_reviewers(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue, pull = self.pull(call, repo)
        reviewers = self.arg(call, "reviewers", list, required=False) or []
        for login in reviewers:
            if repo.permissions.get(login, "none") in ("none", "read", "triage"):
                raise ApiError(
                    422,
                    "Reviews may only be requested from collaborators. "
                    "One or more of the users or teams you specified is not a collaborator "
                    f"of the {repo.full_name} repository.",
                )
        added = [login for login in reviewers if login not in pull.requested_reviewers]
        pull.requested_reviewers.extend(added)
        if added:
            self.state.act(f"{repo.full_name}#{issue.number}: request review {', '.join(added)}")
        return Reply(201, self.shapes.pull(repo, issue))

    def merge_pull(self, call: Call) -> Reply:
        repo = self.repo(call)
        issue, pull = self.pull(call, repo)
        method = self.arg(call, "merge_method", required=False) or "merge"
        if method not in ("merge", "squash", "rebase"):
            raise ApiError(422, "Invalid request.\n\nmerge_method must be merge, squash or rebase.")
        if pull.merged or issue.state != "open" or not pull.mergeable:
            raise ApiError(405, "Pull Request is not mergeable")
        if pull.draft:
            raise ApiError(405, "Pull Request is still a draft")
        if not getattr(repo, _ALLOWED[method][0]):
            raise ApiError(405, f"{_ALLOWED[method][1]} are not allowed on this repository.")
        sha = self.arg(call, "sha", required=False)
        if sha is not None and sha != repo.head_sha(pull):
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        repo.head_sha(pull)  # the merged head stays what it was
        pull.merged, pull.merged_at, pull.merge_method, issue.state = True, now_iso(), method, "closed"
        self.state.act(f"{repo.full_name}#{issue.number}: merge PR ({method})")
        return Reply(200, {"sha": "2" * 40, "merged": True, "message": "Pull Request successfully merged"})


# (method, path pattern below the API root, handler, who may call it: "token", "app" (JWT) or "any")
ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", r"/", Handlers.root, "any"),
    ("GET", r"/rate_limit", Handlers.rate_limit, "any"),
    ("GET", r"/app", Handlers.get_app, "app"),
    ("POST", r"/app/installations/(?P<id>\d+)/access_tokens", Handlers.create_token, "app"),
    ("GET", R + r"/installation", Handlers.repo_installation, "app"),
    ("GET", r"/app/hook/deliveries", Handlers.list_hook_deliveries, "app"),
    ("POST", r"/app/hook/deliveries/(?P<id>\d+)/attempts", Handlers.redeliver_hook_delivery, "app"),
    ("GET", R, Handlers.get_repo, "token"),
    ("GET", R + r"/collaborators/(?P<user>[^/]+)/permission", Handlers.permission, "token"),
    ("GET", R + r"/contents/(?P<path>.*)", Handlers.contents, "token"),
    ("GET", R + r"/git/ref/(?P<ref>.+)", Handlers.get_ref, "token"),
    ("DELETE", R + r"/git/refs/(?P<ref>.+)", Handlers.delete_ref, "token"),
    ("GET", R + r"/issues/(?P<number>\d+)", Handlers.get_issue, "token"),
    ("GET", R + r"/issues/(?P<number>\d+)/comments", Handlers.list_comments, "token"),
    ("POST", R + r"/issues/(?P<number>\d+)/comments", Handlers.create_comment, "token"),
    ("GET", R + r"/issues/comments/(?P<id>\d+)", Handlers.get_comment, "token"),
    ("PATCH", R + r"/issues/comments/(?P<id>\d+)", Handlers.edit_comment, "token"),
    ("POST", R + r"/issues/comments/(?P<id>\d+)/reactions", Handlers.react_to_comment, "token"),
    ("POST", R + r"/issues/(?P<number>\d+)/reactions", Handlers.react_to_issue, "token"),
    ("POST", R + r"/issues/(?P<number>\d+)/labels", Handlers.add_labels, "token"),
    ("GET", R + r"/pulls", Handlers.list_pulls, "token"),
    ("POST", R + r"/pulls", Handlers.create_pull, "token"),
    ("GET", R + r"/pulls/(?P<number>\d+)", Handlers.get_pull, "token"),
    ("PATCH", R + r"/pulls/(?P<number>\d+)", Handlers.edit_pull, "token"),
    ("POST", R + r"/pulls/(?P<number>\d+)/requested_reviewers", Handlers.request_reviewers, "token"),
    ("PUT", R + r"/pulls/(?P<number>\d+)/merge", Handlers.merge_pull, "token"),
]


@functools.cache
def _compiled() -> list[tuple[str, re.Pattern[str], Handler, str]]:
    from tests.fake_github.commits import ROUTES as COMMIT_ROUTES  # its handlers use this module's types

    return [(method, re.compile(pattern), handler, auth) for method, pattern, handler, auth in ROUTES + COMMIT_ROUTES]


def route(method: str, path: str) -> tuple[Handler, str, dict[str, str]] | None:
    """The handler, auth kind and path parameters for a request; None when nothing matches (GitHub says 404)."""
    for verb, pattern, handler, auth in _compiled():
        match = pattern.fullmatch(path)
        if match and verb == method:
            return handler, auth, match.groupdict()
    return None

"""The fake's state: repositories, issues, comments, pull requests, branches, files, apps and tokens.

Tests seed it through the `add_*`/`set_*` methods (on `FakeGitHub`, which is a `GitHubState`) and read it back
through the plain dataclasses. Every state change made through the API is also written to `actions` as one short,
deterministic line in the style of Prow's fake (`o/r#7: comment 'text...'`), for golden-file comparisons.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fake_github.hooks import HookDelivery, new_guid

ROLES = ("admin", "maintain", "write", "triage", "read", "none")
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
DEFAULT_TOKEN = "ghp_fakeforgebottoken0000000000000000"  # looks like a real one, so redaction is exercised
DEFAULT_LOGIN = "forgebot"


def short(text: str, limit: int = 60) -> str:
    """One line, at most `limit` characters: how bodies appear in the action log."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def now_iso(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


@dataclass
class Reaction:
    id: int
    user: str
    content: str


@dataclass
class Comment:
    id: int
    repo: str
    issue: int
    body: str
    user: str
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    reactions: list[Reaction] = field(default_factory=list)


@dataclass
class Pull:
    head: str
    base: str
    draft: bool = False
    merged: bool = False
    mergeable: bool = True  # False: PUT .../merge answers 405
    merged_at: str | None = None
    head_sha: str = "0" * 40
    merge_method: str | None = None
    requested_reviewers: list[str] = field(default_factory=list)


@dataclass
class CheckRun:
    """A check run on a commit (GitHub Actions and other Apps), or a legacy commit status when `status` is None:
    then `conclusion` holds its state ("success", "failure", "error" or "pending")."""

    id: int
    name: str
    status: str | None  # "queued" | "in_progress" | "completed"; None: a commit status
    conclusion: str | None  # check run: "success", "failure", "neutral", "cancelled", "skipped", "timed_out"...


@dataclass
class Issue:
    number: int
    title: str
    body: str
    user: str
    labels: list[str] = field(default_factory=list)
    state: str = "open"
    pull: Pull | None = None  # set for pull requests: they share the issue number sequence
    reactions: list[Reaction] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)


@dataclass
class Repo:
    id: int
    full_name: str
    default_branch: str = "main"
    private: bool = False
    clone_url: str = ""  # "" means the fake's own https-style URL; a local bare repository path also works
    branches: set[str] = field(default_factory=set)
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (ref, path) -> text
    permissions: dict[str, str] = field(default_factory=dict)  # login -> role (admin ... none)
    labels: dict[str, str] = field(default_factory=dict)  # name -> color
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    installation_id: int | None = None
    # Merge methods the repository allows (Settings > General > Pull Requests); GitHub's defaults.
    allow_squash_merge: bool = True
    allow_merge_commit: bool = True
    allow_rebase_merge: bool = True
    checks: dict[str, list[CheckRun]] = field(default_factory=dict)  # commit sha -> check runs and statuses

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    def local_git(self) -> Path | None:
        """The local repository behind `clone_url`, when it is one: its branches and files count as the repo's."""
        path = Path(self.clone_url) if self.clone_url and "://" not in self.clone_url else None
        return path if path is not None and path.is_dir() else None

    def branch_names(self) -> set[str]:
        local = self.local_git()
        if local is None:
            return set(self.branches)
        heads = _git(local, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
        return self.branches | set(heads)

    def branch_sha(self, name: str) -> str | None:
        """The commit a branch points at, when the repository is backed by a local git repository."""
        local = self.local_git()
        if local is None:
            return None
        done = subprocess.run(
            ["git", "-C", str(local), "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"],
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    def resolve(self, ref: str) -> str | None:
        """A branch name or a commit sha → the commit sha (None when unknown)."""
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            return ref
        return self.branch_sha(ref) or (_name_sha(ref) if ref in self.branches else None)

    def head_sha(self, pull: Pull) -> str:
        """An open pull request's head follows its branch (git pushes move it); a closed one keeps its last."""
        if not pull.merged:
            pull.head_sha = self.branch_sha(pull.head) or pull.head_sha
        return pull.head_sha

    def delete_branch(self, name: str) -> bool:
        if name not in self.branch_names():
            return False
        self.branches.discard(name)
        local = self.local_git()
        if local is not None and name in self.branch_names():
            _git(local, "update-ref", "-d", f"refs/heads/{name}")
        return True

    def file(self, ref: str, path: str) -> str | None:
        text = self.files.get((ref, path))
        local = self.local_git()
        if text is None and local is not None:
            # `cat-file blob`, not `show`: `show` prints a folder's listing as if it were a file.
            show = ["git", "-C", str(local), "cat-file", "blob", f"{ref}:{path}"]
            done = subprocess.run(show, capture_output=True, text=True)
            text = done.stdout if done.returncode == 0 else None
        return text

    def dir_entries(self, ref: str, path: str) -> list[tuple[str, str]]:
        """(path, "file" | "dir") for what is directly inside folder `path` at `ref`, as GitHub lists a folder."""
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        entries: dict[str, str] = {}
        for r, p in self.files:
            if r == ref and p.startswith(prefix):
                name, slash, _ = p[len(prefix) :].partition("/")
                entries[prefix + name] = "dir" if slash else "file"
        local = self.local_git()
        if local is not None:
            listing = ["git", "-C", str(local), "ls-tree", ref, *([prefix] if prefix else [])]
            done = subprocess.run(listing, capture_output=True, text=True)
            for line in done.stdout.splitlines() if done.returncode == 0 else []:
                info, _, name = line.partition("\t")
                entries.setdefault(name, "dir" if info.split()[1] == "tree" else "file")
        return sorted(entries.items())

    def next_number(self) -> int:
        return max(self.issues, default=0) + 1

    def comment_list(self, number: int) -> list[Comment]:
        return sorted((c for c in self.comments.values() if c.issue == number), key=lambda c: c.id)


@dataclass
class App:
    id: int
    slug: str
    public_key: str  # PEM; the fake checks the JWT's RS256 signature with it


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    repos: set[str] = field(default_factory=set)


@dataclass
class Token:
    value: str
    login: str
    installation_id: int | None = None
    expires_at: float | None = None  # epoch seconds; None never expires


def _name_sha(name: str) -> str:
    """A stable made-up commit sha for a branch of a repository without a local git repository."""
    return hashlib.sha1(name.encode()).hexdigest()


def _git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, text=True).stdout


class GitHubState:
    """What the fake knows. Seed with the methods below; every API write appends a line to `actions`."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, login: str = DEFAULT_LOGIN, token_lifetime: float = 3600.0):
        self.repos: dict[str, Repo] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.actions: list[str] = []
        self.token_lifetime = token_lifetime  # seconds an installation token lives
        self.token_requests: list[int] = []  # installation ids, one per access token created
        self.hook_deliveries: list[HookDelivery] = []  # the App's webhook deliveries, oldest first
        self.hook_url: str | None = None  # where redeliveries are sent (None: they fail to connect)
        self.hook_secret = ""
        self.outbox: list[HookDelivery] = []  # redeliveries the server has yet to send
        self._ids: dict[str, int] = {}
        self._user_ids: dict[str, int] = {}
        self.token = token
        self.add_token(token, login)

    # ---- seeding

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def user_id(self, login: str) -> int:
        return self._user_ids.setdefault(login, 1000 + len(self._user_ids))

    def add_token(self, token: str, login: str) -> Token:
        self.tokens[token] = Token(token, login)
        return self.tokens[token]

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = False,
        clone_url: str = "",
        branches: tuple[str, ...] = (),
    ) -> Repo:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", full_name):
            raise ValueError(f"repository name must be owner/name, got {full_name!r}")
        repo = Repo(self.next_id("repo"), full_name, default_branch, private, clone_url)
        repo.branches = {default_branch, *branches}
        repo.permissions[repo.owner] = "admin"
        self.repos[full_name] = repo
        return repo

    def repo(self, full_name: str) -> Repo:
        return self.repos.get(full_name) or self.add_repo(full_name)

    def add_issue(
        self, repo: str, title: str = "An issue", body: str = "", *, user: str = "alice", labels: tuple[str, ...] = ()
    ) -> Issue:
        r = self.repo(repo)
        issue = Issue(r.next_number(), title, body, user, list(labels))
        for label in labels:
            r.labels.setdefault(label, "ededed")
        r.issues[issue.number] = issue
        return issue

    def add_comment(self, repo: str, number: int, body: str, *, user: str = "alice") -> Comment:
        r = self.repo(repo)
        if number not in r.issues:
            raise KeyError(f"{repo}#{number} does not exist: add_issue first")
        comment = Comment(self.next_id("comment"), repo, number, body, user)
        r.comments[comment.id] = comment
        return comment

    def add_pull(
        self,
        repo: str,
        head: str,
        *,
        base: str | None = None,
        title: str = "A pull request",
        body: str = "",
        user: str = "alice",
        draft: bool = False,
        state: str = "open",
        merged: bool = False,
    ) -> Issue:
        r = self.repo(repo)
        r.branches.add(head)
        issue = Issue(r.next_number(), title, body, user, state=state)
        issue.pull = Pull(head, base or r.default_branch, draft, merged, merged_at=now_iso() if merged else None)
        issue.pull.head_sha = r.resolve(head) or issue.pull.head_sha
        r.issues[issue.number] = issue
        return issue

    def pull(self, repo: str, number: int) -> Pull:
        pull = self.repo(repo).issues[number].pull
        if pull is None:
            raise KeyError(f"{repo}#{number} is an issue, not a pull request")
        return pull

    def add_check(
        self, repo: str, ref: str, name: str, conclusion: str | None = "success", *, status: str = "completed"
    ) -> CheckRun:
        """A check run on the commit `ref` (a branch or a sha) points at now; `status` "queued" or "in_progress" with
        conclusion None for one still running."""
        return self._check(repo, ref, CheckRun(self.next_id("check"), name, status, conclusion))

    def set_status(self, repo: str, ref: str, context: str, state: str) -> CheckRun:
        """A commit status (the older statuses API): state "success", "failure", "error" or "pending"."""
        if state not in ("success", "failure", "error", "pending"):
            raise ValueError(f"status state must be success, failure, error or pending, got {state!r}")
        return self._check(repo, ref, CheckRun(self.next_id("status"), context, None, state))

    def _check(self, repo: str, ref: str, check: CheckRun) -> CheckRun:
        r = self.repo(repo)
        sha = r.resolve(ref)
        if sha is None:
            raise KeyError(f"{repo}: no branch or commit {ref!r}")
        r.checks.setdefault(sha, []).append(check)
        return check

    def add_branch(self, repo: str, *names: str) -> None:
        self.repo(repo).branches.update(names)

    def set_file(self, repo: str, path: str, text: str, *, ref: str | None = None) -> None:
        r = self.repo(repo)
        ref = ref or r.default_branch
        r.branches.add(ref)
        r.files[(ref, path.strip("/"))] = text

    def set_permission(self, repo: str, user: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        self.repo(repo).permissions[user] = role

    def add_app(self, app_id: int, public_key_pem: str, *, slug: str = "forgebot") -> App:
        self.apps[app_id] = App(app_id, slug, public_key_pem)
        return self.apps[app_id]

    def install(self, installation_id: int, *repos: str, app_id: int | None = None) -> Installation:
        if app_id is None:
            if len(self.apps) != 1:
                raise ValueError("install(): pass app_id (none or several apps are registered)")
            app_id = next(iter(self.apps))
        account = repos[0].split("/")[0] if repos else "octo"
        installation = self.installations.setdefault(installation_id, Installation(installation_id, app_id, account))
        for name in repos:
            installation.repos.add(name)
            self.repo(name).installation_id = installation_id
        return installation

    def set_hook(self, url: str | None, secret: str) -> None:
        self.hook_url, self.hook_secret = url, secret

    def add_hook_delivery(
        self,
        event: str,
        payload: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        guid: str | None = None,
        delivered_at: float | None = None,
        redelivery: bool = False,
        installation_id: int | None = None,
        repository_id: int | None = None,
    ) -> HookDelivery:
        """Record a delivery GitHub made to the App's hook (status_code 0: forgebot was not there)."""
        action = payload.get("action") if isinstance(payload, dict) else None
        delivery = HookDelivery(
            id=self.next_id("hook_delivery") + 90_000_000,
            guid=guid or new_guid(),
            event=event,
            action=action if isinstance(action, str) else None,
            payload=payload,
            delivered_at=time.time() if delivered_at is None else delivered_at,
            status_code=status_code,
            redelivery=redelivery,
            installation_id=installation_id,
            repository_id=repository_id,
        )
        self.hook_deliveries.append(delivery)
        return delivery

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def installation_tokens(self, installation_id: int) -> list[str]:
        return [t.value for t in self.tokens.values() if t.installation_id == installation_id]

    def act(self, line: str) -> None:
        self.actions.append(line)

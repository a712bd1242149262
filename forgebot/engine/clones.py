"""The daemon's repository cache: one clone per GitHub repository, fetched before each task, and the pushes.

Worktrees for attempts are made from the cache by Workspaces.prepare like from any repository. The cache is a
non-bare clone without a checkout (Workspaces.repo_root and worktrees need a working tree; its files are never
used) with HEAD detached and no local branches: the remote's branches live only as `refs/remotes/origin/*`,
which every fetch updates, and Workspaces.resolve_base falls back to them, so a task's base is always what the
last fetch saw. Local branches are the attempts' own `forge/...` branches, which fetch never touches.

Credentials: for https remotes the token travels as `http.<scheme://host/>.extraHeader` in the environment of
the one git command that needs it (Workspaces.run_git puts settings in GIT_CONFIG_KEY_n/VALUE_n). Why this:
nothing is written to disk (no helper script, no token in .git/config or the remote URL), argv stays clean, and
git's credential machinery is never involved, so no configured credential helper (`store`, say) can save the
token; an askpass helper would hand the token to that machinery after a 401 and cost a round trip. Residual
exposure: processes of the same user can read a running git's environment (/proc/<pid>/environ).
Nothing here prompts: terminal prompts are off, askpass is a no-op and credential helpers are reset, so a missing
or wrong credential fails at once. Everything blocks; callers use asyncio.to_thread.
"""

from __future__ import annotations

import base64
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from urllib.parse import urlsplit

from forgebot.engine.workspaces import WorkspaceError, Workspaces

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable, no spaces or line breaks (they would forge headers)
_TMP_PREFIX = ".clone-"  # then "<cache name>~": "~" is in no repository name, so one repo's glob can't match another's
# Every network command: never prompt, never use or feed a stored credential, no tracing (GIT_TRACE_CURL can
# write to a file), and give up on a transfer that has stalled for two minutes instead of hanging.
_NETWORK_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "GIT_TRACE": "0",
    "GIT_TRACE_CURL": "0",
    "GIT_TRACE_PACKET": "0",
    "GIT_CURL_VERBOSE": "0",
    "GIT_TRACE_REDACT": "1",
}
_NETWORK_CONFIG = (
    ("credential.helper", ""),  # an empty value resets the list of helpers
    ("http.lowSpeedLimit", "1"),
    ("http.lowSpeedTime", "120"),
)


class Clones:
    """`plain_http_hosts`: hosts that get the token over plain http too (tests and a local fake GitHub only);
    otherwise a token is sent to https remotes and nowhere else."""

    def __init__(self, workspaces: Workspaces, cache_root: str, *, plain_http_hosts: Sequence[str] = ()) -> None:
        self._ws = workspaces
        self.cache_root = os.path.abspath(cache_root)
        self._plain_http_hosts = frozenset(plain_http_hosts)

    def path_for(self, full_name: str) -> str:
        """The cache path of "owner/name" (lower-cased: GitHub names are case-insensitive)."""
        owner, sep, name = full_name.partition("/")
        if not sep or not _NAME.fullmatch(owner) or not _NAME.fullmatch(name) or name.strip(".") == "":
            raise WorkspaceError(f"not a repository name of the form owner/name: {full_name!r}")
        return os.path.join(self.cache_root, f"{owner}__{name}".lower())

    def ensure(self, full_name: str, clone_url: str, token: str | None) -> str:
        """The cache of `full_name`, cloned on first use and fetched on every later call; returns its path."""
        _check_url(clone_url)
        path = self.path_for(full_name)
        os.makedirs(self.cache_root, exist_ok=True)
        with self._ws.lock(path):
            if os.path.isdir(os.path.join(path, ".git")):
                self._set_url(path, clone_url)
                self._fetch(path, token)
            else:
                self._clone(path, clone_url, token)
        return path

    def fetch(self, repo_path: str, token: str | None) -> None:
        """Update `refs/remotes/origin/*` (deleted remote branches are pruned; local branches are untouched)."""
        with self._ws.lock(repo_path):
            self._fetch(repo_path, token)

    def push(self, repo_path: str, branch: str, token: str | None, *, force: bool = False) -> None:
        """Push the local branch to the same name on origin. `force` (after a rebase) replaces the remote branch
        only if it is still what we last pushed or fetched, so nobody else's commits are overwritten."""
        ref = self._head_ref(repo_path, branch)
        with self._ws.lock(repo_path):
            lease = []
            if force:
                seen = self._ref_sha(repo_path, f"refs/remotes/origin/{branch}") or ""  # "": must not exist yet
                lease.append(f"--force-with-lease={ref}:{seen}")
            self._network(repo_path, token, "push", "--quiet", "--no-verify", *lease, "origin", f"{ref}:{ref}")

    def delete_remote_branch(self, repo_path: str, branch: str, token: str | None) -> bool:
        """Delete the branch on origin; False if it was not there."""
        ref = self._head_ref(repo_path, branch)
        with self._ws.lock(repo_path):
            # Ask first: git (2.39 at least) reports success for deleting a branch the remote doesn't have.
            if branch in self._ls_remote(repo_path, token, ref):
                self._network(repo_path, token, "push", "--quiet", "--no-verify", "origin", f":{ref}")
                return True
            tracking = f"refs/remotes/origin/{branch}"
            if self._ref_sha(repo_path, tracking) is not None:
                self._git(repo_path, "update-ref", "-d", tracking)
            return False

    def remote_branches(self, repo_path: str, token: str | None) -> list[str]:
        """The branches on origin now (asks the remote; no fetch)."""
        return self._ls_remote(repo_path, token)

    # -- internals -----------------------------------------------------------------------------------------

    def _clone(self, path: str, url: str, token: str | None) -> None:
        """Clone into a temporary directory and rename it into place: a clone that fails or is killed never
        leaves a half cache at `path`. Caller holds the lock, so leftovers of killed clones are stale."""
        prefix = f"{_TMP_PREFIX}{os.path.basename(path)}~"
        for stale in glob.glob(os.path.join(self.cache_root, prefix + "*")):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix=prefix, dir=self.cache_root)
        try:
            # Full clone on purpose: a partial one (--filter) would fetch blobs lazily inside worktree commands,
            # which run without the credential.
            self._network(self.cache_root, token, "clone", "--quiet", "--no-checkout", "--", url, tmp, url=url)
            self._detach(tmp)
            try:
                os.rename(tmp, path)
            except OSError as exc:
                reason = exc.strerror
                raise WorkspaceError(f"cannot put the clone at {path} (not a clone? remove it): {reason}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _detach(self, repo: str) -> None:
        """Detach HEAD and drop the local branches clone made, so the remote-tracking ones are the base."""
        head = self._ref_sha(repo, "HEAD")
        if head is None:
            return  # the remote is empty: nothing checked out, no branch made
        self._git(repo, "update-ref", "--no-deref", "HEAD", head)
        branches = self._git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
        if branches:
            self._git(repo, "branch", "-D", "--", *branches)

    def _fetch(self, repo: str, token: str | None) -> None:
        self._network(repo, token, "fetch", "--quiet", "--prune", "origin")

    def _set_url(self, repo: str, url: str) -> None:
        status, current, _ = self._ws.run_git(repo, ["config", "--get", "remote.origin.url"])
        if status != 0 or current != url:
            self._git(repo, "remote", "set-url", "origin", url)

    def _ls_remote(self, repo: str, token: str | None, *patterns: str) -> list[str]:
        out = self._network(repo, token, "ls-remote", "--heads", "origin", *patterns)
        return [line.split("\t", 1)[1].removeprefix("refs/heads/") for line in out.splitlines() if "\t" in line]

    def _network(self, cwd: str, token: str | None, *args: str, url: str | None = None) -> str:
        """Run a git command that talks to the remote, with the credential when the remote is https."""
        if url is None:
            url = self._git(cwd, "config", "--get", "remote.origin.url")
        config = [*_NETWORK_CONFIG, *self._auth(url, token)]
        status, out, err = self._ws.run_git(cwd, args, config=config, env=_NETWORK_ENV)
        if status != 0:
            reason = _scrub((err or out).strip(), token) or "no error message"
            raise WorkspaceError(f"git {args[0]} failed in {cwd}: {reason}")
        return out

    def _auth(self, url: str, token: str | None) -> list[tuple[str, str]]:
        if not token:
            return []
        if not _TOKEN.fullmatch(token):
            raise WorkspaceError("the GitHub token contains spaces or control characters")
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in self._plain_http_hosts):
            return []  # a local path, file:// or ssh remote: the token is not for it
        header = "Authorization: Basic " + _basic(token)
        # Scoped to the remote's host, so a redirect or an insteadOf rewrite elsewhere doesn't get it.
        return [(f"http.{parts.scheme}://{parts.netloc}/.extraHeader", header)]

    def _head_ref(self, repo: str, branch: str) -> str:
        ref = f"refs/heads/{branch}"
        if branch.startswith("-") or self._ws.run_git(repo, ["check-ref-format", ref])[0] != 0:
            raise WorkspaceError(f"not a valid branch name: {branch!r}")
        return ref

    def _ref_sha(self, repo: str, ref: str) -> str | None:
        status, out, _ = self._ws.run_git(repo, ["rev-parse", "--verify", "-q", f"{ref}^{{commit}}"])
        return out if status == 0 else None

    def _git(self, repo: str, *args: str) -> str:
        status, out, err = self._ws.run_git(repo, args)
        if status != 0:
            raise WorkspaceError(f"git {args[0]} failed in {repo}: {err.strip() or 'no error message'}")
        return out


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _check_url(url: str) -> None:
    if not url.strip() or url.startswith("-"):
        raise WorkspaceError(f"not a clone URL: {url!r}")
    if "://" in url and urlsplit(url).password is not None:
        # It would be stored in .git/config; tokens go through `token` instead.
        raise WorkspaceError("the clone URL must not carry a password or token")


def _scrub(text: str, token: str | None) -> str:
    if not token:
        return text
    for secret in (token, _basic(token), base64.b64encode(token.encode()).decode()):
        text = text.replace(secret, "***")
    return text

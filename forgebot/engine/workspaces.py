"""Git worktrees for attempts: create, commit, measure, merge and remove them.

The only module that talks to git, through GitPython's command runner. Everything here blocks; the engine
calls it via asyncio.to_thread. Commands that change a repository's shared state (the worktree registry,
branches of the main repo) run under one lock per repository, because git itself races when several of them
run at once: parallel `worktree add` can fail reading a half-written `commondir`, a `worktree prune` can
delete another add's half-made entry, and concurrent ref updates lose each other's lock files.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import git

from forgebot.core.models import DiffStats

# Applied to every git command whatever the user's config says: automated commands must not run the
# repository's hooks, wait for a GPG passphrase, start a background gc (it packs refs and races our ref
# updates) or auto-stash local changes (a dirty target must refuse the merge instead).
_CONFIG = (
    ("core.hooksPath", os.devnull),
    ("commit.gpgSign", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("merge.autoStash", "false"),
    ("rebase.autoStash", "false"),
)
# Paths per `git add`/`git reset` call, far below the kernel's argument-size limit.
_PATHS_PER_CALL = 1000

_locks_guard = threading.Lock()
_repo_locks: dict[str, threading.Lock] = {}


_LOCK_DIR = os.path.join(tempfile.gettempdir(), "forgebot-locks")


@contextlib.contextmanager
def _repo_lock(repo: str) -> Iterator[None]:
    """One repository's lock: a thread lock shared by every Workspaces instance in the process, and a file lock
    for other forgebot processes on this machine (a detached runner and a CLI cleanup, say)."""
    key = os.path.realpath(repo)
    with _locks_guard:
        lock = _repo_locks.setdefault(key, threading.Lock())
    with lock:
        os.makedirs(_LOCK_DIR, exist_ok=True)
        path = os.path.join(_LOCK_DIR, hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class WorkspaceError(Exception):
    """A git operation failed; the message carries git's own explanation."""


class MergeRefused(WorkspaceError):
    """Merging would lose or clobber work: the base moved (no rebase asked for) or the target is dirty."""


class MergeConflict(WorkspaceError):
    """Replaying the attempt on the moved base branch conflicted; the rebase was aborted."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


@dataclass(frozen=True)
class MergeResult:
    base_branch: str
    old_sha: str
    new_sha: str
    rebased: bool


class Workspaces:
    def __init__(self, author_name: str = "forgebot", author_email: str = "forgebot@localhost") -> None:
        if not author_name.strip() or not author_email.strip():
            raise ValueError("author_name and author_email must not be empty")
        self._env = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name,
            "GIT_COMMITTER_EMAIL": author_email,
            "GIT_CONFIG_COUNT": str(len(_CONFIG)),
        }
        for i, (key, value) in enumerate(_CONFIG):
            self._env[f"GIT_CONFIG_KEY_{i}"] = key
            self._env[f"GIT_CONFIG_VALUE_{i}"] = value

    # -- running git ---------------------------------------------------------------------------------------

    def _try(self, cwd: str, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        """Run git in `cwd`; returns (exit status, stdout, stderr) without raising on failure."""
        if not os.path.isdir(cwd):
            raise WorkspaceError(f"{cwd} is not a directory")
        runner = git.Git(cwd)
        try:
            return runner.execute(
                [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args],
                with_extended_output=True,
                with_exceptions=False,
                env=env or self._env,
            )
        except git.GitCommandNotFound as exc:
            raise WorkspaceError(f"cannot run git: {exc.status}") from None

    def run_git(
        self,
        cwd: str,
        args: Sequence[str],
        *,
        config: Sequence[tuple[str, str]] = (),
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """Run git with extra settings and environment for this one command; (status, stdout, stderr), never raises
        on git's failure. `config` travels in GIT_CONFIG_KEY_n/VALUE_n, not `-c`, so secrets in it stay out of
        the process list (clones.py passes the fetch/push credential this way)."""
        merged = {**self._env, **(env or {}), "GIT_CONFIG_COUNT": str(len(_CONFIG) + len(config))}
        for i, (key, value) in enumerate(config, start=len(_CONFIG)):
            merged[f"GIT_CONFIG_KEY_{i}"] = key
            merged[f"GIT_CONFIG_VALUE_{i}"] = value
        return self._try(cwd, *args, env=merged)

    def lock(self, repo: str) -> contextlib.AbstractContextManager[None]:
        """The per-repository lock the methods here take (not reentrant: don't call them while holding it)."""
        return _repo_lock(repo)

    def _run(self, cwd: str, *args: str) -> str:
        status, out, err = self._try(cwd, *args)
        if status != 0:
            raise WorkspaceError(_failure(cwd, args, err))
        return out

    def _run_paths(self, cwd: str, command: Sequence[str], paths: Sequence[str]) -> None:
        """Run `git <command> -- <paths>` in batches; paths are taken literally, never as globs."""
        for start in range(0, len(paths), _PATHS_PER_CALL):
            self._run(cwd, "--literal-pathspecs", *command, "--", *paths[start : start + _PATHS_PER_CALL])

    # -- repositories and branches -------------------------------------------------------------------------

    def repo_root(self, path: str) -> str:
        start = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        if not os.path.exists(path) or not os.path.isdir(start):
            raise WorkspaceError(f"{path} does not exist")
        status, out, err = self._try(start, "rev-parse", "--show-toplevel")
        if status != 0 or not out:
            reason = err.strip() or "bare repository"
            raise WorkspaceError(f"{path} is not inside a git working tree: {reason}")
        return out

    def resolve_base(self, repo: str, base_branch: str | None) -> tuple[str, str]:
        """(branch, sha) to start a task from. A named branch missing locally is taken from origin's
        remote-tracking branch: a clone cache (clones.py) keeps no local copies of the remote's branches."""
        if base_branch is not None:
            sha = self._branch_sha(repo, base_branch) or self._branch_sha(repo, base_branch, "refs/remotes/origin/")
            if sha is None:
                raise WorkspaceError(f"base branch '{base_branch}' does not exist in {repo}")
            return base_branch, sha
        status, branch, err = self._try(repo, "symbolic-ref", "-q", "--short", "HEAD")
        if status == 1:
            raise WorkspaceError(f"HEAD of {repo} is detached; name the base branch explicitly")
        if status != 0:
            raise WorkspaceError(_failure(repo, ("symbolic-ref",), err))
        sha = self._branch_sha(repo, branch)
        if sha is None:
            raise WorkspaceError(f"branch '{branch}' checked out in {repo} has no commits yet")
        return branch, sha

    def head_sha(self, repo: str, branch: str) -> str:
        sha = self._branch_sha(repo, branch)
        if sha is None:
            raise WorkspaceError(f"base branch '{branch}' does not exist in {repo}")
        return sha

    def branch_exists(self, repo: str, branch: str) -> bool:
        return self._branch_sha(repo, branch) is not None

    def _branch_sha(self, repo: str, branch: str, prefix: str = "refs/heads/") -> str | None:
        status, out, err = self._try(repo, "rev-parse", "--verify", "-q", f"{prefix}{branch}^{{commit}}")
        if status == 1:
            return None
        if status != 0:
            raise WorkspaceError(_failure(repo, ("rev-parse",), err))
        return out

    def delete_branch(self, repo: str, branch: str) -> bool:
        with _repo_lock(repo):
            return self._delete_branch(repo, branch)

    def _delete_branch(self, repo: str, branch: str) -> bool:
        """Caller holds the repo lock."""
        if not self.branch_exists(repo, branch):
            return False
        self._run(repo, "branch", "-D", branch)
        return True

    def create_repo(self, path: str, files: Mapping[str, str], message: str = "initial") -> str:
        """A new repository at `path` on branch main with `files` committed (scratch repositories, smoke tests)."""
        os.makedirs(path, exist_ok=True)
        self._run(path, "init", "-q", "-b", "main")
        for name, text in files.items():
            target = os.path.join(path, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
        self._run(path, "add", "-A")
        self._run(path, "commit", "-q", "-m", message)
        return path

    def ensure_excluded(self, repo: str, pattern: str = "/.forge/") -> None:
        common_dir = os.path.join(repo, self._run(repo, "rev-parse", "--git-common-dir"))
        path = os.path.join(common_dir, "info", "exclude")
        with _repo_lock(repo):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            text = ""
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            if pattern in (line.strip() for line in text.splitlines()):
                return
            with open(path, "a", encoding="utf-8") as f:
                f.write(("" if text.endswith("\n") or not text else "\n") + pattern + "\n")

    # -- worktrees -----------------------------------------------------------------------------------------

    def list_worktrees(self, repo: str) -> list[tuple[str, str | None]]:
        result: list[tuple[str, str | None]] = []
        for block in self._run(repo, "worktree", "list", "--porcelain").split("\n\n"):
            fields = dict(line.partition(" ")[::2] for line in block.splitlines())
            if "worktree" in fields:
                branch = fields.get("branch")
                result.append((fields["worktree"], branch.removeprefix("refs/heads/") if branch else None))
        return result

    def _registered(self, repo: str, worktree: str) -> bool:
        target = os.path.realpath(worktree)
        return any(os.path.realpath(path) == target for path, _ in self.list_worktrees(repo))

    def prepare(self, repo: str, worktree: str, branch: str, base_sha: str) -> None:
        worktree = os.path.abspath(worktree)
        with _repo_lock(repo):
            if self._registered(repo, worktree):
                self._run(repo, "worktree", "remove", "--force", worktree)
            self._run(repo, "worktree", "add", "--no-checkout", "-B", branch, worktree, base_sha)
        # Writing the files is the slow part and touches only this worktree, so it runs unlocked.
        self._run(worktree, "read-tree", "-u", "--reset", "HEAD")
        # Without a refresh right away, every later status or diff in the worktree re-hashes files.
        self._run(worktree, "update-index", "-q", "--refresh")

    def remove(self, repo: str, worktree: str, delete_branch: str | None = None) -> bool:
        worktree = os.path.abspath(worktree)
        removed = False
        with _repo_lock(repo):
            if self._registered(repo, worktree):
                self._run(repo, "worktree", "remove", "--force", worktree)
                removed = True
            if os.path.lexists(worktree):
                _delete_path(worktree)
                removed = True
            if delete_branch is not None:
                removed = self._delete_branch(repo, delete_branch) or removed
        return removed

    def prune(self, repo: str) -> None:
        with _repo_lock(repo):
            self._run(repo, "worktree", "prune")

    # -- the attempt's work --------------------------------------------------------------------------------

    def commit_all(self, worktree: str, message: str, exclude: Sequence[str] = ()) -> str | None:
        if not message.strip():
            raise WorkspaceError("commit message must not be empty")
        entries = self._status(worktree)
        keep = [path for _, path in entries if not _excluded(path, exclude)]
        # An agent may have staged excluded files itself; take them back out of the index.
        unstage = [path for index, path in entries if index not in " ?" and _excluded(path, exclude)]
        self._run_paths(worktree, ("add", "-A"), keep)
        self._run_paths(worktree, ("reset", "-q"), unstage)
        status, _, err = self._try(worktree, "diff", "--cached", "--quiet")
        if status == 0:
            return None
        if status != 1:
            raise WorkspaceError(_failure(worktree, ("diff",), err))
        self._run(worktree, "commit", "-q", "--no-verify", "-m", message)
        return self._run(worktree, "rev-parse", "HEAD")

    def _status(self, worktree: str) -> list[tuple[str, str]]:
        """(index status letter, path) of every changed or untracked file."""
        out = self._run(worktree, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all")
        return [(entry[0], entry[3:]) for entry in out.split("\0") if entry]

    def diff_stats(self, worktree: str, base_sha: str) -> DiffStats:
        # diff-tree is plumbing: user settings such as diff.renames or textconv can't skew the numbers.
        out = self._run(worktree, "diff-tree", "-r", "--no-renames", "--numstat", base_sha, "HEAD")
        files = insertions = deletions = 0
        for line in out.splitlines():
            added, deleted, _ = line.split("\t", 2)
            files += 1
            if added != "-":  # binary files report "-" for both counts
                insertions += int(added)
                deletions += int(deleted)
        return DiffStats(files=files, insertions=insertions, deletions=deletions)

    def changed_files(self, worktree: str, base_sha: str) -> list[str]:
        out = self._run(worktree, "diff-tree", "-r", "--no-renames", "--name-only", "-z", base_sha, "HEAD")
        return [path for path in out.split("\0") if path]

    # -- merging -------------------------------------------------------------------------------------------

    def squash_merge(
        self,
        repo: str,
        base_branch: str,
        expected_base_sha: str,
        worktree: str,
        message: str,
        rebase: bool = False,
    ) -> MergeResult:
        current = self.head_sha(repo, base_branch)
        moved = current != expected_base_sha
        if moved and not rebase:
            raise MergeRefused(
                f"base branch '{base_branch}' moved from {expected_base_sha[:7]} to {current[:7]} since the "
                "task started; merge with rebase to replay the attempt on top"
            )
        if moved:
            self._rebase(worktree, base_branch, current)
        tree = self._squash_tree(worktree, base_branch, current)
        new = self._run(worktree, "commit-tree", tree, "-p", current, "-m", message)
        self._advance(repo, base_branch, current, new)
        return MergeResult(base_branch=base_branch, old_sha=current, new_sha=new, rebased=moved)

    def _rebase(self, worktree: str, base_branch: str, onto: str) -> None:
        status, _, err = self._try(worktree, "rebase", "-q", onto)
        if status == 0:
            return
        unmerged = self._run(worktree, "diff", "--name-only", "--diff-filter=U", "-z").split("\0")
        conflicts = list(dict.fromkeys(path for path in unmerged if path))
        # Fails harmlessly when git refused before starting (e.g. a dirty worktree): nothing to abort then.
        self._try(worktree, "rebase", "--abort")
        if conflicts:
            raise MergeConflict(
                f"replaying the attempt on '{base_branch}' ({onto[:7]}) conflicts in: {', '.join(conflicts)}",
                conflicts,
            )
        raise WorkspaceError(_failure(worktree, ("rebase",), err))

    def _squash_tree(self, worktree: str, base_branch: str, base: str) -> str:
        """The tree to commit on `base`, after checking it really is the attempt's work on top of `base`."""
        status, _, err = self._try(worktree, "merge-base", "--is-ancestor", base, "HEAD")
        if status == 1:
            raise WorkspaceError(
                f"the branch in {worktree} does not contain '{base_branch}' ({base[:7]}); "
                "merging it would revert that commit"
            )
        if status != 0:
            raise WorkspaceError(_failure(worktree, ("merge-base",), err))
        tree, base_tree = self._run(worktree, "rev-parse", "HEAD^{tree}", f"{base}^{{tree}}").split("\n")
        if tree == base_tree:
            raise WorkspaceError(f"the attempt in {worktree} has no changes against '{base_branch}'")
        return tree

    def _advance(self, repo: str, base_branch: str, old: str, new: str) -> None:
        """Move base_branch from `old` to `new`, updating the working tree where it is checked out."""
        with _repo_lock(repo):
            holder = self._checked_out_at(repo, base_branch)
            if holder is None:
                ref = f"refs/heads/{base_branch}"
                status, _, err = self._try(repo, "update-ref", "-m", "forgebot: squash merge", ref, new, old)
                if status != 0:
                    raise MergeRefused(f"base branch '{base_branch}' changed during the merge: {err.strip()}")
                return
            status, out, err = self._try(holder, "merge", "--ff-only", "-q", new)
            if status != 0:
                reason = (err or out).strip()
                raise MergeRefused(f"cannot move '{base_branch}' checked out at {holder}: {reason}")

    def _checked_out_at(self, repo: str, branch: str) -> str | None:
        for path, checked_out in self.list_worktrees(repo):
            if checked_out == branch and os.path.isdir(path):
                return path
        return None

    # -- disk ----------------------------------------------------------------------------------------------

    def disk_usage(self, path: str) -> int:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return 0
        if not stat.S_ISDIR(info.st_mode):
            return info.st_size
        total = 0
        pending = [path]
        while pending:
            try:
                with os.scandir(pending.pop()) as entries:
                    for entry in entries:
                        total += _entry_size(entry, pending)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue  # an agent removed or locked it while we walked
        return total


def _entry_size(entry: os.DirEntry[str], pending: list[str]) -> int:
    """Size of a file or symlink; queues directories for the walk instead."""
    try:
        if entry.is_dir(follow_symlinks=False):
            pending.append(entry.path)
            return 0
        return entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        return 0


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    """Like .gitignore: a pattern without '/' matches any path component, one with '/' the path or a
    leading directory of it (relative to the worktree root)."""
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        clean = pattern.strip("/")
        candidates = prefixes if "/" in clean else parts
        if any(fnmatch.fnmatchcase(candidate, clean) for candidate in candidates):
            return True
    return False


def _delete_path(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError as exc:
        raise WorkspaceError(f"cannot delete {path}: {exc.strerror}") from None


def _failure(cwd: str, args: Sequence[str], stderr: str) -> str:
    words = [arg for arg in args[:3] if not arg.startswith("-")]
    command = " ".join(words[:2] if words[0] == "worktree" else words[:1])
    return f"git {command} failed in {cwd}: {stderr.strip() or 'no error message'}"

"""Clones against real git: a bare repository as the remote, and a tiny HTTP server for the credential path."""

from __future__ import annotations

import base64
import http.server
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from forgebot.engine.clones import Clones
from forgebot.engine.workspaces import WorkspaceError, Workspaces
from tests.support import git, make_repo

TOKEN = "ghs_s3cretTOKENvalue42"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@pytest.fixture(autouse=True)
def _no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository standing in for GitHub."""
    make_repo(tmp_path / "seed")
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "seed"), str(tmp_path / "remote.git"))
    return tmp_path / "remote.git"


@pytest.fixture
def ws() -> Workspaces:
    return Workspaces()


@pytest.fixture
def clones(ws: Workspaces, tmp_path: Path) -> Clones:
    return Clones(ws, str(tmp_path / "cache"))


def push_upstream(remote: Path, tmp_path: Path, name: str, text: str) -> str:
    """Someone else pushes a commit to the remote's main; returns its sha."""
    other = tmp_path / "other"
    if not other.exists():
        git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "pull", "-q", "--ff-only")
    (other / name).write_text(text)
    git(other, "add", name)
    git(other, "commit", "-q", "-m", f"upstream {name}")
    git(other, "push", "-q", "origin", "main")
    return git(other, "rev-parse", "HEAD")


def all_text(root: Path) -> str:
    chunks = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            chunks.append(path.read_bytes().decode("latin-1"))
    return "\n".join(chunks)


# -- cloning and fetching --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["path", "file"])
def test_ensure_clones_once_then_fetches(
    clones: Clones, ws: Workspaces, remote: Path, tmp_path: Path, scheme: str
) -> None:
    url = str(remote) if scheme == "path" else remote.as_uri()
    path = clones.ensure("Octo/Repo", url, None)
    assert path == str(tmp_path / "cache" / "octo__repo")
    assert ws.repo_root(path) == path  # the engine's submit starts with this
    assert ws.resolve_base(path, "main") == ("main", git(remote, "rev-parse", "main"))
    # No local copy of the remote's branches: the base always comes from the last fetch.
    assert git(path, "for-each-ref", "refs/heads") == ""
    assert git(path, "config", "remote.origin.url") == url

    new = push_upstream(remote, tmp_path, "new.txt", "fresh\n")
    marker = Path(path) / ".git" / "marker"
    marker.write_text("same clone")
    assert clones.ensure("octo/repo", url, None) == path
    assert marker.exists()
    assert ws.resolve_base(path, "main") == ("main", new)
    assert os.listdir(tmp_path / "cache") == ["octo__repo"]


def test_fetch_picks_up_new_commits_and_prunes_deleted_branches(
    clones: Clones, ws: Workspaces, remote: Path, tmp_path: Path
) -> None:
    git(remote, "branch", "release", "main")
    path = clones.ensure("o/r", str(remote), None)
    assert ws.resolve_base(path, "release")[1] == git(remote, "rev-parse", "release")
    new = push_upstream(remote, tmp_path, "b.txt", "b\n")
    git(remote, "branch", "-D", "release")
    clones.fetch(path, None)
    assert ws.resolve_base(path, "main") == ("main", new)
    with pytest.raises(WorkspaceError, match="base branch 'release' does not exist"):
        ws.resolve_base(path, "release")
    assert clones.remote_branches(path, None) == ["main"]


def test_changed_clone_url_updates_the_remote(clones: Clones, remote: Path, tmp_path: Path) -> None:
    path = clones.ensure("o/r", str(remote), None)
    moved = tmp_path / "moved.git"
    remote.rename(moved)
    assert clones.ensure("o/r", moved.as_uri(), None) == path
    assert git(path, "config", "remote.origin.url") == moved.as_uri()


def test_concurrent_ensure_clones_once(clones: Clones, remote: Path, tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: clones.ensure("o/r", str(remote), None), range(4)))
    assert len(set(paths)) == 1
    assert os.listdir(tmp_path / "cache") == ["o__r"]
    git(paths[0], "fsck", "--no-progress")


def test_failed_clone_leaves_no_cache(clones: Clones, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"git clone failed in .*does not exist"):
        clones.ensure("o/r", str(tmp_path / "missing.git"), None)
    assert os.listdir(tmp_path / "cache") == []


def test_leftovers_of_a_killed_clone_are_removed(clones: Clones, remote: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / ".clone-o__r~abc123" / ".git").mkdir(parents=True)
    (cache / ".clone-o__r-b~xyz789").mkdir()  # another repository's clone in progress: not ours to delete
    clones.ensure("o/r", str(remote), None)
    assert sorted(os.listdir(cache)) == [".clone-o__r-b~xyz789", "o__r"]


@pytest.mark.parametrize("name", ["o", "o/", "/r", "o/r/x", "../r", "o/..", "o/-r", "o/r s"])
def test_bad_repository_names_are_refused(clones: Clones, remote: Path, name: str) -> None:
    with pytest.raises(WorkspaceError, match="owner/name"):
        clones.ensure(name, str(remote), None)


def test_urls_with_credentials_are_refused(clones: Clones, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="must not carry") as caught:
        clones.ensure("o/r", f"https://x-access-token:{TOKEN}@github.com/o/r.git", None)
    assert TOKEN not in str(caught.value)
    assert not (tmp_path / "cache").exists()


# -- worktrees, pushes and remote branches -----------------------------------------------------------------


def test_worktree_push_followup_force_and_delete(clones: Clones, ws: Workspaces, remote: Path, tmp_path: Path) -> None:
    path = clones.ensure("o/r", remote.as_uri(), None)
    base_branch, base = ws.resolve_base(path, "main")
    worktree = str(tmp_path / "wt" / "a1")
    ws.prepare(path, worktree, "forge/a1", base)
    assert (Path(worktree) / "app.py").exists()
    (Path(worktree) / "app.py").write_text("changed\n")
    first = ws.commit_all(worktree, "attempt 1")
    clones.push(path, "forge/a1", None)
    assert git(remote, "rev-parse", "refs/heads/forge/a1") == first

    (Path(worktree) / "more.txt").write_text("more\n")
    second = ws.commit_all(worktree, "follow-up")
    clones.push(path, "forge/a1", None)
    assert git(remote, "rev-parse", "refs/heads/forge/a1") == second

    git(worktree, "commit", "-q", "--amend", "-m", "rewritten")
    with pytest.raises(WorkspaceError, match="git push failed"):
        clones.push(path, "forge/a1", None)  # not a fast-forward
    clones.push(path, "forge/a1", None, force=True)
    assert git(remote, "rev-parse", "refs/heads/forge/a1") == git(worktree, "rev-parse", "HEAD")
    assert sorted(clones.remote_branches(path, None)) == ["forge/a1", "main"]

    assert clones.delete_remote_branch(path, "forge/a1", None) is True
    assert clones.remote_branches(path, None) == ["main"]
    assert clones.delete_remote_branch(path, "forge/a1", None) is False
    assert ws.branch_exists(path, "forge/a1")  # the local branch (and the worktree) stay
    assert base_branch == "main"


def test_force_push_refuses_to_overwrite_someone_elses_commits(
    clones: Clones, ws: Workspaces, remote: Path, tmp_path: Path
) -> None:
    path = clones.ensure("o/r", str(remote), None)
    _, base = ws.resolve_base(path, "main")
    worktree = str(tmp_path / "wt" / "a1")
    ws.prepare(path, worktree, "forge/a1", base)
    (Path(worktree) / "x.txt").write_text("x\n")
    ws.commit_all(worktree, "attempt")
    clones.push(path, "forge/a1", None)
    git(remote, "update-ref", "refs/heads/forge/a1", base)  # someone moved it behind our back
    git(worktree, "commit", "-q", "--amend", "-m", "rebased")
    with pytest.raises(WorkspaceError, match="git push failed"):
        clones.push(path, "forge/a1", None, force=True)
    assert git(remote, "rev-parse", "refs/heads/forge/a1") == base


def test_first_push_with_force_works(clones: Clones, ws: Workspaces, remote: Path, tmp_path: Path) -> None:
    path = clones.ensure("o/r", str(remote), None)
    _, base = ws.resolve_base(path, "main")
    ws.prepare(path, str(tmp_path / "wt" / "a2"), "forge/a2", base)
    clones.push(path, "forge/a2", None, force=True)
    assert git(remote, "rev-parse", "refs/heads/forge/a2") == base


def test_bad_branch_names_are_refused(clones: Clones, remote: Path) -> None:
    path = clones.ensure("o/r", str(remote), None)
    for bad in ("a..b", "-x", "x y", "x:y"):
        with pytest.raises(WorkspaceError, match="not a valid branch name"):
            clones.push(path, bad, None)


# -- credentials -----------------------------------------------------------------------------------------------


class _GitHubStandIn(http.server.SimpleHTTPRequestHandler):
    """Serves bare repositories over git's dumb HTTP protocol, only to the right Authorization header."""

    seen: list[str | None]

    def do_GET(self) -> None:
        header = self.headers.get("Authorization")
        self.seen.append(header)
        if header != f"Basic {BASIC}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="github"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(remote: Path) -> Iterator[tuple[str, list[str | None]]]:
    """(base URL, Authorization headers received) of a server publishing `remote` as /o/r.git."""
    git(remote, "update-server-info")
    (remote.parent / "www" / "o").mkdir(parents=True)
    (remote.parent / "www" / "o" / "r.git").symlink_to(remote)
    seen: list[str | None] = []
    handler = type("Handler", (_GitHubStandIn,), {"seen": seen})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(remote.parent / "www"))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_token_is_sent_but_never_stored_or_shown(
    ws: Workspaces,
    remote: Path,
    tmp_path: Path,
    server: tuple[str, list[str | None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    base_url, seen = server
    clones = Clones(ws, str(tmp_path / "cache"), plain_http_hosts=["127.0.0.1"])
    caplog.set_level(logging.DEBUG, logger="git")
    path = clones.ensure("o/r", f"{base_url}/o/r.git", TOKEN)
    assert seen and all(header == f"Basic {BASIC}" for header in seen)
    new = push_upstream(remote, tmp_path, "n.txt", "n\n")
    git(remote, "update-server-info")
    clones.fetch(path, TOKEN)
    assert ws.resolve_base(path, "main") == ("main", new)

    stored = all_text(tmp_path / "cache")
    assert TOKEN not in stored and BASIC not in stored
    assert git(path, "config", "remote.origin.url") == f"{base_url}/o/r.git"
    logged = caplog.text  # GitPython logs each command line it starts: argv must not carry the token
    assert "Popen" in logged and TOKEN not in logged and BASIC not in logged

    with pytest.raises(WorkspaceError, match="git fetch failed") as caught:
        clones.fetch(path, "wrong-token")
    assert "wrong-token" not in str(caught.value)


def test_missing_or_wrong_token_fails_fast_without_leaking(
    ws: Workspaces, tmp_path: Path, server: tuple[str, list[str | None]]
) -> None:
    base_url, seen = server
    clones = Clones(ws, str(tmp_path / "cache"), plain_http_hosts=["127.0.0.1"])
    with pytest.raises(WorkspaceError, match="Authentication failed"):
        clones.ensure("o/r", f"{base_url}/o/r.git", None)  # no prompt, no hang
    wrong = "ghs_wrongTOKEN"
    with pytest.raises(WorkspaceError, match="Authentication failed") as caught:
        clones.ensure("o/r", f"{base_url}/o/r.git", wrong)
    message = str(caught.value)
    wrong_basic = base64.b64encode(f"x-access-token:{wrong}".encode()).decode()
    assert f"Basic {wrong_basic}" in seen
    assert wrong not in message and wrong_basic not in message
    assert os.listdir(tmp_path / "cache") == []


def test_token_goes_to_https_only(ws: Workspaces, tmp_path: Path, server: tuple[str, list[str | None]]) -> None:
    base_url, seen = server
    clones = Clones(ws, str(tmp_path / "cache"))  # 127.0.0.1 not allowed plain http: the token stays home
    with pytest.raises(WorkspaceError, match="Authentication failed") as caught:
        clones.ensure("o/r", f"{base_url}/o/r.git", TOKEN)
    assert seen and all(header != f"Basic {BASIC}" for header in seen)
    assert TOKEN not in str(caught.value)


def test_tokens_that_could_forge_headers_are_refused(ws: Workspaces, tmp_path: Path) -> None:
    clones = Clones(ws, str(tmp_path / "cache"))
    with pytest.raises(WorkspaceError, match="control characters") as caught:
        clones.ensure("o/r", "https://github.invalid/o/r.git", "abc\r\nX-Evil: 1")
    assert "Evil" not in str(caught.value)

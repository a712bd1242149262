"""Workspaces against real git repositories in tmp dirs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from forgebot.core.models import DiffStats
from forgebot.engine.workspaces import MergeConflict, MergeRefused, WorkspaceError, Workspaces


def git(cwd: str | Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(autouse=True)
def _no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The machine's global/system git config must neither help nor break these tests.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield


@pytest.fixture
def repo(tmp_path: Path) -> str:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Tester")
    git(path, "config", "user.email", "tester@example.com")
    write(path / "a.txt", "one\ntwo\nthree\n")
    write(path / "c.txt", "gamma\ndelta\n")
    write(path / "src" / "b.py", "print('b')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    write(path / "a.txt", "one\ntwo\nthree\nfour\n")
    git(path, "commit", "-q", "-am", "second")
    return str(path)


@pytest.fixture
def ws() -> Workspaces:
    return Workspaces()


def make_worktree(ws: Workspaces, repo: str, tmp_path: Path, name: str = "a1") -> tuple[str, str]:
    """A prepared worktree at main's head; returns (worktree path, base sha)."""
    _, base = ws.resolve_base(repo, "main")
    worktree = str(tmp_path / "wt" / name)
    ws.prepare(repo, worktree, f"forge/{name}", base)
    return worktree, base


def commit_on_main(repo: str, name: str, text: str) -> str:
    write(Path(repo) / name, text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"upstream {name}")
    return git(repo, "rev-parse", "HEAD")


def test_repo_root_finds_top_level(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    assert os.path.realpath(ws.repo_root(os.path.join(repo, "src"))) == os.path.realpath(repo)
    assert os.path.realpath(ws.repo_root(os.path.join(repo, "src", "b.py"))) == os.path.realpath(repo)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(WorkspaceError, match="not inside a git working tree"):
        ws.repo_root(str(plain))
    with pytest.raises(WorkspaceError, match="does not exist"):
        ws.repo_root(str(tmp_path / "missing"))


def test_repo_root_rejects_bare_repository(ws: Workspaces, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(WorkspaceError, match="not inside a git working tree"):
        ws.repo_root(str(tmp_path / "bare.git"))


def test_resolve_base_current_and_named_branch(ws: Workspaces, repo: str) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert ws.resolve_base(repo, None) == ("main", head)
    git(repo, "branch", "release", "HEAD~1")
    assert ws.resolve_base(repo, "release") == ("release", git(repo, "rev-parse", "HEAD~1"))
    assert ws.head_sha(repo, "main") == head


def test_resolve_base_errors(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=f"base branch 'nope' does not exist in {repo}"):
        ws.resolve_base(repo, "nope")
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(WorkspaceError, match="detached"):
        ws.resolve_base(repo, None)
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", "-b", "trunk", str(empty))
    with pytest.raises(WorkspaceError, match=r"'trunk' .* has no commits"):
        ws.resolve_base(str(empty), None)


def test_ensure_excluded_is_idempotent_and_hides_forge_dir(ws: Workspaces, repo: str) -> None:
    ws.ensure_excluded(repo)
    ws.ensure_excluded(repo)
    exclude = Path(repo, ".git", "info", "exclude").read_text()
    assert exclude.splitlines().count("/.forge/") == 1
    write(Path(repo) / ".forge" / "worktrees" / "x" / "file.txt", "scratch\n")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_ensure_excluded_creates_missing_file(ws: Workspaces, repo: str) -> None:
    info = Path(repo, ".git", "info")
    for child in info.iterdir():
        child.unlink()
    info.rmdir()
    ws.ensure_excluded(repo, "/.scratch/")
    assert (info / "exclude").read_text() == "/.scratch/\n"


def test_prepare_checks_out_base_on_new_branch(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    assert Path(worktree, "a.txt").read_text() == "one\ntwo\nthree\nfour\n"
    assert Path(worktree, "src", "b.py").exists()
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD") == "forge/a1"
    assert git(worktree, "rev-parse", "HEAD") == base
    assert git(worktree, "status", "--porcelain") == ""
    assert (os.path.realpath(worktree), "forge/a1") in [
        (os.path.realpath(path), branch) for path, branch in ws.list_worktrees(repo)
    ]


def test_prepare_inside_excluded_forge_dir_keeps_repo_clean(ws: Workspaces, repo: str) -> None:
    ws.ensure_excluded(repo)
    _, base = ws.resolve_base(repo, None)
    worktree = os.path.join(repo, ".forge", "worktrees", "a1")
    ws.prepare(repo, worktree, "forge/a1", base)
    assert Path(worktree, "c.txt").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_twelve_parallel_prepares_all_succeed(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    _, base = ws.resolve_base(repo, None)
    names = [f"p{i}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(ws.prepare, repo, str(tmp_path / "wt" / n), f"forge/{n}", base) for n in names]
        for future in futures:
            future.result()
    branches = {branch for _, branch in ws.list_worktrees(repo)}
    assert branches == {"main", *(f"forge/{n}" for n in names)}
    for n in names:
        worktree = tmp_path / "wt" / n
        assert git(worktree, "rev-parse", "HEAD") == base
        assert git(worktree, "status", "--porcelain") == ""


def test_prepare_again_resets_worktree_for_retry(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "changed\n")
    git(worktree, "commit", "-q", "-am", "attempt work")
    write(Path(worktree) / "junk.txt", "leftover\n")
    write(Path(worktree) / "c.txt", "dirty\n")
    ws.prepare(repo, worktree, "forge/a1", base)
    assert git(worktree, "rev-parse", "HEAD") == base
    assert git(repo, "rev-parse", "forge/a1") == base
    assert not Path(worktree, "junk.txt").exists()
    assert Path(worktree, "c.txt").read_text() == "gamma\ndelta\n"
    assert git(worktree, "status", "--porcelain") == ""
    assert len(ws.list_worktrees(repo)) == 2


def test_prepare_reports_git_error_cleanly(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        ws.prepare(repo, str(tmp_path / "wt" / "bad"), "forge/bad", "0" * 40)
    message = str(caught.value)
    assert message.startswith(f"git worktree add failed in {repo}: ")
    assert "cmdline" not in message
    with pytest.raises(WorkspaceError, match="is not a directory"):
        ws.list_worktrees(str(tmp_path / "nowhere"))


def test_commit_all_stages_everything_except_excluded(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    wt = Path(worktree)
    write(wt / "a.txt", "ONE\n")
    write(wt / "new" / "d.txt", "new file\n")
    (wt / "c.txt").unlink()
    write(wt / ".aider.chat.history.md", "chat\n")
    write(wt / "src" / ".aider.tags.cache.v3" / "cache.db", "tags\n")
    write(wt / "out" / "tmp" / "x.txt", "scratch\n")
    write(wt / "out" / "keep.txt", "kept\n")
    write(wt / ".aider.input.history", "typed\n")
    git(worktree, "add", ".aider.input.history")  # staged by the agent itself
    sha = ws.commit_all(worktree, "attempt a1", exclude=(".aider*", "out/tmp"))
    assert sha == git(worktree, "rev-parse", "HEAD")
    assert git(worktree, "rev-parse", "HEAD~1") == base
    committed = git(worktree, "diff-tree", "-r", "--no-renames", "--name-status", "HEAD~1", "HEAD")
    assert sorted(committed.splitlines()) == ["A\tnew/d.txt", "A\tout/keep.txt", "D\tc.txt", "M\ta.txt"]
    left = git(worktree, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(left) == [
        "?? .aider.chat.history.md",
        "?? .aider.input.history",
        "?? out/tmp/x.txt",
        "?? src/.aider.tags.cache.v3/cache.db",
    ]


def test_commit_all_uses_configured_author_and_skips_hooks(repo: str, tmp_path: Path) -> None:
    hooks = Path(repo, ".git", "hooks")
    marker = tmp_path / "post-commit-ran"
    write(hooks / "pre-commit", "#!/bin/sh\nexit 1\n")
    write(hooks / "post-commit", f"#!/bin/sh\ntouch {marker}\n")
    for hook in ("pre-commit", "post-commit"):
        (hooks / hook).chmod(0o755)
    ws = Workspaces("Bot", "bot@example.org")
    worktree, _ = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "edited\n")
    assert ws.commit_all(worktree, "attempt") is not None
    assert git(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s") == (
        "Bot <bot@example.org>|Bot <bot@example.org>|attempt"
    )
    assert not marker.exists()


def test_commit_all_without_changes_returns_none(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    assert ws.commit_all(worktree, "nothing") is None
    write(Path(worktree) / ".aider.chat.history.md", "chat only\n")
    assert ws.commit_all(worktree, "nothing", exclude=(".aider*",)) is None
    assert git(worktree, "rev-parse", "HEAD") == base
    with pytest.raises(WorkspaceError, match="commit message must not be empty"):
        ws.commit_all(worktree, "  ")


def test_diff_stats_and_changed_files_are_exact(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    wt = Path(worktree)
    write(wt / "a.txt", "one\nTWO\nthree\nfour\nfive\nsix\n")  # 1 line changed, 2 appended: +3 -1
    write(wt / "d.txt", "1\n2\n3\n4\n")  # +4
    (wt / "c.txt").unlink()  # -2
    (wt / "bin.dat").write_bytes(b"\x00\x01\x02binary\x00")  # binary: counted as a file, 0/0
    ws.commit_all(worktree, "attempt")
    assert ws.diff_stats(worktree, base) == DiffStats(files=4, insertions=7, deletions=3)
    assert sorted(ws.changed_files(worktree, base)) == ["a.txt", "bin.dat", "c.txt", "d.txt"]
    assert ws.diff_stats(worktree, git(worktree, "rev-parse", "HEAD")) == DiffStats()


def test_remove_deletes_worktree_and_branch(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, _ = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "untracked.txt", "x\n")
    assert ws.remove(repo, worktree, delete_branch="forge/a1") is True
    assert not os.path.exists(worktree)
    assert not ws.branch_exists(repo, "forge/a1")
    assert [branch for _, branch in ws.list_worktrees(repo)] == ["main"]
    assert ws.remove(repo, worktree, delete_branch="forge/a1") is False
    assert ws.remove(repo, str(tmp_path / "never-existed")) is False


def test_remove_handles_worktree_whose_dir_is_gone(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, _ = make_worktree(ws, repo, tmp_path)
    subprocess.run(["rm", "-rf", worktree], check=True)
    assert ws.remove(repo, worktree) is True
    assert len(ws.list_worktrees(repo)) == 1
    assert ws.branch_exists(repo, "forge/a1")


def test_prune_forgets_deleted_worktrees(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, _ = make_worktree(ws, repo, tmp_path)
    subprocess.run(["rm", "-rf", worktree], check=True)
    assert len(ws.list_worktrees(repo)) == 2
    ws.prune(repo)
    assert ws.list_worktrees(repo) == [(git(repo, "rev-parse", "--show-toplevel"), "main")]


def test_delete_branch_and_branch_exists(ws: Workspaces, repo: str) -> None:
    git(repo, "branch", "topic")
    assert ws.branch_exists(repo, "topic")
    assert ws.delete_branch(repo, "topic") is True
    assert not ws.branch_exists(repo, "topic")
    assert ws.delete_branch(repo, "topic") is False
    with pytest.raises(WorkspaceError, match="git branch failed"):
        ws.delete_branch(repo, "main")  # checked out in the repo itself


def test_squash_merge_fast_forwards_checked_out_base(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "merged work\n")
    ws.commit_all(worktree, "step 1")
    write(Path(worktree) / "e.txt", "more\n")
    ws.commit_all(worktree, "step 2")
    result = ws.squash_merge(repo, "main", base, worktree, "Attempt a1: the change")
    assert (result.base_branch, result.old_sha, result.rebased) == ("main", base, False)
    assert git(repo, "rev-parse", "main") == result.new_sha
    assert git(repo, "rev-parse", f"{result.new_sha}^@") == base  # exactly one parent: the old head
    assert git(repo, "log", "-1", "--format=%s|%an", "main") == "Attempt a1: the change|forgebot"
    assert Path(repo, "a.txt").read_text() == "merged work\n"
    assert Path(repo, "e.txt").read_text() == "more\n"
    assert git(repo, "status", "--porcelain") == ""


def test_squash_merge_refuses_when_base_moved(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "work\n")
    ws.commit_all(worktree, "work")
    moved = commit_on_main(repo, "c.txt", "upstream\n")
    expected = f"base branch 'main' moved from {base[:7]} to {moved[:7]} since the task started"
    with pytest.raises(MergeRefused, match=expected):
        ws.squash_merge(repo, "main", base, worktree, "merge")
    assert git(repo, "rev-parse", "main") == moved


def test_squash_merge_rebases_onto_moved_base(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "attempt\n")
    ws.commit_all(worktree, "work")
    moved = commit_on_main(repo, "c.txt", "upstream\n")
    result = ws.squash_merge(repo, "main", base, worktree, "merge", rebase=True)
    assert result.rebased and result.old_sha == moved
    assert git(repo, "rev-parse", f"{result.new_sha}^@") == moved
    assert Path(repo, "a.txt").read_text() == "attempt\n"
    assert Path(repo, "c.txt").read_text() == "upstream\n"
    assert git(worktree, "rev-parse", "HEAD~1") == moved  # the attempt branch was replayed on top


def test_squash_merge_conflict_aborts_rebase(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "attempt version\n")
    attempt_head = ws.commit_all(worktree, "work")
    moved = commit_on_main(repo, "a.txt", "upstream version\n")
    with pytest.raises(MergeConflict) as caught:
        ws.squash_merge(repo, "main", base, worktree, "merge", rebase=True)
    assert caught.value.files == ["a.txt"]
    assert "a.txt" in str(caught.value)
    assert git(worktree, "status", "--porcelain") == ""
    assert git(worktree, "rev-parse", "HEAD") == attempt_head
    assert not Path(repo, ".git", "worktrees", "a1", "rebase-merge").exists()
    assert git(repo, "rev-parse", "main") == moved


def test_squash_merge_updates_ref_if_base_not_checked_out(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    git(repo, "switch", "-q", "-c", "elsewhere")
    write(Path(worktree) / "new.txt", "from attempt\n")
    ws.commit_all(worktree, "work")
    result = ws.squash_merge(repo, "main", base, worktree, "merge")
    assert git(repo, "rev-parse", "main") == result.new_sha
    assert git(repo, "rev-parse", "main~1") == base
    assert git(repo, "show", "main:new.txt") == "from attempt"
    assert not Path(repo, "new.txt").exists()  # the repo's checkout (another branch) is untouched


def test_squash_merge_refuses_dirty_target(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    write(Path(worktree) / "a.txt", "attempt\n")
    ws.commit_all(worktree, "work")
    write(Path(repo) / "a.txt", "local edit\n")
    with pytest.raises(MergeRefused, match="local changes"):
        ws.squash_merge(repo, "main", base, worktree, "merge")
    assert git(repo, "rev-parse", "main") == base
    assert Path(repo, "a.txt").read_text() == "local edit\n"


def test_squash_merge_rejects_empty_attempt(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, base = make_worktree(ws, repo, tmp_path)
    with pytest.raises(WorkspaceError, match="no changes"):
        ws.squash_merge(repo, "main", base, worktree, "merge")
    assert git(repo, "rev-parse", "main") == base


def test_disk_usage(ws: Workspaces, repo: str, tmp_path: Path) -> None:
    worktree, _ = make_worktree(ws, repo, tmp_path)
    size = ws.disk_usage(worktree)
    files = sum(p.stat().st_size for p in Path(worktree).rglob("*") if p.is_file() and not p.is_symlink())
    assert size == files > 0
    big = tmp_path / "big"
    write(big / "blob.bin", "x" * 100_000)
    os.symlink(big, Path(worktree) / "link")
    assert ws.disk_usage(worktree) == size + len(os.readlink(Path(worktree) / "link"))
    assert ws.disk_usage(str(tmp_path / "missing")) == 0
    assert ws.disk_usage(str(big / "blob.bin")) == 100_000


def test_create_repo_makes_a_committed_scratch_repository(tmp_path: Path) -> None:
    ws = Workspaces()
    repo = ws.create_repo(str(tmp_path / "scratch"), {"README.md": "hi\n", "src/a.py": "x = 1\n"})
    assert ws.resolve_base(repo, None)[0] == "main"
    assert (tmp_path / "scratch" / "src" / "a.py").read_text() == "x = 1\n"


def test_the_repo_lock_also_holds_across_processes(tmp_path: Path) -> None:
    """A second process cannot take a repository's lock while this one holds it."""
    import subprocess
    import sys
    import time

    from forgebot.engine.workspaces import _repo_lock

    repo = str(tmp_path)
    probe = (
        "import sys, time; from forgebot.engine.workspaces import _repo_lock\n"
        "print('ready', flush=True); start = time.monotonic()\n"
        "with _repo_lock(sys.argv[1]): print(round(time.monotonic() - start, 2), flush=True)\n"
    )
    with _repo_lock(repo):
        child = subprocess.Popen([sys.executable, "-c", probe, repo], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
    waited = float(child.communicate(timeout=20)[0])
    assert waited >= 0.8

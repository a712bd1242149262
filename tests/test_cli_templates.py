"""`forgebot template list|use`, run as a real process on a real repository with a template file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import PYTHON, git, make_repo
from tests.test_cli import forgebot

# An agent that keeps the prompt it was given, so the test reads what the agent really received.
COPY_PROMPT = "import shutil, sys; shutil.copy(sys.argv[1], 'prompt.txt')"
CONFIG = f"""\
agents:
  copier: {{executor: command, command: ["{PYTHON}", "-c", "{COPY_PROMPT}", "{{prompt_file}}"]}}
  other: {{executor: command, command: ["{PYTHON}", "-c", "{COPY_PROMPT}", "{{prompt_file}}"]}}
defaults: {{agents: [other]}}
templates:
  review:
    description: Review a module
    params: {{module: {{description: which module}}}}
    prompt: Review {{{{ module }}}}.
  fix-bug:
    description: overridden by the repository's file
    prompt: From the config.
"""
FIX_BUG = """\
---
description: Fix a bug in one file
title: "Fix {{ file }}"
agents: [copier]
params:
  file: {description: the file to fix}
  line: {default: "1"}
---
Fix the bug in `{{ file }}` near line {{ line }}.
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path / "repo")
    (repo / ".github/forge/templates").mkdir(parents=True)
    (repo / ".github/forge/templates/fix-bug.md").write_text(FIX_BUG)
    config = tmp_path / "forgebot.yml"
    config.write_text(CONFIG)
    return repo, config


def test_list_shows_the_repositorys_and_the_configs_templates(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    done = forgebot(repo, config, "template", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    fix = next(line for line in lines if "fix-bug file=<file> [line=1]" in line)
    assert "Fix a bug in one file" in fix and "copier" in fix and ".github/forge/templates/fix-bug.md" in fix
    assert "overridden" not in done.stdout  # the repository's file wins over the config's entry
    review = next(line for line in lines if "review module=<module>" in line)
    assert "Review a module" in review and "config templates.review" in review
    assert any("module: which module" in line for line in lines)


def test_use_creates_a_task_with_the_rendered_prompt(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    done = forgebot(repo, config, "template", "use", "fix-bug", "file=app.py", "line=7")
    assert done.returncode == 0, done.stderr
    assert "Task 1 created on main" in done.stdout and "attempt 1 copier: succeeded" in done.stdout
    prompt = git(repo, "show", "forge/1-copier:prompt.txt")
    assert prompt.startswith("# Task: Fix app.py\n\nFix the bug in `app.py` near line 7.\n\nWork in the current")
    assert "Fix app.py" in forgebot(repo, config, "task", "list").stdout


def test_use_takes_task_creates_options_anywhere_and_agent_wins(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    done = forgebot(repo, config, "template", "use", "review", "--agent", "other", "module=store", "--detach")
    assert done.returncode == 0, done.stderr
    assert "Task 1 created" in done.stdout and "Running in the background" in done.stdout
    deadline = time.time() + 30
    while "succeeded" not in (status := forgebot(repo, config, "task", "status", "1")).stdout:
        assert time.time() < deadline, status.stdout
        time.sleep(0.3)
    assert "forge/1-other" in status.stdout
    assert git(repo, "show", "forge/1-other:prompt.txt").startswith("# Task: Review store.\n\nReview store.\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown template `nope` (available: fix-bug, review)"),
        (["fix-bug"], "template `fix-bug`: missing parameter file (usage: fix-bug file=<file> [line=1])"),
        (["fix-bug", "file=a", "lin=2"], "template `fix-bug`: unknown parameter lin (usage: fix-bug file=<file>"),
        (["fix-bug", "file"], "template `fix-bug`: `file` is not key=value"),
        (["fix-bug", "file=a", "--agent", "nope"], "unknown agent 'nope'"),
    ],
)
def test_use_errors(setup: tuple[Path, Path], args: list[str], message: str) -> None:
    repo, config = setup
    done = forgebot(repo, config, "template", "use", *args)
    assert done.returncode == 1
    assert done.stderr.startswith(f"forgebot: error: {message}"), done.stderr
    assert "Traceback" not in done.stderr
    assert git(repo, "branch", "--list", "forge/*") == ""  # nothing was started


def test_a_broken_template_file_is_named(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    (repo / ".github/forge/templates/broken.md").write_text("---\nparams: [x]\n---\nUse {{ y }}.\n")
    listing = forgebot(repo, config, "template", "list")
    assert listing.returncode == 1
    assert listing.stderr.startswith(
        "forgebot: error: .github/forge/templates/broken.md body: {{ y }} is not a declared parameter (declared: x"
    )
    # Using another template still works: only the template asked for is read.
    assert forgebot(repo, config, "template", "use", "fix-bug", "file=a.py").returncode == 0


def test_list_without_templates_says_how_to_add_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    config = tmp_path / "forgebot.yml"
    config.write_text("{}\n")
    done = forgebot(repo, config, "template", "list")
    assert done.returncode == 0, done.stderr
    assert "No templates: add .github/forge/templates/NAME.md or a `templates:` entry to the config." in done.stdout

"""`forgebot agents list` shows each CLI's version, picked out of whatever its `--version` prints."""

from __future__ import annotations

import pytest

from forgebot.cli_agents import version_of


@pytest.mark.parametrize(
    ("output", "version"),
    [
        # What the pinned CLIs print (scripts/install-agents.sh), stdout and stderr together.
        ("2.1.197 (Claude Code)\n", "2.1.197"),
        (
            "WARNING: proceeding, even though we could not create PATH aliases: Refusing to create helper binaries "
            'under temporary dir "/tmp" (codex_home: AbsolutePathBuf("/tmp/x/.codex"))\ncodex-cli 0.171.0\n',
            "0.171.0",
        ),
        ("0.61.0\n", "0.61.0"),
        ("GitHub Copilot CLI 1.0.102.\nRun 'copilot update' to check for updates.\n", "1.0.102"),
        ("aider 0.86.2\n", "0.86.2"),
        ("0.0.1790142911\n", "0.0.1790142911"),
        # Other shapes a CLI may use.
        ("v20.20.0\n", "20.20.0"),
        ("tool version 1.0.0-beta.2, built 2026-12-01\n", "1.0.0-beta.2"),
        ("Warning: config 2.0 is deprecated\nmycli 3.4\n", "3.4"),
        ("Run 'x update' to check for updates.\nx 1.2.3\n", "1.2.3"),
    ],
)
def test_the_version_line_is_found(output: str, version: str) -> None:
    assert version_of(output) == version


@pytest.mark.parametrize(
    "output", ["", "\n\n", "Run 'copilot update' to check for updates.\n", "build abc123\n", "10\n"]
)
def test_no_version_shows_as_unknown(output: str) -> None:
    assert version_of(output) == "?"


def test_a_version_inside_a_word_or_path_is_not_taken() -> None:
    assert version_of("see /opt/lib2.5x/tool and release-notes1.2\nunknown\n") == "?"

"""Install hints: what `forgebot agents list` and a missing-CLI error tell a user must be true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forgebot.agents import ADAPTERS

INSTALL_SCRIPT = Path(__file__).parent.parent / "scripts" / "install-agents.sh"
# `npm install -g PACKAGE@VERSION` / `pip install PACKAGE==VERSION` at the start of a hint.
_HINT_PACKAGE = re.compile(r"^(?:npm install -g (?P<npm>\S+)|pip install (?P<pip>\S+))")


def installed_by_script() -> set[str]:
    """The pinned packages scripts/install-agents.sh installs, as written there ("name@1.2.3", "name==1.2.3")."""
    text = INSTALL_SCRIPT.read_text(encoding="utf-8")
    return set(re.findall(r'"([^"\s]+(?:@|==)\d[^"\s]*)"', text))


def test_the_script_pins_are_read() -> None:
    assert "@anthropic-ai/claude-code@2.1.197" in installed_by_script()
    assert "aider-chat==0.86.2" in installed_by_script()


@pytest.mark.parametrize("executor", sorted(set(ADAPTERS) - {"command"}))
def test_a_hint_names_the_install_script_only_when_it_installs_that_package(executor: str) -> None:
    hint = ADAPTERS[executor].install_hint
    match = _HINT_PACKAGE.match(hint)
    package = match and (match["npm"] or match["pip"])
    if "install-agents.sh" in hint:
        assert package in installed_by_script(), hint
    elif package:
        assert package not in installed_by_script(), f"{hint}: could point at scripts/install-agents.sh"


def test_amp_hint_names_its_npm_package() -> None:
    hint = ADAPTERS["amp"].install_hint
    assert hint.startswith("npm install -g @sourcegraph/amp@")
    assert "install-agents.sh" not in hint

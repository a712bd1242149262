"""Helpers shared by the engine and CLI tests: real git repositories and fake-agent profiles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forgebot.core.models import AgentProfile, CheckSpec, Price

FAKE_AGENT = str(Path(__file__).parent / "agents" / "fake_agent.py")
PYTHON = sys.executable


def git(repo: Path | str, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository on `main` with one commit: by default a tiny module and a unittest that checks it."""
    path.mkdir(parents=True, exist_ok=True)
    files = files or {
        "app.py": "def answer() -> int:\n    return 42\n",
        "test_app.py": (
            "import unittest\n\nfrom app import answer\n\n\n"
            "class T(unittest.TestCase):\n    def test_answer(self) -> None:\n        self.assertEqual(answer(), 42)\n"
        ),
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def agent(
    name: str, *steps: str, tier: int = 1, price: Price | None = None, env: dict[str, str] | None = None
) -> AgentProfile:
    return AgentProfile(
        name=name,
        executor="command",
        command=(PYTHON, FAKE_AGENT, *steps),
        tier=tier,
        price=price,
        env=env or {},
    )


UNITTEST = CheckSpec(name="tests", run=(PYTHON, "-m", "unittest", "-q"), timeout=60)


def breaking_change() -> tuple[str, ...]:
    return ("write", "app.py", "def answer() -> int:\n    return 41")


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def rsa_key_pair() -> tuple[str, str]:
    """A fresh (private, public) PEM pair, as a GitHub App's key and what GitHub keeps of it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()

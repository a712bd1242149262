"""Runs forgebot on a throwaway repository with three example agents, no agent account needed.

    .venv/bin/python examples/demo.py [--keep]

It makes a small git repository whose `slugify()` is missing, then runs
`forgebot task create` with three `command` agents in parallel: `tidy` (quick and correct),
`thorough` (slower, adds tests) and `hasty` (fastest, breaks the test). You see the live table,
then the comparison with the winner, the speedup over running them one by one, and the cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))


def make_repo(root: str) -> str:
    repo = os.path.join(root, "demo-repo")
    os.makedirs(repo)
    files = {
        "text.py": "def slugify(text: str) -> str:\n    raise NotImplementedError\n",
        "test_text.py": textwrap.dedent(
            """\
            import unittest

            from text import slugify


            class SlugTests(unittest.TestCase):
                def test_words(self) -> None:
                    self.assertEqual(slugify("Hello World!"), "hello-world")


            if __name__ == "__main__":
                unittest.main()
            """
        ),
    }
    for name, text in files.items():
        with open(os.path.join(repo, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    git = ["git", "-C", repo, "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "slugify stub"], check=True)
    return repo


def write_config(root: str) -> str:
    agent = os.path.join(HERE, "agents")
    python = sys.executable
    config = textwrap.dedent(
        f"""\
        agents:
          tidy:     {{executor: command, command: ["{python}", "{agent}/tidy.py", "{{prompt_file}}"],
                     price: {{input_per_mtok: 3.0, output_per_mtok: 15.0}}}}
          thorough: {{executor: command, command: ["{python}", "{agent}/thorough.py", "{{prompt_file}}"],
                     price: {{input_per_mtok: 5.0, output_per_mtok: 25.0}}}}
          hasty:    {{executor: command, command: ["{python}", "{agent}/hasty.py", "{{prompt_file}}"],
                     price: {{input_per_mtok: 0.5, output_per_mtok: 1.5}}}}
        defaults: {{agents: [tidy, thorough, hasty]}}
        checks:
          - {{name: tests, run: ["{python}", "-m", "unittest", "-q"], timeout: 60}}
        limits: {{max_parallel: 4, per_agent: 2, attempt_timeout: 2m}}
        """
    )
    path = os.path.join(root, "forgebot.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(config)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway repository and print its path")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="forgebot-demo-")
    try:
        repo = make_repo(root)
        config = write_config(root)
        forgebot = [sys.executable, "-m", "forgebot.cli", "--repo", repo, "--config", config]
        print(f"Throwaway repository: {repo}\n", flush=True)
        created = subprocess.run(
            [
                *forgebot,
                "task",
                "create",
                "Implement slugify",
                "--description",
                "text.slugify(text) must return lowercase words joined by hyphens; test_text.py shows it.",
            ],
            check=False,
        )
        subprocess.run(["git", "-C", repo, "branch", "--list", "forge/*", "-v"], check=True)
        # exit 3 means "finished, not every attempt succeeded": expected here, hasty breaks the test.
        return 0 if created.returncode in (0, 3) else created.returncode
    finally:
        if args.keep:
            print(f"\nKept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""How many GitHub requests does one three-attempt task make, from the `forge` label to the winner's PR?

A whole daemon as tests/bot_harness.py builds it, against the fake GitHub (which logs every request), with
`auto_pr` on and three agents that print many lines over several seconds, and a short progress interval, so that
there are many progress events. Requests are split into reads (GET) and writes (everything else). Run twice in the
same process: with the default edit budget (bot.max_progress_edits, the gap doubling every few edits), and with an
unbudgeted baseline (the same interval, no doubling, no cap: the publisher as it was). Also prints the number of
progress events (what a publisher editing on every event would write). Target: at most 25 writes.

    .venv/bin/python bench/api_calls.py [--lines 100] [--pause 0.3] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' harness and fake GitHub

from forgebot.engine.events import EngineEvent, EventKind
from forgebot.logs import configure_logging
from tests import payloads
from tests.bot_harness import BotHarness, fake_agent

TARGET_WRITES = 25
UNBUDGETED = 10**9


def chatty(name: str, lines: int, pause: float) -> dict[str, object]:
    steps: list[str] = []
    for n in range(lines):
        steps += ["say", f"{name}: step {n + 1} of {lines}", "sleep", str(pause)]
    return fake_agent(*steps, "write", f"{name}.py", f"NAME = {name!r}", "usage", "1000", "200", "cost", "0.01")


async def one_task(args: argparse.Namespace, *, budgeted: bool) -> tuple[Counter[str], int, int]:
    agents = {name: chatty(name, args.lines, args.pause) for name in ("claude", "codex", "gemini")}
    bot = {"auto_pr": True, "progress_interval": args.interval}
    async with BotHarness.start(Path(tempfile.mkdtemp(prefix="forgebot-bench-")), agents=agents, bot=bot) as h:
        publisher = h.daemon.bot.publisher
        if not budgeted:  # the same interval between edits, never stretched, never capped: the publisher as it was
            publisher.settings = replace(
                publisher.settings, max_progress_edits=UNBUDGETED, progress_double_every=UNBUDGETED
            )
        events: list[EngineEvent] = []
        h.daemon.engine.bus.subscribe(events.append)
        h.gh.reset()
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice")) == 202
        await h.until_idle(timeout=300)
        pulls = [n for n, issue in h.gh.repos["acme/widgets"].issues.items() if issue.pull is not None]
        assert pulls, "the winner's PR was not opened:\n" + "\n".join(h.gh.actions)
        kinds = Counter("read" if r["method"] == "GET" else "write" for r in h.gh.requests)
        edits = len(h.gh.requests_to("PATCH", r"/issues/comments/\d+$"))
        progress = sum(1 for e in events if e.kind is EventKind.ATTEMPT_PROGRESS)
        return kinds, edits, progress


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning")
    budgeted, budget_edits, progress = await one_task(args, budgeted=True)
    baseline, baseline_edits, baseline_progress = await one_task(args, budgeted=False)
    seconds = args.lines * args.pause
    print(f"one task, label -> three attempts (~{seconds:.0f} s, {args.lines} lines each) -> PR, auto_pr on, "
          f"progress_interval {args.interval} s")  # fmt: skip
    print(f"  progress events: {progress} (baseline run: {baseline_progress}): one edit each would be that many writes")
    for name, kinds, edits in (("budgeted", budgeted, budget_edits), ("unbudgeted", baseline, baseline_edits)):
        print(f"  {name:10}  reads {kinds['read']:4}  writes {kinds['write']:4}  (progress comment edits {edits})")
    verdict = "ok" if budgeted["write"] <= TARGET_WRITES else "MISSED"
    ratio = budgeted["write"] / baseline["write"]
    print(
        f"  writes {budgeted['write']} vs target <= {TARGET_WRITES}: {verdict}; {ratio:.0%} of the unbudgeted baseline"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100, help="lines each agent prints")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between an agent's lines")
    parser.add_argument("--interval", type=float, default=0.1, help="bot.progress_interval")
    asyncio.run(main(parser.parse_args()))

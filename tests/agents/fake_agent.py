"""A scripted stand-in for a coding agent, driven by its argv: a list of steps run in order.

write PATH TEXT     write TEXT to PATH (relative to the worktree)
append PATH TEXT    append a line
sleep SECONDS       sleep, printing a progress line first
say TEXT            print a line
usage IN OUT        report tokens through the command executor's ::forgebot line
cost USD            report the agent's own dollar figure
error TEXT          report an error in the stream (and keep exit code 0, like several real CLIs)
env PATH            dump the environment as JSON to PATH (outside the worktree when absolute)
child PIDFILE       start a grandchild that sleeps forever; write its pid to PIDFILE
pidfile PATH        write our own pid to PATH
flood MEGABYTES     write that many MB of output without newlines
exit CODE           exit with CODE now
hang                sleep forever
ignore-signals      ignore SIGINT and SIGTERM from now on
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    steps = list(argv)
    while steps:
        op = steps.pop(0)
        if op == "write":
            path, text = steps.pop(0), steps.pop(0)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        elif op == "append":
            path, text = steps.pop(0), steps.pop(0)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        elif op == "sleep":
            seconds = float(steps.pop(0))
            print(f"thinking for {seconds}s", flush=True)
            time.sleep(seconds)
        elif op == "say":
            print(steps.pop(0), flush=True)
        elif op == "usage":
            tokens_in, tokens_out = int(steps.pop(0)), int(steps.pop(0))
            print(
                "::forgebot " + json.dumps({"usage": {"tokens_in": tokens_in, "tokens_out": tokens_out}}),
                flush=True,
            )
        elif op == "cost":
            print("::forgebot " + json.dumps({"usage": {"cost_usd": float(steps.pop(0))}}), flush=True)
        elif op == "error":
            print("::forgebot " + json.dumps({"error": steps.pop(0)}), flush=True)
        elif op == "env":
            with open(steps.pop(0), "w", encoding="utf-8") as handle:
                json.dump(dict(os.environ), handle)
        elif op == "child":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            with open(steps.pop(0), "w", encoding="utf-8") as handle:
                handle.write(str(child.pid))
        elif op == "pidfile":
            with open(steps.pop(0), "w", encoding="utf-8") as handle:
                handle.write(str(os.getpid()))
        elif op == "flood":
            chunk = b"x" * 65536
            for _ in range(int(float(steps.pop(0)) * 16)):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        elif op == "exit":
            return int(steps.pop(0))
        elif op == "hang":
            print("working...", flush=True)
            time.sleep(3600)
        elif op == "ignore-signals":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            print(f"fake_agent: unknown step {op!r}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

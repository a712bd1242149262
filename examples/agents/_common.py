"""Shared bits of the example agents: read the prompt, show progress, report usage like a real CLI would."""

from __future__ import annotations

import json
import sys
import time


def read_prompt() -> str:
    with open(sys.argv[1], encoding="utf-8") as handle:
        return handle.read()


def step(text: str, seconds: float) -> None:
    print(text, flush=True)
    time.sleep(seconds)


def report(tokens_in: int, tokens_out: int, message: str) -> None:
    # The `command` executor reads these lines; forgebot prices the tokens with the profile's price.
    print(
        "::forgebot " + json.dumps({"usage": {"tokens_in": tokens_in, "tokens_out": tokens_out, "turns": 3}}),
        flush=True,
    )
    print("::forgebot " + json.dumps({"message": message}), flush=True)


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)

"""How fast does the real daemon acknowledge `POST /webhook`, against a bare aiohttp handler that only checks the
HMAC signature?

The daemon is built as tests/bot_harness.py builds it (the real app, store and router, PyGithub pointed at the
fake GitHub) and serves on 127.0.0.1. The bare handler reads the body, checks `X-Hub-Signature-256` and answers
202. A load generator in another process (multiprocessing: the servers' event loop is not shared with it) sends
signed deliveries with aiohttp:
  throughput:  a bounded count (and time) of deliveries, `--concurrency` at a time, as fast as they are answered;
  latency:     open loop at a fixed offered rate (`--rate`, 200/s), each delivery timed from send to answer.
Two kinds of deliveries: cheap ones (`issue_comment` without a command) and a realistic mix (comments without a
command, other labels, unrouted events, closed pull requests that are not forgebot's, which are recorded and
handled, pings, and redeliveries of recorded ids). None starts agent work. Rounds alternate which server goes
first. Prints deliveries/s of both, the ratio (target >= 80%) and p50/p99 at the fixed rate (target p99 < 20 ms).
It reports; it never asserts.

    .venv/bin/python bench/webhook_ingress.py [--count 2000] [--concurrency 32] [--rate 200] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, TCPConnector, web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' harness and fake GitHub

from forgebot.github.webhooks import signature_valid
from forgebot.logs import configure_logging
from tests import payloads
from tests.bot_harness import REPO, SECRET, BotHarness

TARGET_RATIO = 0.8
TARGET_P99_MS = 20.0
Request = tuple[str, str, bytes, str]  # event, delivery id, body, signature


def comment(repo: dict[str, Any], text: str) -> dict[str, Any]:
    return payloads.commented(repo, 1, text, "alice")


def deliveries(repo: dict[str, Any], count: int, kind: str, run: str) -> list[Request]:
    """`count` signed deliveries with unique ids (except the mix's deliberate redeliveries).

    cheap: comments without a command (most of what an active repository sends).
    mix, per 20: 12 comments without a command, 2 other labels, 2 unrouted events (issues.opened), 2 closed pull
    requests from forge/ branches that are not forgebot's (recorded, handled: a store read), 1 ping, 1 redelivery
    of a recorded id."""
    kinds: list[tuple[str, Callable[[int], dict[str, Any]]]] = [("issue_comment", lambda n: comment(repo, "Thanks!"))]
    if kind == "mix":
        kinds = [
            *[("issue_comment", lambda n: comment(repo, f"Looks good to me ({n}), see #12."))] * 12,
            *[("issues", lambda n: payloads.labeled(repo, 1, "bug", "alice"))] * 2,  # routed, not our label
            *[("issues", lambda n: {**payloads.labeled(repo, 1, "bug", "alice"), "action": "opened"})] * 2,
            *[("pull_request", lambda n: payloads.pull_closed(repo, 1000 + n, f"forge/{n}-claude", merged=True))] * 2,
            ("ping", lambda n: {"zen": "Design for failure.", "hook_id": 1, "repository": repo}),
            ("redelivery", lambda n: {}),
        ]
    out: list[Request] = []
    recorded: list[Request] = []
    for n in range(count):
        event, build = kinds[n % len(kinds)]
        if event == "redelivery":
            if recorded:
                out.append(recorded[-1])
                continue
            event, build = kinds[0]
        body, signature = payloads.signed(build(n), SECRET)
        out.append((event, f"{run}-{n}", body, signature))
        if event == "pull_request":
            recorded.append(out[-1])
    return out


# ---- the load generator (a separate process)


async def _send(session: ClientSession, url: str, request: Request) -> tuple[int, float]:
    event, delivery, body, signature = request
    started = time.perf_counter()
    async with session.post(url, data=body, headers=payloads.headers(event, delivery, signature)) as answer:
        await answer.read()
        return answer.status, time.perf_counter() - started


async def _closed_loop(url: str, requests: list[Request], concurrency: int, seconds: float) -> dict[str, Any]:
    queue = list(reversed(requests))
    statuses: Counter[int] = Counter()
    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while queue and time.perf_counter() < deadline:
                status, _ = await _send(session, url, queue.pop())
                statuses[status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"statuses": dict(statuses), "elapsed": elapsed, "latencies": []}


async def _open_loop(url: str, requests: list[Request], rate: float, seconds: float) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        started = time.perf_counter()

        async def one(request: Request) -> None:
            status, took = await _send(session, url, request)
            statuses[status] += 1
            latencies.append(took)

        tasks = []
        for n, request in enumerate(requests[: int(rate * seconds)]):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(request)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {"statuses": dict(statuses), "elapsed": elapsed, "latencies": latencies}


def _generator(mode: str, url: str, requests: list[Request], knob: float, seconds: float, out: Any) -> None:
    if mode == "closed":
        result = asyncio.run(_closed_loop(url, requests, int(knob), seconds))
    else:
        result = asyncio.run(_open_loop(url, requests, knob, seconds))
    out.send(result)
    out.close()


async def generate(mode: str, url: str, requests: list[Request], knob: float, seconds: float) -> dict[str, Any]:
    """Run the load generator in a fresh process; the servers keep this process's event loop to themselves."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_generator, args=(mode, url, requests, knob, seconds, send))
    process.start()
    send.close()
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = await loop.run_in_executor(None, receive.recv)
    await loop.run_in_executor(None, process.join)
    return result


# ---- the servers


async def bare_server() -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_valid(body, request.headers.get("X-Hub-Signature-256"), [SECRET]):
            return web.json_response({"message": "bad signature"}, status=401)
        return web.json_response({"message": "accepted"}, status=202)

    app = web.Application(client_max_size=26 * 1024 * 1024)
    app.router.add_post("/webhook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/webhook"


async def until_quiet(h: BotHarness) -> None:
    while h.daemon.webhooks.in_flight:
        await asyncio.sleep(0.01)


def rate_of(result: dict[str, Any]) -> float:
    return sum(result["statuses"].values()) / result["elapsed"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning")
    async with BotHarness.start(Path(tempfile.mkdtemp(prefix="forgebot-bench-"))) as h:
        assert h.gh.repos[REPO]
        bare, bare_url = await bare_server()
        try:
            for kind in ("cheap", "mix"):
                await measure(h, bare_url, kind, args)
        finally:
            await bare.cleanup()


async def measure(h: BotHarness, bare_url: str, kind: str, args: argparse.Namespace) -> None:
    """Rounds alternate which server goes first; each round pairs the two close in time (the machine is shared and
    noisy), so the ratio reported is the median of the per-round ratios."""
    urls = {"bare": bare_url, "daemon": h.url}
    rates: dict[str, list[float]] = {"bare": [], "daemon": []}
    tails: dict[str, list[tuple[float, float]]] = {"bare": [], "daemon": []}
    statuses: dict[str, Counter[int]] = {"bare": Counter(), "daemon": Counter()}
    for round_ in range(args.rounds):
        order = ["bare", "daemon"] if round_ % 2 == 0 else ["daemon", "bare"]
        for name in order:
            requests = deliveries(h.repo_payload, args.count, kind, f"{kind}-{name}-{round_}")
            result = await generate("closed", urls[name], requests, args.concurrency, args.seconds * 4)
            await until_quiet(h)
            rates[name].append(rate_of(result))
            statuses[name].update({int(k): v for k, v in result["statuses"].items()})
        for name in order:
            requests = deliveries(h.repo_payload, int(args.rate * args.seconds), kind, f"{kind}-{name}-rate-{round_}")
            result = await generate("open", urls[name], requests, args.rate, args.seconds)
            await until_quiet(h)
            latencies = result["latencies"]
            tails[name].append((percentile(latencies, 0.5), percentile(latencies, 0.99)))
    ratio = statistics.median(d / b for d, b in zip(rates["daemon"], rates["bare"], strict=True))
    print(f"[{kind}] throughput: {args.count} deliveries per run, {args.concurrency} at a time, {args.rounds} rounds")
    for name in ("bare", "daemon"):
        per_round = " ".join(f"{r:.0f}" for r in rates[name])
        print(f"  {name:6}  median {statistics.median(rates[name]):6.0f} deliveries/s  (rounds: {per_round})  "
              f"statuses {dict(sorted(statuses[name].items()))}")  # fmt: skip
    print(f"  ratio daemon/bare {ratio:.0%} (median of rounds; target >= {TARGET_RATIO:.0%}: "
          f"{'ok' if ratio >= TARGET_RATIO else 'MISSED'})")  # fmt: skip
    print(f"[{kind}] latency at {args.rate:.0f} deliveries/s offered, {args.seconds:.0f} s per round:")
    for name in ("bare", "daemon"):
        p50 = statistics.median(p for p, _ in tails[name])
        p99 = statistics.median(p for _, p in tails[name])
        rounds = " ".join(f"{p:.1f}" for _, p in tails[name])
        verdict = f"  target p99 < {TARGET_P99_MS:.0f} ms: {'ok' if p99 < TARGET_P99_MS else 'MISSED'}"
        print(f"  {name:6}  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms  (p99 per round: {rounds})"
              + (verdict if name == "daemon" else ""))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="deliveries per throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="offered deliveries/s for the latency run")
    parser.add_argument("--seconds", type=float, default=4.0, help="latency run length (throughput: 4x, a bound)")
    asyncio.run(main(parser.parse_args()))

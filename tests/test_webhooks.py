"""POST /webhook over real HTTP: signatures, size, malformed bodies, dedupe, background work and resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from forgebot.github.routing import Router, WebhookEvent
from forgebot.github.webhooks import Webhooks, signature_valid
from forgebot.store import NotFound, open_store
from forgebot.store.bot import BotStore, DeliveryStatus
from tests import payloads

SECRET = "It's a Secret to Everybody"
REPO = payloads.repository("acme/widgets", "/nonexistent")


def test_signature_matches_githubs_documented_vector() -> None:
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_valid(b"Hello, World!", header, [SECRET])
    assert signature_valid(b"Hello, World!", header, ["old-secret", SECRET])  # rotation: any configured secret
    assert not signature_valid(b"Hello, World!", header, ["other"])
    assert not signature_valid(b"Hello, World!!", header, [SECRET])
    assert not signature_valid(b"Hello, World!", header.replace("sha256=", "sha1="), [SECRET])
    assert not signature_valid(b"Hello, World!", None, [SECRET])
    assert not signature_valid(b"Hello, World!", header, [""])  # an empty secret never matches


@dataclass
class Recorder:
    seen: list[WebhookEvent] = field(default_factory=list)
    fail_times: int = 0
    gate: asyncio.Event | None = None

    async def __call__(self, event: WebhookEvent) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.seen.append(event)
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("GitHub answered 502")


@dataclass
class Served:
    url: str
    hooks: Webhooks
    bot: BotStore
    recorder: Recorder

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        async with aiohttp.ClientSession() as session, session.post(self.url, data=body, headers=headers) as answer:
            return answer.status, await answer.json()

    async def deliver(self, payload: dict[str, object] | bytes, delivery: str = "d-1", event: str = "issues") -> int:
        body, sig = payloads.signed(payload, SECRET)
        status, _ = await self.post(body, payloads.headers(event, delivery, sig))
        return status

    async def settle(self) -> None:
        for _ in range(200):
            if not self.hooks.in_flight:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("handlers still running")


async def _serve(tmp_path: Path, recorder: Recorder) -> AsyncIterator[Served]:
    store = open_store(f"sqlite:///{tmp_path / 'forgebot.db'}")
    bot = store.bot_store()
    router = Router()
    router.add("issues", "labeled", recorder)
    router.add("issue_comment", None, recorder)
    hooks = Webhooks([SECRET], bot, router)
    app = web.Application(client_max_size=30 * 1024 * 1024)
    app.router.add_post("/webhook", hooks.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Served(f"http://127.0.0.1:{port}/webhook", hooks, bot, recorder)
    finally:
        await hooks.drain(5)
        await runner.cleanup()
        store.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for value in _serve(tmp_path, Recorder()):
        yield value


def labeled() -> dict[str, object]:
    return payloads.labeled(REPO, 7, "forge", "alice")


async def test_a_signed_delivery_is_accepted_then_handled(served: Served) -> None:
    assert await served.deliver(labeled()) == 202
    await served.settle()
    assert [(e.delivery, e.event, e.action, e.repo) for e in served.recorder.seen] == [
        ("d-1", "issues", "labeled", "acme/widgets")
    ]
    assert served.bot.get_delivery("d-1").status is DeliveryStatus.DONE


async def test_a_redelivered_handled_id_is_a_no_op(served: Served) -> None:
    assert await served.deliver(labeled()) == 202
    await served.settle()
    assert await served.deliver(labeled()) == 200
    await served.settle()
    assert len(served.recorder.seen) == 1


async def test_a_failed_delivery_runs_again_when_redelivered(served: Served) -> None:
    served.recorder.fail_times = 1
    await served.deliver(labeled())
    await served.settle()
    failed = served.bot.get_delivery("d-1")
    assert failed.status is DeliveryStatus.FAILED and "502" in (failed.error or "")
    assert await served.deliver(labeled()) == 202
    await served.settle()
    assert len(served.recorder.seen) == 2
    assert served.bot.get_delivery("d-1").status is DeliveryStatus.DONE


@pytest.mark.parametrize(
    ("mangle", "status", "message"),
    [
        ("bad_signature", 401, "signature does not match"),
        ("no_signature", 401, "signature does not match"),
        ("malformed", 400, "body is not JSON"),
        ("array", 400, "not a JSON object"),
        ("no_delivery", 400, "X-GitHub-Delivery"),
    ],
)
async def test_bad_input_gets_a_clear_error_and_no_work(served: Served, mangle: str, status: int, message: str) -> None:
    body, sig = payloads.signed(labeled(), SECRET)
    if mangle in ("malformed", "array"):
        body, sig = payloads.signed(b'{"action": "labeled",' if mangle == "malformed" else b"[1]", SECRET)
    headers = payloads.headers("issues", "d-1", sig)
    if mangle == "bad_signature":
        headers["X-Hub-Signature-256"] = payloads.signed(labeled(), "wrong secret")[1]
    elif mangle == "no_signature":
        del headers["X-Hub-Signature-256"]
    elif mangle == "no_delivery":
        del headers["X-GitHub-Delivery"]
    answer, reply = await served.post(body, headers)
    assert (answer, message in reply["message"]) == (status, True), reply
    await served.settle()
    assert served.recorder.seen == []


async def test_a_body_over_25_mb_is_refused(served: Served) -> None:
    body = b'{"pad": "' + b"x" * (25 * 1024 * 1024 + 10) + b'"}'
    _, sig = payloads.signed(b"", SECRET)
    answer, reply = await served.post(body, payloads.headers("issues", "d-1", sig))
    assert answer == 413 and "25 MB" in reply["message"]


async def test_ping_and_unrouted_events_are_acknowledged_and_ignored(served: Served) -> None:
    assert await served.deliver({"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping") == 200
    assert await served.deliver({"action": "opened", "issue": {}}, delivery="d-2") == 200  # issues.opened
    assert await served.deliver({"action": "created"}, delivery="d-3", event="star") == 200
    await served.settle()
    assert served.recorder.seen == []
    with pytest.raises(Exception, match="not found"):
        served.bot.get_delivery("d-2")  # ignored deliveries are not even recorded


async def test_the_acknowledgement_does_not_wait_for_the_work(served: Served) -> None:
    served.recorder.gate = asyncio.Event()
    assert await served.deliver(labeled()) == 202  # answered while the handler is still blocked
    assert served.hooks.in_flight == 1
    served.recorder.gate.set()
    await served.settle()
    assert len(served.recorder.seen) == 1


async def test_a_delivery_a_killed_daemon_accepted_is_resumed(tmp_path: Path) -> None:
    gate = asyncio.Event()
    async for first in _serve(tmp_path, Recorder(gate=gate)):
        assert await first.deliver(labeled(), delivery="d-9") == 202
        # The daemon dies here: the handler never ran to the end (drain times out while it is gated).
        await first.hooks.drain(0.05)
        assert first.bot.get_delivery("d-9").status is DeliveryStatus.PENDING
        break
    gate.set()
    async for second in _serve(tmp_path, Recorder()):
        assert await second.hooks.resume() == 1
        await second.settle()
        assert [e.delivery for e in second.recorder.seen] == ["d-9"]
        assert json.loads(json.dumps(second.recorder.seen[0].payload))["issue"]["number"] == 7
        assert second.bot.get_delivery("d-9").status is DeliveryStatus.DONE


async def test_while_draining_deliveries_get_503_and_are_not_recorded(served: Served) -> None:
    served.hooks.stop_accepting()
    assert await served.deliver(labeled(), delivery="d-late") == 503
    assert await served.deliver({"zen": "Keep it logically awesome."}, delivery="d-ping", event="ping") == 503
    body, _ = payloads.signed(labeled(), "wrong secret")
    status, _ = await served.post(body, payloads.headers("issues", "d-bad", "sha256=" + "0" * 64))
    assert status == 401  # a bad signature is still a bad signature
    assert served.recorder.seen == [] and served.bot.pending_deliveries() == []
    with pytest.raises(NotFound, match="d-late"):  # GitHub keeps it for a redelivery to the next daemon
        served.bot.get_delivery("d-late")


async def test_a_delivery_no_handler_has_anything_to_do_is_acknowledged_unrecorded(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'forgebot.db'}")
    recorder = Recorder()
    router = Router()
    router.add("issue_comment", "created", recorder, relevant=lambda e: "/forge" in e.payload["comment"]["body"])
    hooks = Webhooks([SECRET], store.bot_store(), router)
    app = web.Application()
    app.router.add_post("/webhook", hooks.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/webhook"  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            for delivery, text in (("chat", "Thanks, looks good"), ("cmd", "/forge status")):
                body, sig = payloads.signed(payloads.commented(REPO, 7, text, "alice"), SECRET)
                async with session.post(url, data=body, headers=payloads.headers("issue_comment", delivery, sig)) as r:
                    assert (r.status, (await r.json())["message"]) == (
                        (200, "nothing to do: issue_comment.created") if delivery == "chat" else (202, "accepted")
                    )
        await hooks.drain(5)
        assert [e.delivery for e in recorder.seen] == ["cmd"]
        assert store.bot_store().get_delivery("cmd").status is DeliveryStatus.DONE
        with pytest.raises(NotFound):
            store.bot_store().get_delivery("chat")
    finally:
        await runner.cleanup()
        store.close()

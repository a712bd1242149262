"""POST /webhook: size limit, HMAC over the raw bytes, delivery dedupe, acknowledged in milliseconds.

The handlers run afterwards in tracked background tasks; the delivery (with its payload) is in the store before
the 202 goes out, so a crash between acknowledging and finishing loses nothing: `resume()` runs it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiohttp import web

from forgebot.github.deliveries import DeliveryBook
from forgebot.github.routing import Router, WebhookEvent
from forgebot.github.settings import BODY_LIMIT
from forgebot.store.bot import BotStore, Claim, Finish

log = structlog.get_logger(__name__)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Constant-time comparison against every configured secret (several during a rotation)."""
    if not header or not header.startswith("sha256="):
        return False
    given = header.encode()
    return any(hmac.compare_digest(signature(secret, body).encode(), given) for secret in secrets if secret)


def issue_number(payload: dict[str, Any]) -> int | None:
    """The issue or pull request a delivery is about, if any."""
    for key in ("issue", "pull_request"):
        item = payload.get(key)
        number = item.get("number") if isinstance(item, dict) else None
        if isinstance(number, int):
            return number
    return None


def _reply(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class Webhooks:
    def __init__(
        self,
        secrets: Sequence[str],
        bot_store: BotStore,
        router: Router,
        *,
        clock: Callable[[], float] = time.time,
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        if not [secret for secret in secrets if secret]:
            raise ValueError("at least one webhook secret is required")
        self._secrets = tuple(secrets)
        self._store = bot_store
        self._book = DeliveryBook(bot_store)  # claims and finishes, batched by one writer
        self._router = router
        self._clock = clock
        self._on_result = on_result or (lambda _reason: None)  # metrics: accepted, duplicate, bad_signature...
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = True

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > BODY_LIMIT:
            response = self._rejected(413, "too_large", "payload larger than 25 MB")
            response.force_close()  # the unread body must not be drained to keep the connection alive
            return response
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._rejected(413, "too_large", "payload larger than 25 MB")
        if not signature_valid(body, request.headers.get("X-Hub-Signature-256"), self._secrets):
            return self._rejected(401, "bad_signature", "signature does not match (X-Hub-Signature-256)")
        if not self._accepting:
            # Not recorded: GitHub shows the failure in its delivery log and it can be redelivered later.
            return self._rejected(503, "shutting_down", "shutting down; redeliver later")
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not event or not delivery:
            return self._rejected(400, "missing_headers", "X-GitHub-Event and X-GitHub-Delivery are required")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return self._rejected(400, "malformed_json", f"body is not JSON: {error}")
        if not isinstance(payload, dict):
            return self._rejected(400, "malformed_json", "body is not a JSON object")
        hook = WebhookEvent(delivery, event, payload)
        if event == "ping":
            self._on_result("ping")
            return _reply(200, "pong")
        if not self._router.wants(event, hook.action):
            self._on_result("ignored")
            return _reply(200, f"ignored: {event}.{hook.action or '-'}")
        if not self._router.relevant(hook):  # e.g. a comment without a command: nothing to record or run
            self._on_result("ignored")
            return _reply(200, f"nothing to do: {event}.{hook.action or '-'}")
        claim = Claim(delivery, event, hook.action, hook.repo, body.decode(), self._clock())
        claimed = await self._book.claim(claim)
        if not claimed:
            self._on_result("duplicate")
            return _reply(200, "duplicate delivery: already handled")
        if self._accepting:
            self._start(hook)
        else:  # the drain began while it was being recorded: it is pending in the store, the next start runs it
            log.info("delivery_deferred", delivery=delivery, gh_event=event)
        self._on_result("accepted")
        return _reply(202, "accepted")

    def _rejected(self, status: int, reason: str, message: str) -> web.Response:
        log.warning("webhook_rejected", reason=reason, status=status)
        self._on_result(reason)
        return _reply(status, message)

    def _start(self, hook: WebhookEvent) -> None:
        task = asyncio.create_task(self._run(hook), name=f"delivery-{hook.delivery}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, hook: WebhookEvent) -> None:
        # Every line the handlers log carries the delivery, repository and issue (its own task: no leaks).
        ids = {"delivery": hook.delivery, "repo": hook.repo, "issue": issue_number(hook.payload)}
        with structlog.contextvars.bound_contextvars(**ids):
            started = self._clock()
            failures = await self._router.dispatch(hook)
            error = "; ".join(failures)[:2000] or None
            await self._book.finish(Finish(hook.delivery, error, self._clock()))
            log.info(
                "delivery_handled",
                gh_event=hook.event,
                action=hook.action,
                ok=error is None,
                seconds=round(self._clock() - started, 3),
            )

    async def resume(self) -> int:
        """Run again the deliveries that a stopped daemon had accepted but not finished."""
        pending = await asyncio.to_thread(self._store.pending_deliveries)
        for delivery in pending:
            try:
                payload = json.loads(delivery.payload)
            except json.JSONDecodeError:
                await asyncio.to_thread(
                    self._store.finish_delivery, delivery.id, error="stored payload unreadable", now=self._clock()
                )
                continue
            log.info("delivery_resumed", delivery=delivery.id, gh_event=delivery.event)
            self._start(WebhookEvent(delivery.id, delivery.event, payload))
        return len(pending)

    def stop_accepting(self) -> None:
        """From now on deliveries are answered 503 (GitHub keeps them for a redelivery)."""
        self._accepting = False

    async def drain(self, grace: float) -> None:
        """Stop accepting deliveries, give running handlers `grace` seconds, then cancel the rest: they stay
        pending in the store and `resume()` runs them again on the next start (handlers are idempotent)."""
        self.stop_accepting()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

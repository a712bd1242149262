"""The App's webhook deliveries: what GitHub lists at `GET /app/hook/deliveries` and redelivers on
`POST /app/hook/deliveries/{id}/attempts`. A redelivery is really sent (signed) to the hook URL set with
`set_hook(url, secret)`, and its outcome is recorded as a new delivery with the same guid, like GitHub does."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class HookDelivery:
    id: int
    guid: str
    event: str
    action: str | None
    payload: dict[str, Any] | None
    delivered_at: float
    status_code: int  # 0: no HTTP answer (connection refused, timeout)
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None
    duration: float = 0.05

    @property
    def status(self) -> str:
        if 200 <= self.status_code < 300:
            return "OK"
        return "failed to connect to host" if self.status_code == 0 else f"Invalid HTTP Response: {self.status_code}"


def shape(delivery: HookDelivery, at_iso: str) -> dict[str, Any]:
    """GitHub's summary shape of one delivery (the list answer)."""
    return {
        "id": delivery.id,
        "guid": delivery.guid,
        "delivered_at": at_iso,
        "redelivery": delivery.redelivery,
        "duration": delivery.duration,
        "status": delivery.status,
        "status_code": delivery.status_code,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository_id": delivery.repository_id,
        "throttled_at": None,
    }


def new_guid() -> str:
    return str(uuid.uuid4())


async def send(delivery: HookDelivery, url: str | None, secret: str) -> None:
    """POST the delivery's payload to the hook like GitHub does, and record the answer's status on it."""
    started = time.monotonic()
    if url is None or delivery.payload is None:
        delivery.status_code = 0
        return
    body = json.dumps(delivery.payload).encode()
    headers = {
        "X-GitHub-Event": delivery.event,
        "X-GitHub-Delivery": delivery.guid,
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "User-Agent": "GitHub-Hookshot/fake",
        "Content-Type": "application/json",
    }
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            delivery.status_code = answer.status
    except (aiohttp.ClientError, TimeoutError):
        delivery.status_code = 0
    delivery.duration = round(time.monotonic() - started, 3)

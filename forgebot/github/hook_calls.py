"""The blocking PyGithub work behind `PyGithubClient.hook_deliveries` and `redeliver`: a GitHub App's webhook
deliveries, listed page by page, and asking for one again. Run in the client's threads, never on the loop."""

from __future__ import annotations

import re
from datetime import datetime

from github.Requester import Requester

from forgebot.github.port import HookDelivery


def deliveries(requester: Requester, since: float) -> list[HookDelivery]:
    """The deliveries made since `since` (epoch seconds), newest first."""
    found: list[HookDelivery] = []
    url: str | None = "/app/hook/deliveries"
    params: dict[str, object] | None = {"per_page": 100}
    while url:  # newest first, cursor-paginated through Link headers
        headers, data = requester.requestJsonAndCheck("GET", url, parameters=params)
        page = [_delivery(item) for item in data or []]
        found.extend(d for d in page if d.delivered_at >= since)
        if not page or page[-1].delivered_at < since:
            break
        url, params = _next_link(headers.get("link") or headers.get("Link") or ""), None
    return found


def redeliver(requester: Requester, delivery_id: int) -> None:
    requester.requestJsonAndCheck("POST", f"/app/hook/deliveries/{int(delivery_id)}/attempts")


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        match = re.fullmatch(r'\s*<([^>]+)>\s*;\s*rel="next"\s*', part)
        if match:
            return match.group(1)
    return None


def _epoch_seconds(value: object) -> float:
    if not isinstance(value, str):
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _delivery(item: dict[str, object]) -> HookDelivery:
    def number(key: str) -> int | None:
        value = item.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    action = item.get("action")
    return HookDelivery(
        id=number("id") or 0,
        guid=str(item.get("guid") or ""),
        delivered_at=_epoch_seconds(item.get("delivered_at")),
        status_code=number("status_code") or 0,
        event=str(item.get("event") or ""),
        action=action if isinstance(action, str) else None,
        redelivery=item.get("redelivery") is True,
        installation_id=number("installation_id"),
        repository_id=number("repository_id"),
    )

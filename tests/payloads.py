"""Webhook payloads shaped like GitHub's real deliveries (issues, issue_comment, pull_request), and signing.

Only the fields forgebot reads are guaranteed meaningful; the rest mirror GitHub's shape so handlers that
reach for them find them where GitHub puts them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any

_ids = itertools.count(1000)


def user(login: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "login": login,
        "id": next(_ids),
        "node_id": f"U_{login}",
        "type": "Bot" if bot else "User",
        "site_admin": False,
        "html_url": f"https://github.com/{login}",
        "url": f"https://api.github.com/users/{login}",
    }


def repository(full_name: str, clone_url: str, default_branch: str = "main") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": next(_ids),
        "node_id": f"R_{name}",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": user(owner),
        "html_url": f"https://github.com/{full_name}",
        "url": f"https://api.github.com/repos/{full_name}",
        "clone_url": clone_url,
        "default_branch": default_branch,
        "fork": False,
    }


def issue(number: int, title: str, body: str, author: str, labels: list[str], *, pull: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": next(_ids),
        "node_id": f"I_{number}",
        "number": number,
        "title": title,
        "body": body,
        "user": user(author),
        "labels": [{"id": next(_ids), "name": name, "color": "ededed", "default": False} for name in labels],
        "state": "open",
        "locked": False,
        "comments": 0,
        "author_association": "OWNER",
    }
    if pull:
        data["pull_request"] = {"url": "https://api.github.com/pulls/1", "merged_at": None}
    return data


def labeled(repo: dict[str, Any], number: int, label: str, sender: str, **issue_fields: Any) -> dict[str, Any]:
    fields = {"title": "Add a slugify helper", "body": "Please add slugify().", "author": sender, "labels": [label]}
    fields.update(issue_fields)
    return {
        "action": "labeled",
        "issue": issue(number, fields["title"], fields["body"], fields["author"], fields["labels"]),
        "label": {"id": next(_ids), "name": label, "color": "ededed", "default": False},
        "repository": repo,
        "sender": user(sender, bot=sender.endswith("[bot]")),
        "installation": {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="},
    }


def commented(
    repo: dict[str, Any], number: int, body: str, sender: str, *, comment_id: int | None = None, pull: bool = False
) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": issue(number, "Add a slugify helper", "Please add slugify().", "alice", [], pull=pull),
        "comment": {
            "id": comment_id or next(_ids),
            "node_id": "IC_1",
            "body": body,
            "user": user(sender, bot=sender.endswith("[bot]")),
            "author_association": "MEMBER",
            "html_url": f"https://github.com/{repo['full_name']}/issues/{number}#issuecomment-1",
        },
        "repository": repo,
        "sender": user(sender, bot=sender.endswith("[bot]")),
        "installation": {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="},
    }


def pull_closed(repo: dict[str, Any], number: int, head: str, *, merged: bool, sender: str = "alice") -> dict[str, Any]:
    return {
        "action": "closed",
        "number": number,
        "pull_request": {
            "id": next(_ids),
            "number": number,
            "state": "closed",
            "merged": merged,
            "title": "forge: Add a slugify helper",
            "head": {"ref": head, "sha": "0" * 40, "repo": repo},
            "base": {"ref": "main", "sha": "1" * 40, "repo": repo},
            "user": user("forgebot[bot]", bot=True),
            "merged_by": user(sender) if merged else None,
        },
        "repository": repo,
        "sender": user(sender),
        "installation": {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="},
    }


def signed(payload: dict[str, Any] | bytes, secret: str) -> tuple[bytes, str]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, delivery: str, signature: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "Content-Type": "application/json",
    }

"""API token secrets: made here, shown once, stored only as their sha256."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "fgb_"


def new_secret() -> str:
    """A fresh token: the prefix (so scanners and people recognise it) and 32 random bytes, URL-safe."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()

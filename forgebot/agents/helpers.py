"""Small pieces shared by the Codex, Gemini and OpenCode adapters: a tolerant reader for JSON lines, token
counts, and a base URL checked before it is embedded in a CLI's config text."""

from __future__ import annotations

import json
import re
from typing import Any

from forgebot.agents.base import AgentUnavailable
from forgebot.core.models import AgentProfile

# Quotes, braces and whitespace would break out of the TOML/JSON text the URL is put into ({...} is also
# OpenCode's substitution syntax), so a URL carrying them is refused rather than escaped.
_SAFE_URL = re.compile(r"https?://[^\s\"'{}\\\x00-\x1f\x7f]+")


def json_object(line: str) -> dict[str, Any] | None:
    """The JSON object on `line`, or None for anything else (stderr noise, a cut-off line, an array)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def mapping(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: lets parsers walk optional nesting in one line."""
    return value if isinstance(value, dict) else {}


def integer(value: object) -> int | None:
    """A token count from JSON; booleans, strings and missing values are unknown (None), not zero."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def checked_base_url(profile: AgentProfile) -> str | None:
    """The profile's base_url, or None; raises AgentUnavailable naming the problem when it is not a plain URL."""
    url = profile.base_url
    if url is None:
        return None
    if not _SAFE_URL.fullmatch(url):
        raise AgentUnavailable(
            f"agent {profile.name!r}: base_url {url!r} must be an http:// or https:// URL without spaces, "
            "quotes, braces, backslashes or control characters"
        )
    return url

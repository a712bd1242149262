"""List prices of common models, in US dollars per million tokens, for CLIs that report tokens but not dollars.

A profile's own `price` always wins; a model missing here has an unknown cost (shown as unknown, never as 0).
Figures are the providers' published list prices for standard (not batch, not cached) tokens.
"""

from __future__ import annotations

from forgebot.core.models import Price

PRICES: dict[str, Price] = {
    # Anthropic
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    # OpenAI
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-codex": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.4),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "o4-mini": Price(1.1, 4.4),
    # Google
    "gemini-2.5-pro": Price(1.25, 10.0),
    "gemini-2.5-flash": Price(0.3, 2.5),
    "gemini-2.5-flash-lite": Price(0.1, 0.4),
    # Alibaba
    "qwen3-coder-plus": Price(1.0, 5.0),
    "qwen3-coder-flash": Price(0.3, 1.5),
}


def price_for(model: str | None) -> Price | None:
    """The list price of `model`, also when written with a provider prefix ("anthropic/claude-sonnet-4-5")
    or a date suffix ("claude-sonnet-4-5-20250929")."""
    if not model:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    if name in PRICES:
        return PRICES[name]
    # The longest known name that prefixes this one: dated snapshots share their family's price.
    matches = [known for known in PRICES if name.startswith(known + "-")]
    return PRICES[max(matches, key=len)] if matches else None

"""Structured logging: structlog for forgebot, library (stdlib) logs on the same stream, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from functools import partial
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
REDACTED = "***"
_HANDLER_NAME = "forgebot"
_SECRET_KEY_PARTS = ("token", "secret", "password", "authorization", "api_key")
_SECRET_VALUE_RE = re.compile(
    r"(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]+"  # GitHub tokens
    r"|\b[Bb]earer\s+[A-Za-z0-9._~+/=-]+"  # HTTP bearer credentials
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"  # user:password in URLs (e.g. x-access-token:<token>@github.com)
)


def configure_logging(level: str = "info", json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog and the root stdlib logger; safe to call again (replaces the previous setup).

    `json` None picks JSON lines unless `stream` is a terminal. Libraries log at WARNING and above only.
    """
    threshold = LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"unknown log level {level!r} (use {', '.join(LEVELS)})")
    out = sys.stderr if stream is None else stream
    tty = out.isatty()
    as_json = not tty if json is None else json
    renderer: Processor = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=tty)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    # Tracebacks become plain text before redaction so their secrets are scrubbed too.
    finish: list[Processor] = [structlog.processors.format_exc_info, redact_secrets, renderer]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_logger_name,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            *finish,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=partial(_NamedPrintLogger, out),
        # Uncached so loggers made at import time follow a later reconfiguration.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, max(threshold, logging.WARNING), [timestamper], finish)


def _route_stdlib(out: TextIO, threshold: int, pre_chain: list[Processor], finish: list[Processor]) -> None:
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, *pre_chain],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that keeps the name given to get_logger()."""

    def __init__(self, file: TextIO, name: str | None = None) -> None:
        super().__init__(file)
        self.name = name


def _add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A logger that follows the current configuration; `name` is rendered as the `logger` key."""
    # The name travels as a logger-factory argument: binding it would freeze the configuration in use now.
    logger: FilteringBoundLogger = structlog.get_logger(name) if name else structlog.get_logger()
    return logger


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: secret-named keys become "***" and token-shaped text inside values is replaced."""
    return {key: _redact(key, value) for key, value in event_dict.items()}


def _redact(key: str, value: Any) -> Any:
    # Numbers under a secret-sounding key are counts (tokens_in, max_tokens), never credentials.
    if _is_secret_key(key) and not isinstance(value, int | float | None):
        return REDACTED
    return _scrub(value)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUE_RE.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {item_key: _redact(str(item_key), item) for item_key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(item) for item in value]
    if isinstance(value, int | float | None):
        return value
    # Other objects are rendered with repr(); replace them only when that text holds a secret.
    rendered = repr(value)
    scrubbed = _SECRET_VALUE_RE.sub(REDACTED, rendered)
    return value if scrubbed == rendered else scrubbed

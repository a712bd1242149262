from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from forgebot.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_have_event_level_timestamp_and_bound_keys() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)

    get_logger("forgebot.test").bind(task=7).info("attempt_started", agent="quick")

    [record] = json_lines(stream)
    assert record["event"] == "attempt_started"
    assert record["level"] == "info"
    assert record["task"] == 7
    assert record["agent"] == "quick"
    assert record["logger"] == "forgebot.test"
    stamp = datetime.fromisoformat(record["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


def test_context_variables_are_included() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True)

    with structlog.contextvars.bound_contextvars(attempt=3):
        get_logger().warning("slow")

    [record] = json_lines(stream)
    assert (record["event"], record["level"], record["attempt"]) == ("slow", "warning", 3)


def test_level_filters_messages() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    log = get_logger()

    log.info("dropped")
    log.error("kept")

    assert [record["event"] for record in json_lines(stream)] == ["kept"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("loud", stream=io.StringIO())


def test_console_output_contains_event_without_colours_off_tty() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=False)

    get_logger("forgebot.test").info("worktree_created", branch="forge/1/quick")

    output = stream.getvalue()
    assert "worktree_created" in output
    assert "branch=forge/1/quick" in output
    assert "\x1b[" not in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)


def test_tty_defaults_to_coloured_console() -> None:
    stream = FakeTTY()
    configure_logging(stream=stream)

    get_logger().info("hello_terminal")

    assert "hello_terminal" in stream.getvalue()
    assert "\x1b[" in stream.getvalue()


def test_loggers_made_before_configuration_follow_it() -> None:
    early = get_logger("forgebot.early")
    stream = io.StringIO()
    configure_logging(stream=stream)

    early.info("late_config")

    assert json_lines(stream)[0]["event"] == "late_config"


def test_stdlib_logging_goes_to_the_same_stream_at_warning_and_above() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    library = logging.getLogger("some.library")

    library.info("chatty")
    library.warning("disk %s full", "/tmp")

    [record] = json_lines(stream)
    assert record == {**record, "event": "disk /tmp full", "level": "warning", "logger": "some.library"}
    assert "timestamp" in record


def test_reconfiguring_does_not_duplicate_output() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)

    logging.getLogger("lib").error("once")
    get_logger().info("also_once")

    assert first.getvalue() == ""
    assert [record["event"] for record in json_lines(second)] == ["once", "also_once"]


def test_secret_keys_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)

    get_logger().info(
        "request",
        github_token="abc",
        WEBHOOK_SECRET="s3",
        password="hunter2",
        Authorization="Basic xyz",
        my_api_key="k",
        headers={"Authorization": "token 123", "Accept": "json"},
        tokens_in=1200,
        user="octocat",
    )

    [record] = json_lines(stream)
    for key in ("github_token", "WEBHOOK_SECRET", "password", "Authorization", "my_api_key"):
        assert record[key] == "***", key
    assert record["headers"] == {"Authorization": "***", "Accept": "json"}
    assert record["tokens_in"] == 1200  # a count, not a credential
    assert record["user"] == "octocat"
    for secret in ("abc", "s3", "hunter2", "xyz", "123"):
        assert f'"{secret}' not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pushing with ghp_" + "a1B2" * 9, "pushing with ***"),
        ("token gho_abc123 and ghs_X_y_9", "token *** and ***"),
        ("ghu_zzz github_pat_11AB_cd", "*** ***"),
        ("Authorization: Bearer eyJhbGci.eyJzdWIi.sig-_x", "Authorization: ***"),
        ("https://x-access-token:secretvalue@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
def test_token_shaped_values_are_redacted(text: str, expected: str) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)

    get_logger().info(text, detail=[text])

    [record] = json_lines(stream)
    assert record["event"] == expected
    assert record["detail"] == [expected]


def test_secrets_in_stdlib_records_and_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)

    logging.getLogger("git").warning("clone failed for %s", "https://u:pw123@example.com/r")
    try:
        raise RuntimeError("bad credentials ghs_leakedtoken")
    except RuntimeError:
        get_logger().exception("push_failed")

    output = stream.getvalue()
    assert "pw123" not in output
    assert "leakedtoken" not in output
    clone, push = json_lines(stream)
    assert clone["event"] == "clone failed for https://***@example.com/r"
    assert "RuntimeError: bad credentials ***" in push["exception"]


def test_objects_whose_repr_holds_a_secret_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)

    get_logger().error("failed", error=ValueError("ghp_abcdef"), other=ValueError("plain"))

    [record] = json_lines(stream)
    assert record["error"] == "ValueError('***')"
    assert record["other"] == "ValueError('plain')"

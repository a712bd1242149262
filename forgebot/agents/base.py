"""The adapter contract every agent CLI implements.

An adapter is pure apart from reading the profile: it builds the invocation (argv, extra environment,
optional stdin) and parses output lines into normalized events. The runner owns the process, so an
adapter never starts anything itself and is testable on recorded output alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from forgebot.core.models import AgentProfile, Usage


class EventKind(StrEnum):
    PROGRESS = "progress"  # a short line for live tables
    SESSION = "session"  # the CLI's session id, used to resume for follow-ups
    USAGE = "usage"  # tokens / cost / turns (cumulative values replace, None keeps)
    MESSAGE = "message"  # the agent's final answer
    ERROR = "error"  # the CLI reported an error (API failure, refusal, crash) even if it exits 0


@dataclass(frozen=True)
class AgentEvent:
    kind: EventKind
    text: str = ""
    usage: Usage | None = None


@dataclass(frozen=True)
class Invocation:
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    # Absolute path (inside the attempt's HOME) -> text, written by the runner before the start (CLI settings files).
    files: Mapping[str, str] = field(default_factory=dict)
    # Name -> absolute path the runner reads after the exit and hands to OutputParser.finish
    # (usage files, analytics logs).
    artifacts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRequest:
    """What the runner asks of an adapter for one start (or resume) of an agent."""

    profile: AgentProfile
    prompt: str
    prompt_file: str
    workdir: str
    home: str
    resume_session: str | None = None
    followup: bool = False  # a follow-up prompt in the same worktree (CLIs without session ids resume by it)


class OutputParser(Protocol):
    def feed(self, line: str) -> Iterable[AgentEvent]:
        """One line of the CLI's stdout/stderr (interleaved), without the newline."""
        ...

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterable[AgentEvent]:
        """Called once after the exit: the texts of the invocation's artifacts (missing files are left out).
        The place to report an error the stream never stated (e.g. no final result at all)."""
        ...


class Adapter(Protocol):
    executor: str
    # The program looked up on PATH (None: argv[0] comes from the profile, as for `command`).
    binary: str | None
    # One line telling a user how to install the CLI.
    install_hint: str
    # The model used when the profile names none (also what prices its tokens).
    default_model: str | None
    # Environment variables of which at least one must reach the CLI for it to authenticate (empty: none needed).
    credential_env: tuple[str, ...]
    # Globs of files the CLI leaves in the worktree that must never be committed (gitignore-style).
    ignored_paths: tuple[str, ...]
    # True when usage reported after a resume covers the whole session, earlier runs included.
    session_usage: bool

    def invocation(self, request: RunRequest) -> Invocation: ...

    def parser(self) -> OutputParser: ...


class LineParser:
    """Base for parsers: subclasses implement `feed`; `finish` reports nothing by default."""

    def feed(self, line: str) -> Iterable[AgentEvent]:
        raise NotImplementedError

    def finish(self, exit_code: int | None, artifacts: Mapping[str, str]) -> Iterable[AgentEvent]:
        return ()


class AgentUnavailable(Exception):
    """The agent cannot run here (CLI missing, credentials absent); the message says how to fix it."""


@dataclass
class RunSummary:
    """Folds a stream of events into what the engine records for an attempt."""

    session_id: str | None = None
    final_message: str | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    progress: str = ""

    def add(self, event: AgentEvent) -> None:
        if event.kind is EventKind.PROGRESS:
            self.progress = event.text
        elif event.kind is EventKind.SESSION:
            self.session_id = event.text or self.session_id
        elif event.kind is EventKind.MESSAGE:
            self.final_message = event.text
        elif event.kind is EventKind.ERROR:
            self.error = self.error or event.text
        elif event.usage is not None:
            self.usage = merge_usage(self.usage, event.usage)


def merge_usage(current: Usage, update: Usage) -> Usage:
    """Fields in `update` replace those in `current`; None keeps the old value."""
    changes = {name: value for name, value in vars(update).items() if value is not None}
    return replace(current, **changes)


def add_usage(first: Usage, second: Usage) -> Usage:
    """Two runs' usage together (a follow-up after the first run); unknown on both sides stays unknown."""
    totals = {}
    for name, value in vars(second).items():
        mine = getattr(first, name)
        totals[name] = value if mine is None else mine if value is None else mine + value
    return Usage(**totals)


def render_argv(template: Iterable[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """Fill `{prompt}`-style placeholders in each argument; unknown braces are left alone."""
    rendered = []
    for arg in template:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        rendered.append(arg)
    return tuple(rendered)

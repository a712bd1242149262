"""The `/forge` comment grammar and the trigger label. Pure: no IO, no clock.

`parse(comment)` returns one `Command` or `Reply` per command line, in order; an empty list means the
comment is not for us. A command line starts with `/forge` (after at most three columns of indentation, any
case) followed by a space or the end of the line. Lines inside fenced code blocks, lines indented four columns
or more (a markdown indented code block; a tab counts to the next multiple of four), quoted lines (`>`),
mid-line mentions and anything GitHub hides (HTML comments, invisible characters: the comment is
`sanitize.clean`ed first) are never commands. Arguments are shell-style tokens; verbs are case-insensitive;
agent names are lowercased.

`followup` text is the rest of its line after the first `--` argument (taken verbatim, not tokenized, so
"don't" needs no quoting) plus every following line of the comment up to the next command line, code blocks
and quotes included; with the text only on the following lines, `--` may be left out.

A target is an attempt number, as shown in the `#` column of the progress comment (optionally written `#2`),
or an agent name.

Each verb's usage, summary and parser sit together in one row of `SPECS`, which also generates the help.
"""

from __future__ import annotations

import difflib
import io
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from forgebot.core.sanitize import clean, fence_closes, fence_opening

AGENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_NUMBER_RE = re.compile(r"#?(-?\d+)")  # negative numbers are caught here, not taken for unknown options
_MAX_DIGITS = 18  # int() refuses very long digit strings; no attempt number is this long anyway
_CODE_INDENT = 4  # columns: a line indented this much is an indented code block in markdown
_COMMAND_RE = re.compile(r"[ \t]*/forge(?:[ \t]+(.*)|[ \t]*)", re.IGNORECASE)


class Verb(StrEnum):
    RUN = "run"
    FORK = "fork"
    STATUS = "status"
    COMPARE = "compare"
    PICK = "pick"
    MERGE = "merge"
    CANCEL = "cancel"
    RETRY = "retry"
    FOLLOWUP = "followup"
    CLEANUP = "cleanup"
    TEMPLATE = "template"
    HELP = "help"


@dataclass(frozen=True)
class Target:
    """An attempt of the task, by number or by agent name (the handler resolves which one)."""

    number: int | None = None
    agent: str | None = None


@dataclass(frozen=True)
class Command:
    verb: Verb
    agents: tuple[str, ...] = ()  # run: empty means the configured agents; fork: exactly one
    target: Target | None = None  # cancel: None means all; followup: None means the winning attempt
    model: str | None = None  # fork --model
    text: str = ""  # followup
    name: str | None = None  # template name
    params: tuple[tuple[str, str], ...] = ()  # template key=value pairs, in order, keys unique

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.params)


@dataclass(frozen=True)
class Reply:
    """The command line could not be parsed; `message` is markdown to post back."""

    message: str


class LabelError(ValueError):
    """The trigger label names an invalid agent; the message says which, for a reply."""


class _Invalid(Exception):
    """A bad argument; the message completes "`/forge <verb>`: ..."."""


def help_text(trigger: str = "forge") -> str:
    """Markdown help, generated from SPECS."""
    lines = ["**forgebot commands**: one per line, in a comment on the issue or on forgebot's pull request.", ""]
    lines += [f"- `{spec.usage}`: {spec.summary}" for spec in SPECS]
    lines += ["", f"Or label the issue `{trigger}` (default agents) or `{trigger}:claude,gemini`."]
    return "\n".join(lines)


def parse(text: str, trigger: str = "forge") -> list[Command | Reply]:
    """Every command in a comment, in order (see the module docstring); [] when there is none.
    `trigger` is the trigger label, for the help in replies."""
    results: list[Command | Reply] = []
    followup: list[str] | None = None  # lines collected for the followup command that is last in `results`
    for line, is_command in _lines(clean(text, keep_indent=True)):
        if not is_command:
            if followup is not None:
                followup.append(line)
            continue
        _finish_followup(results, followup)
        results.append(_parse_line(line, trigger))
        last = results[-1]
        followup = [last.text] if isinstance(last, Command) and last.verb is Verb.FOLLOWUP else None
    _finish_followup(results, followup)
    return results


def parse_label(label: str, trigger: str = "forge") -> list[str] | None:
    """`trigger` → [] (default agents), `trigger:a,b` → ["a", "b"], any other label → None. Case-insensitive.
    Raises LabelError for an invalid agent name rather than ignoring the label: the maintainer meant us."""
    name, colon, rest = label.strip().partition(":")
    if name.strip().lower() != trigger.lower():
        return None
    agents = [part.strip().lower() for part in rest.split(",") if part.strip()] if colon else []
    bad = [agent for agent in agents if not AGENT_RE.fullmatch(agent)]
    if bad:
        raise LabelError(f"label `{_shown(label)}`: not a valid agent name: {', '.join(map(_shown, bad))}")
    return agents


def _lines(text: str) -> Iterator[tuple[str, bool]]:
    """Each line, and whether it is a command line (outside fenced code)."""
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            if fence_closes(line, fence):
                fence = None
            yield line, False
        elif (fence := fence_opening(line)) is not None:
            yield line, False
        else:
            yield line, _COMMAND_RE.fullmatch(line) is not None and _indent(line) < _CODE_INDENT


def _indent(line: str) -> int:
    """Columns of leading whitespace, tabs stopping at multiples of four as in CommonMark."""
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def _finish_followup(results: list[Command | Reply], lines: list[str] | None) -> None:
    if lines is None:
        return
    command = results[-1]
    assert isinstance(command, Command)
    text = "\n".join(lines).strip()
    results[-1] = replace(command, text=text) if text else _usage_error(_BY_VERB["followup"], "needs text after `--`")


def _parse_line(line: str, trigger: str) -> Command | Reply:
    found = _COMMAND_RE.fullmatch(line)
    assert found is not None
    try:
        tokens, text = _tokens(found[1] or "")
    except ValueError:
        return Reply(f"Could not read `{_shown(line.strip())}`: a quote is not closed.\n\n{help_text(trigger)}")
    if not tokens:
        return Command(Verb.HELP) if text is None else _unknown("--", trigger)
    spec = _BY_VERB.get(tokens[0].lower())
    if spec is None:
        return _unknown(tokens[0].lower(), trigger)
    try:
        return spec.parser(spec.verb, tokens[1:], text)
    except _Invalid as problem:
        return _usage_error(spec, str(problem))


def _tokens(rest: str) -> tuple[list[str], str | None]:
    """Shell-style tokens up to the first `--` token, and the raw text after it (None without one).
    Reading token by token keeps a quoted "a -- b" whole and leaves the text after `--` untouched."""
    stream = io.StringIO(rest)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # "#3" is an attempt number, not a comment
    tokens: list[str] = []
    while (word := lexer.get_token()) is not None:
        if word == "--":
            return tokens, stream.read()
        tokens.append(word)
    return tokens, None


def _unknown(word: str, trigger: str) -> Reply:
    guess = difflib.get_close_matches(word, list(_BY_VERB), n=1)
    hint = f" Did you mean `/forge {guess[0]}`?" if guess else ""
    return Reply(f"Unknown command `/forge {_shown(word)}`.{hint}\n\n{help_text(trigger)}")


def _usage_error(spec: Spec, problem: str) -> Reply:
    return Reply(f"`/forge {spec.verb}`: {problem}.\n\nUsage: `{spec.usage}`: {spec.summary}.")


def _shown(token: str) -> str:
    """User text echoed inside a code span: no backticks (they would end it), bounded length."""
    token = token.replace("`", "'")
    return token if len(token) <= 60 else token[:59] + "…"


# -- one parser per argument shape; SPECS below names which verb uses which ------------------------------


def _positional(args: Sequence[str], text: str | None, *, text_allowed: bool = False) -> list[str]:
    """The arguments, refusing options (every option is handled before this) and unexpected `--` text."""
    if text is not None and not text_allowed:
        raise _Invalid("takes no text after `--`")
    for arg in args:
        if arg.startswith("-") and not _NUMBER_RE.fullmatch(arg):
            raise _Invalid(f"unknown option `{_shown(arg)}`")
    return list(args)


def _agent(token: str) -> str:
    name = token.lower()
    if not AGENT_RE.fullmatch(name):
        raise _Invalid(f"`{_shown(token)}` is not a valid name (letters, digits, `.`, `_`, `-`)")
    return name


def _target(token: str) -> Target:
    number = _NUMBER_RE.fullmatch(token)
    if number is None:
        return Target(agent=_agent(token))
    digits = number[1]
    if len(digits.lstrip("-")) > _MAX_DIGITS or int(digits) < 1:
        raise _Invalid(f"`{_shown(token)}` is not an attempt number (they start at 1)")
    return Target(number=int(digits))


def _no_args(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    if _positional(args, text):
        raise _Invalid("takes no arguments")
    return Command(verb)


def _agents(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    names = [part for arg in _positional(args, text) for part in arg.split(",") if part]
    return Command(verb, agents=tuple(map(_agent, names)))


def _fork(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    model: str | None = None
    rest: list[str] = []
    tokens = iter(args)
    for arg in tokens:
        if arg != "--model" and not arg.startswith("--model="):
            rest.append(arg)
            continue
        if model is not None:
            raise _Invalid("`--model` given twice")
        model = arg.partition("=")[2] if "=" in arg else next(tokens, "")
        if not model or model.startswith("-"):
            raise _Invalid("`--model` needs a value")
    agents = _positional(rest, text)
    if len(agents) != 1:
        raise _Invalid("needs exactly one agent name")
    return Command(verb, agents=(_agent(agents[0]),), model=model)


def _one_target(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    targets = _positional(args, text)
    if len(targets) != 1:
        raise _Invalid("needs one attempt number or agent name")
    return Command(verb, target=_target(targets[0]))


def _optional_target(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    targets = _positional(args, text)
    if len(targets) > 1:
        raise _Invalid("takes at most one attempt number or agent name")
    return Command(verb, target=_target(targets[0]) if targets else None)


def _followup(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    targets = _positional(args, text, text_allowed=True)
    if len(targets) > 1:
        raise _Invalid("takes at most one attempt number or agent name; put the text after `--`")
    return Command(verb, target=_target(targets[0]) if targets else None, text=text or "")


def _template(verb: Verb, args: Sequence[str], text: str | None) -> Command:
    tokens = _positional(args, text)
    if not tokens:
        raise _Invalid("needs a template name")
    params: dict[str, str] = {}
    for token in tokens[1:]:
        key, equals, value = token.partition("=")
        if not equals or not _KEY_RE.fullmatch(key):
            raise _Invalid(f"`{_shown(token)}` is not key=value")
        if key in params:
            raise _Invalid(f"`{_shown(key)}` given twice")
        params[key] = value
    return Command(verb, name=_agent(tokens[0]), params=tuple(params.items()))


@dataclass(frozen=True)
class Spec:
    verb: Verb
    args: str
    summary: str
    parser: Callable[[Verb, Sequence[str], str | None], Command]  # (verb, arguments, text after `--`)

    @property
    def usage(self) -> str:
        return f"/forge {self.verb} {self.args}".rstrip()


# The grammar: the help lists these in this order.
SPECS: tuple[Spec, ...] = (
    Spec(Verb.RUN, "[agent ...]", "start attempts with these agents (default: the configured ones)", _agents),
    Spec(Verb.FORK, "<agent> [--model M]", "add an attempt with this agent, optionally on another model", _fork),
    Spec(Verb.STATUS, "", "refresh the progress comment", _no_args),
    Spec(Verb.COMPARE, "", "rank the attempts and name the winner", _no_args),
    Spec(Verb.PICK, "<n|agent>", "choose this attempt as the winner and open its pull request", _one_target),
    Spec(Verb.MERGE, "<n|agent>", "merge this attempt's pull request", _one_target),
    Spec(Verb.CANCEL, "[n|agent]", "stop one attempt, or all of them", _optional_target),
    Spec(Verb.RETRY, "<n|agent>", "run a finished attempt that did not succeed again", _one_target),
    Spec(
        Verb.FOLLOWUP,
        "[n|agent] -- <text>",
        "send more instructions to an attempt's agent (on forgebot's pull request: the winner); "
        "the text may go on over the following lines",
        _followup,
    ),
    Spec(Verb.CLEANUP, "", "remove finished worktrees and the losing branches forgebot made", _no_args),
    Spec(Verb.TEMPLATE, "<name> [key=value ...]", "start a task from a named template", _template),
    Spec(Verb.HELP, "", "show this help", _no_args),
)
_BY_VERB = {spec.verb.value: spec for spec in SPECS}

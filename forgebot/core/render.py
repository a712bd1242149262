"""The markdown forgebot posts: the progress comment, the pull request, short replies. Pure: no IO, no clock.

Every body we may later edit starts with a hidden marker (`marker`), which `find_marker` reads back from the
start of a body only, so a quote or a copy of our comment elsewhere is never taken for ours. Replies to commands
end with a marker of their own (`reply_marker`, on the last line), found again before a reply is repeated.

Text from agents, logs and issues is untrusted. In prose and table cells (`_inline`) it loses control
characters; `<`, `@name` and `#123` get a zero-width joiner after the first character (no HTML, no comment
that could forge a marker, no pings, no cross-references, no "Closes #1" from an agent; unlike `&lt;` it
also reads right inside code spans); `|` and newlines are escaped in cells. Logs go in fenced blocks with a
fence longer than any backtick run inside, where GitHub renders nothing. Our own prose never writes
"#<digit>" (say "attempt 3"), except `Closes #N` and the issue link in the PR body.

Bodies stay within `budget` (GitHub rejects more than 65,536 characters; sizes are counted in UTF-16 code
units, which is never less than characters): log tails are shortened first, then dropped, then the tables
lose their last rows, with a note saying so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote

from forgebot.core.commands import help_text
from forgebot.core.models import Attempt, AttemptStatus, Task, TaskStatus, task_status
from forgebot.core.prompt import format_duration
from forgebot.core.sanitize import clean_title, plain
from forgebot.core.scoring import Comparison

BUDGET = 60_000
BranchUrl = Callable[[str], str | None]  # branch name -> link, None when the branch is not on GitHub

_KIND_RE = re.compile(r"[a-z][a-z0-9_-]*")
_MARKER_RE = re.compile(r"\s*<!--\s*forgebot:task=(\d{1,18})\s+kind=([a-z][a-z0-9_-]*)\s*-->")
_REPLY_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,99}")
_REPLY_MARKER_RE = re.compile(r"(?:\A|\n)<!--\s*forgebot:reply=([A-Za-z0-9][A-Za-z0-9:._-]{0,99})\s*-->\s*\Z")
_REFERENCE_RE = re.compile(r"@(?=[A-Za-z0-9])|#(?=\d)")
_ZWJ = "\u200d"  # invisible, and breaks a mention, a reference, a tag or "<!--" where it stands
_LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")
_BACKTICKS_RE = re.compile(r"`+")
_CELL, _REASONS, _SUMMARY, _LINE = 120, 400, 3_000, 1_000  # characters of untrusted text per place
_LOG_TAIL, _MIN_LOG = 4_000, 200  # characters per attempt's log: at most, and the least worth showing
_SLACK = 200  # for the separators between parts

ATTEMPT_EMOJI = {
    AttemptStatus.QUEUED: "🕒",
    AttemptStatus.PREPARING: "⚙️",
    AttemptStatus.RUNNING: "🏃",
    AttemptStatus.CHECKING: "🧪",
    AttemptStatus.SUCCEEDED: "✅",
    AttemptStatus.FAILED: "❌",
    AttemptStatus.TIMED_OUT: "⏱️",
    AttemptStatus.CANCELLED: "🚫",
    AttemptStatus.INTERRUPTED: "⚠️",
}
TASK_EMOJI = {
    TaskStatus.EMPTY: "⚪",
    TaskStatus.QUEUED: "🕒",
    TaskStatus.RUNNING: "🏃",
    TaskStatus.SUCCEEDED: "✅",
    TaskStatus.FAILED: "❌",
    TaskStatus.CANCELLED: "🚫",
    TaskStatus.INTERRUPTED: "⚠️",
}
# Same columns as the terminal table (forgebot/tui.py); "note" is its "progress" column.
COLUMNS = ("#", "agent", "status", "elapsed", "files", "±lines", "checks", "tokens in/out", "cost", "branch", "note")
RANK_COLUMNS = ("rank", "#", "agent", "quality", "reasons")


def marker(task_id: int, kind: str) -> str:
    if task_id < 0 or not _KIND_RE.fullmatch(kind):
        raise ValueError(f"bad marker: task={task_id} kind={kind!r}")
    return f"<!-- forgebot:task={task_id} kind={kind} -->"


def find_marker(body: str) -> tuple[int, str] | None:
    """(task id, kind) of the marker that starts `body`, if any."""
    found = _MARKER_RE.match(body)
    return (int(found[1]), found[2]) if found else None


def reply_marker(key: str) -> str:
    """The hidden last line of a reply to a command, so a retry finds the reply instead of posting it again."""
    if not _REPLY_KEY_RE.fullmatch(key):
        raise ValueError(f"bad reply key: {key!r}")
    return f"<!-- forgebot:reply={key} -->"


def find_reply_key(body: str) -> str | None:
    """The key of the reply marker on the last line of `body` (a quote of it starts with "> ": not ours)."""
    found = _REPLY_MARKER_RE.search(body)
    return found[1] if found else None


def branch_links(repo_url: str, base: str | None = None) -> BranchUrl:
    """Links to branches of the repository at `repo_url` (https://github.com/o/r): the tree, or the
    comparison with `base` when given (which shows the diff)."""
    root = repo_url.rstrip("/")
    if base is None:
        return lambda branch: f"{root}/tree/{quote(branch)}"
    return lambda branch: f"{root}/compare/{quote(base)}...{quote(branch)}"


def size(text: str) -> int:
    """Length in UTF-16 code units: an emoji counts twice, as it may on GitHub's side."""
    return len(text.encode("utf-16-le")) // 2


def progress_comment(
    task: Task,
    attempts: Sequence[Attempt],
    *,
    now: float,
    branch_url: BranchUrl | None = None,
    comparison: Comparison | None = None,
    log_tails: Mapping[int, str] | None = None,
    footer_lines: Sequence[str] = (),
    budget: int = BUDGET,
) -> str:
    """The one progress comment of a task. `log_tails` maps attempt ids to the end of their logs;
    `footer_lines` are forgebot's own markdown ("PR #9 merged ..."), posted as they are."""
    ordered = sorted(attempts, key=lambda a: a.id)
    status = task_status([a.status for a in ordered])
    head = "\n".join(
        [
            marker(task.id, "progress"),
            f"### {TASK_EMOJI[status]} {_inline(task.title, _LINE)}",
            "",
            f"Task {task.id} · **{status.value}** · {_counts(ordered)}",
        ]
    )
    summary = _comparison_summary(comparison) if comparison else []
    room = budget - size("\n\n".join([head, *summary, *footer_lines])) - _SLACK
    rows = [_attempt_row(a, len(task.checks), now, branch_url) for a in ordered]
    table = _table(COLUMNS, rows, room // 2 if comparison else room, "attempts")
    parts = [head, table]
    if comparison is not None:
        ranked = _comparison_table(comparison, room - size(table))
        parts += ["#### Comparison", ranked, *summary]
    logs = _logs(ordered, log_tails or {}, budget - size("\n\n".join([*parts, *footer_lines])) - _SLACK)
    return _fit("\n\n".join([*parts, *logs, *footer_lines]) + "\n", budget)


def pr_body(
    task: Task, winner: Attempt, comparison: Comparison, *, issue_number: int | None, budget: int = BUDGET
) -> str:
    """The winner's pull request: what was done, by whom, how it compared, and `Closes #N`."""
    source = f"#{issue_number}" if issue_number is not None else f"task {task.id}"
    count = len(comparison.ranking)
    elapsed = winner.elapsed(winner.finished_at) if winner.finished_at is not None else None
    head = [
        marker(task.id, "pr"),
        f"forgebot ran {count} attempt{'s' if count != 1 else ''} on {source}: **{_inline(task.title, _LINE)}**. "
        f"This is attempt {winner.id}, by **{_agent(winner)}**.",
        "",
        f"{winner.diff.files} files changed ({_lines(winner)}) · checks {_checks(winner, len(task.checks))} · "
        f"cost {_money(winner.usage.cost_usd)} · time {format_duration(elapsed) if elapsed is not None else '?'}",
    ]
    parts = ["\n".join(head)]
    if winner.final_message:
        said = _inline(winner.final_message, _SUMMARY, cell=False).split("\n")
        parts += ["### The agent's summary", "\n".join(f"> {line}" for line in said)]
    summary = _comparison_summary(comparison)
    end = ["Comment `/forge followup -- <text>` on this pull request to ask for changes."]
    end += [f"Closes #{issue_number}"] if issue_number is not None else []
    room = budget - size("\n\n".join([*parts, *summary, *end])) - _SLACK
    parts += ["### Comparison", _comparison_table(comparison, room), *summary, *end]
    return _fit("\n\n".join(parts) + "\n", budget)


def pr_title(issue_title: str, limit: int = 100) -> str:
    title = clean_title(issue_title) or "forgebot change"
    if len(title) <= limit:
        return title
    cut = title[: limit - 1].rsplit(" ", 1)[0] if " " in title[: limit - 1] else title[: limit - 1]
    return cut.rstrip() + "…"


def help_reply(trigger: str = "forge") -> str:
    return help_text(trigger)


def refusal(user: str, reason: str) -> str:
    """A polite one-line no; mentions the user (who asked) only when the login looks like one."""
    who = f" @{user}" if _LOGIN_RE.fullmatch(user) else ""
    return f"Sorry{who}, I can't do that: {_inline(reason, _LINE).rstrip('.')}."


def error_reply(message: str) -> str:
    """`message` is forgebot's own markdown (a `commands.Reply`, say), posted as is."""
    return f"⚠️ {message}"


def pushed_to_pull(attempt: Attempt, pull: int) -> str:
    """The progress comment's line for a follow-up pushed to the pull request's branch."""
    sha = _inline(attempt.commit_sha or "", 12)[:7]
    return f"Pushed the follow-up of attempt {attempt.id} ({_agent(attempt)}) to PR #{pull}: now at `{sha}`."


def push_refused(attempt: Attempt, pull: int) -> str:
    """The reply on the pull request when its branch moved under us and a follow-up cannot be pushed."""
    sha = _inline(attempt.commit_sha or "", 12)[:7]
    return (
        f"⚠️ I could not push the follow-up of attempt {attempt.id} ({_agent(attempt)}) to "
        f"`{_inline(attempt.branch, _CELL)}`: the branch has commits I do not have (did someone else push to it?). "
        f"I overwrote nothing; the follow-up is commit `{sha}` in my worktree. Bring the branch back to my last "
        "commit, or carry on by hand."
    )


def status_reply(task: Task, attempts: Sequence[Attempt], *, progress_url: str | None = None) -> str:
    status = task_status([a.status for a in attempts])
    link = f" [Progress]({progress_url})" if progress_url else ""
    return f"{TASK_EMOJI[status]} Task {task.id} · **{status.value}** · {_counts(attempts)}{link}"


def compare_reply(comparison: Comparison, *, progress_url: str | None = None) -> str:
    link = f" [Comparison]({progress_url})" if progress_url else ""
    return f"{_inline(comparison.verdict, _LINE)}{link}"


# -- pieces --------------------------------------------------------------------------------------------


def _inline(text: str, limit: int, *, cell: bool = True) -> str:
    """Untrusted text made inert (see the module docstring); on one line when `cell`."""
    text = plain(text[: limit * 4]).strip()
    text = " ".join(text.split()) if cell else text
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    text = _REFERENCE_RE.sub(lambda found: found[0] + _ZWJ, text.replace("<", "<" + _ZWJ))
    return text.replace("|", "\\|") if cell else text


def _code(text: str) -> str:
    """`text` as an inline code span, even when it holds backticks."""
    ticks = "`" * (max(map(len, _BACKTICKS_RE.findall(text)), default=0) + 1)
    return f"{ticks} {text} {ticks}" if "`" in text else f"`{text}`"


def _counts(attempts: Sequence[Attempt]) -> str:
    if not attempts:
        return "no attempts"
    counts = Counter(a.status for a in attempts)
    each = ", ".join(f"{counts[s]} {s.value.replace('_', ' ')}" for s in AttemptStatus if counts[s])
    return f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''} ({each})"


def _agent(attempt: Attempt) -> str:
    model = attempt.profile.model
    return _inline(attempt.agent, _CELL) + (f" ({_inline(model, _CELL)})" if model else "")


def _lines(attempt: Attempt) -> str:
    return "—" if attempt.diff.empty else f"+{attempt.diff.insertions}/-{attempt.diff.deletions}"


def _checks(attempt: Attempt, expected: int) -> str:
    if not attempt.checks:
        return "…" if attempt.status is AttemptStatus.CHECKING else "—"
    passed = sum(c.passed for c in attempt.checks)
    return f"{passed}/{max(expected, len(attempt.checks))} {'✅' if attempt.checks_passed else '❌'}"


def _tokens(attempt: Attempt) -> str:
    usage = attempt.usage
    if usage.tokens_in is None and usage.tokens_out is None:
        return "—"
    return f"{usage.tokens_in or 0:,} / {usage.tokens_out or 0:,}"


def _money(cost: float | None) -> str:
    if cost is None:
        return "?"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def _attempt_row(attempt: Attempt, expected: int, now: float, branch_url: BranchUrl | None) -> list[str]:
    elapsed = attempt.elapsed(now)
    finished = attempt.status.terminal
    url = branch_url(attempt.branch) if branch_url else None
    branch = _code(attempt.branch.replace("|", "\\|"))
    note = (attempt.error or attempt.final_message or "") if finished else attempt.progress
    return [
        str(attempt.id),
        _agent(attempt),
        f"{ATTEMPT_EMOJI[attempt.status]} {attempt.status.value.replace('_', ' ')}",
        format_duration(elapsed) if elapsed is not None else "—",
        str(attempt.diff.files) if finished or attempt.status is AttemptStatus.CHECKING else "—",
        _lines(attempt),
        _checks(attempt, expected),
        _tokens(attempt),
        _money(attempt.usage.cost_usd) if finished or attempt.usage.cost_usd is not None else "—",
        f"[{branch}]({url})" if url else branch,
        _inline(note, _CELL),
    ]


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], room: int, noun: str) -> str:
    """A markdown table of as many rows as fit in `room`, then a note on the rows left out."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    used = sum(map(size, lines)) + 100  # room for the note
    for row in rows:
        line = "| " + " | ".join(row) + " |"
        used += size(line) + 1
        if used > room:
            break
        lines.append(line)
    left_out = len(rows) - (len(lines) - 2)
    note = f"\n\n_{left_out} more {noun} not shown: the comment would be too long._" if left_out else ""
    return "\n".join(lines) + note


def _comparison_table(comparison: Comparison, room: int) -> str:
    winner = comparison.winner.attempt_id if comparison.winner else None
    rows = [
        [
            ("🏆 " if r.attempt_id == winner else "") + str(r.rank),
            str(r.attempt_id),
            _inline(r.agent, _CELL),
            f"{r.quality:.2f}",
            _inline("; ".join(r.reasons), _REASONS),
        ]
        for r in comparison.ranking
    ]
    return _table(RANK_COLUMNS, rows, room, "ranked attempts")


def _comparison_summary(comparison: Comparison) -> list[str]:
    lines = [f"**{_inline(comparison.verdict, _LINE)}**"]
    if comparison.speedup is not None and comparison.wall_time is not None and len(comparison.ranking) > 1:
        lines.append(
            f"In parallel: {format_duration(comparison.wall_time)} of wall time for "
            f"{format_duration(comparison.sum_time)} of agent time, "
            f"{comparison.speedup:.2f}x faster than one attempt after the other."
        )
    total = "unknown" if comparison.total_cost is None else _money(comparison.total_cost)
    lines.append(f"Total cost: {total}" + ("" if comparison.cost_complete else " (some costs unknown)"))
    return lines


def _logs(attempts: Sequence[Attempt], tails: Mapping[int, str], room: int) -> list[str]:
    """The log tails in a collapsed section, each shortened until all fit in `room`; a note if none fit.
    Sizes are measured, not estimated: a log full of backticks makes its fence as long as itself."""
    shown = [(a, tails[a.id]) for a in attempts if tails.get(a.id, "").strip()]
    if not shown:
        return []
    each = min(_LOG_TAIL, room // len(shown))
    while each >= _MIN_LOG:
        blocks = [f"**Attempt {a.id}: {_agent(a)}**\n\n{_fenced(_tail(text, each))}" for a, text in shown]
        section = ["<details><summary>Logs (last lines)</summary>", *blocks, "</details>"]
        if size("\n\n".join(section)) + 2 <= room:
            return section
        each = each * 2 // 3
    return ["_Logs left out: the comment would be too long._"]


def _tail(text: str, limit: int) -> str:
    """The end of a log in at most `limit` code units, from a line start when one is near, with no "<!--"
    left whole (inert in a fence, but nothing we post should hold one that is not our marker)."""
    text = plain(text[-limit * 4 :]).strip("\n").replace("<!--", "<" + _ZWJ + "!--")
    if size(text) <= limit:
        return text
    cut = _units(text, -limit + 4)
    start = cut.find("\n")
    return "[…]\n" + (cut[start + 1 :] if 0 <= start < len(cut) // 2 else cut)


def _units(text: str, count: int) -> str:
    """The first `count` UTF-16 code units of `text` (the last ones when negative); never half a character."""
    encoded = text.encode("utf-16-le")
    part = encoded[: 2 * count] if count >= 0 else encoded[2 * count :]
    return part.decode("utf-16-le", errors="ignore")


def _fenced(text: str) -> str:
    fence = "`" * max(3, max(map(len, _BACKTICKS_RE.findall(text)), default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def _fit(body: str, budget: int) -> str:
    """The last resort when even the fixed parts (say a huge footer) are too long: cut, and say so."""
    if size(body) <= budget:
        return body
    note = "\n\n_[…] cut: the comment would be too long._\n"
    return _units(body, budget - size(note)) + note

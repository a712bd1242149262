"""forgebot.core.render: golden files for the shapes, tables for the cells, huge inputs for the budget.

Regenerate the golden files with `FORGEBOT_UPDATE_GOLDEN=1 pytest tests/test_render.py` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from forgebot.core.models import (
    AgentProfile,
    Attempt,
    AttemptStatus,
    CheckResult,
    CheckSpec,
    DiffStats,
    Strategy,
    Task,
    Usage,
)
from forgebot.core.render import (
    BUDGET,
    COLUMNS,
    branch_links,
    compare_reply,
    error_reply,
    find_marker,
    find_reply_key,
    help_reply,
    marker,
    pr_body,
    pr_title,
    progress_comment,
    refusal,
    reply_marker,
    size,
    status_reply,
)
from forgebot.core.scoring import compare

S = AttemptStatus
GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("FORGEBOT_UPDATE_GOLDEN") == "1"
LINKS = branch_links("https://github.com/octo/app", "main")
CHECKS = (CheckSpec("tests", ("pytest",)), CheckSpec("lint", ("ruff", "check")))
PASS = (CheckResult("tests", True, 0, 3.0), CheckResult("lint", True, 0, 1.0))
FAIL = (CheckResult("tests", True, 0, 3.0), CheckResult("lint", False, 1, 1.0))
ZWJ = "\u200d"


def task(title: str = "Add login rate limiting", task_id: int = 12) -> Task:
    return Task(
        id=task_id,
        title=title,
        description="",
        repo="octo/app",
        base_branch="main",
        base_sha="0" * 40,
        strategy=Strategy.PARALLEL,
        quality_threshold=0.8,
        checks=CHECKS,
        created_at=0.0,
    )


def attempt(attempt_id: int, name: str, status: AttemptStatus = S.SUCCEEDED, **fields: object) -> Attempt:
    model = fields.pop("model", None)
    return Attempt(
        id=attempt_id,
        task_id=12,
        profile=AgentProfile(name=name, executor=name, model=model),  # type: ignore[arg-type]
        branch=fields.pop("branch", f"forge/12-{name}"),  # type: ignore[arg-type]
        worktree=f"/tmp/wt/{attempt_id}",
        status=status,
        created_at=0.0,
        **fields,  # type: ignore[arg-type]
    )


def finished_attempts() -> list[Attempt]:
    return [
        attempt(
            1,
            "claude",
            model="claude-sonnet-4",
            started_at=100.0,
            finished_at=350.0,
            diff=DiffStats(3, 40, 2),
            checks=PASS,
            usage=Usage(tokens_in=12_000, tokens_out=3_400, cost_usd=0.0123),
            final_message="Added a token bucket | per IP.\nTests in `tests/test_limit.py`; cc @octocat",
        ),
        attempt(
            2,
            "gemini",
            S.FAILED,
            started_at=105.0,
            finished_at=300.0,
            diff=DiffStats(2, 10, 1),
            checks=FAIL,
            error="checks failed: lint",
            usage=Usage(tokens_in=9_000, tokens_out=2_000),
        ),
        attempt(
            3,
            "codex",
            S.SUCCEEDED,
            model="o3",
            started_at=103.0,
            finished_at=400.0,
            diff=DiffStats(4, 90, 9),
            checks=PASS,
            usage=Usage(tokens_in=20_000, tokens_out=5_000, cost_usd=1.5),
            final_message="Done.",
        ),
    ]


def running_attempts() -> list[Attempt]:
    return [
        attempt(4, "claude", S.RUNNING, started_at=100.0, progress="editing src/limit.py", usage=Usage(tokens_in=500)),
        attempt(5, "gemini", S.CHECKING, started_at=100.0, diff=DiffStats(1, 5, 0)),
        attempt(6, "codex", S.PREPARING, started_at=290.0),
        attempt(7, "qwen", S.QUEUED),
        attempt(8, "aider", S.TIMED_OUT, started_at=0.0, finished_at=200.0, error="timed out after 200s"),
        attempt(9, "amp", S.CANCELLED, started_at=0.0, finished_at=10.0),
        attempt(10, "cursor", S.INTERRUPTED, started_at=0.0, finished_at=20.0),
    ]


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.md"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: run with FORGEBOT_UPDATE_GOLDEN=1"
    assert text == path.read_bytes().decode("utf-8")


def replies() -> str:
    done = finished_attempts()
    return "\n\n---\n\n".join(
        [
            help_reply(),
            refusal("alice", "you need write access to run `/forge merge`."),
            refusal("not a login!", "no."),
            error_reply("`/forge pick`: needs one attempt number or agent name."),
            status_reply(task(), running_attempts(), progress_url="https://github.com/octo/app/issues/7#c1"),
            status_reply(task(), []),
            compare_reply(compare(done), progress_url="https://github.com/octo/app/issues/7#c1"),
        ]
    )


GOLDEN_CASES = {
    "progress_running": lambda: progress_comment(task(), running_attempts(), now=300.0),
    "progress_empty": lambda: progress_comment(task(), [], now=0.0),
    "progress_finished": lambda: progress_comment(
        task(),
        list(reversed(finished_attempts())),
        now=1000.0,
        branch_url=LINKS,
        comparison=compare(finished_attempts()),
        log_tails={1: "collected 12 items\n\x1b[32m12 passed\x1b[0m\n", 2: "lint: E501 ``` line too long\n", 3: "  \n"},
        footer_lines=["PR #9 merged: cleaned up 2 worktrees and 2 branches."],
    ),
    "pr_body": lambda: pr_body(task(), finished_attempts()[0], compare(finished_attempts()), issue_number=7),
    "pr_body_no_issue": lambda: pr_body(
        task(), finished_attempts()[2], compare(finished_attempts()[2:]), issue_number=None
    ),
    "replies": replies,
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str) -> None:
    assert_golden(name, GOLDEN_CASES[name]())


def test_no_golden_file_is_stale() -> None:
    assert {p.stem for p in GOLDEN.glob("*.md")} == set(GOLDEN_CASES)


# -- markers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<!-- forgebot:task=12 kind=progress -->\nrest", (12, "progress")),
        ("  \n<!--forgebot:task=3   kind=pr-->", (3, "pr")),
        ("<!--\n  forgebot:task=7\nkind=final_2\n-->", (7, "final_2")),
        ("text first\n<!-- forgebot:task=12 kind=progress -->", None),
        ("> <!-- forgebot:task=12 kind=progress -->", None),
        ("<!-- forgebot:task=x kind=progress -->", None),
        ("<!-- forgebot:task=12 kind=Progress -->", None),
        ("<!-- forgebot:task=12 -->", None),
        ("<!-- forgebot:task=1234567890123456789 kind=pr -->", None),
        ("", None),
    ],
)
def test_find_marker(body: str, expected: tuple[int, str] | None) -> None:
    assert find_marker(body) == expected


@pytest.mark.parametrize(("task_id", "kind"), [(0, "progress"), (12, "pr"), (99, "final-line")])
def test_marker_round_trip(task_id: int, kind: str) -> None:
    assert find_marker(marker(task_id, kind) + "\nbody") == (task_id, kind)


@pytest.mark.parametrize(("task_id", "kind"), [(-1, "pr"), (1, ""), (1, "a b"), (1, "x-->"), (1, "Pr")])
def test_marker_refuses_what_it_could_not_read_back(task_id: int, kind: str) -> None:
    with pytest.raises(ValueError, match="bad marker"):
        marker(task_id, kind)


# -- the attempt table, cell by cell ----------------------------------------------------------------------


def cells(body: str, attempt_id: int) -> dict[str, str]:
    """The progress table's row for one attempt, by column, split on unescaped pipes."""
    (line,) = [line for line in body.split("\n") if line.startswith(f"| {attempt_id} |")]
    values = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
    assert len(values) == len(COLUMNS)
    return dict(zip(COLUMNS, values, strict=True))


def row(a: Attempt, **options: object) -> dict[str, str]:
    return cells(progress_comment(task(), [a], now=200.0, **options), a.id)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "column", "expected"),
    [
        ({"model": "o3"}, "agent", "codex (o3)"),
        ({}, "agent", "codex"),
        ({"status": S.TIMED_OUT}, "status", "⏱️ timed out"),
        ({"status": S.QUEUED, "started_at": None}, "elapsed", "—"),
        ({"status": S.RUNNING, "started_at": 75.0}, "elapsed", "2m05s"),
        ({"started_at": 0.0, "finished_at": 4000.0}, "elapsed", "1h06m"),
        ({"status": S.RUNNING, "diff": DiffStats(2, 3, 4)}, "files", "—"),
        ({"status": S.CHECKING, "diff": DiffStats(2, 3, 4)}, "files", "2"),
        ({"diff": DiffStats(2, 3, 4)}, "±lines", "+3/-4"),
        ({}, "±lines", "—"),
        ({"checks": PASS}, "checks", "2/2 ✅"),
        ({"checks": FAIL}, "checks", "1/2 ❌"),
        ({"checks": PASS[:1]}, "checks", "1/2 ✅"),
        ({"status": S.CHECKING}, "checks", "…"),
        ({}, "checks", "—"),
        ({"usage": Usage(tokens_in=1_234_567, tokens_out=89)}, "tokens in/out", "1,234,567 / 89"),
        ({"usage": Usage(tokens_out=5)}, "tokens in/out", "0 / 5"),
        ({}, "tokens in/out", "—"),
        ({"usage": Usage(cost_usd=0.0123)}, "cost", "$0.0123"),
        ({"usage": Usage(cost_usd=12.345)}, "cost", "$12.35"),
        ({"usage": Usage(cost_usd=0.0)}, "cost", "$0.0000"),
        ({}, "cost", "?"),
        ({"status": S.RUNNING}, "cost", "—"),
        ({"status": S.RUNNING, "usage": Usage(cost_usd=0.5)}, "cost", "$0.5000"),
        ({}, "branch", "`forge/12-codex`"),
        ({"branch": "forge/a`b|c"}, "branch", "`` forge/a`b\\|c ``"),
        ({"status": S.RUNNING, "progress": "reading files"}, "note", "reading files"),
        ({"error": "exit 1", "final_message": "done"}, "note", "exit 1"),
        ({"final_message": "done"}, "note", "done"),
        ({"final_message": "a | b\nc\r\nd"}, "note", "a \\| b c d"),
        ({"final_message": "ping @octocat and @org/team"}, "note", f"ping @{ZWJ}octocat and @{ZWJ}org/team"),
        ({"final_message": "Closes #3, see o/r#4"}, "note", f"Closes #{ZWJ}3, see o/r#{ZWJ}4"),
        ({"final_message": "mail a@b.c; #define"}, "note", f"mail a@{ZWJ}b.c; #define"),
        (
            {"final_message": "<!-- forgebot:task=1 kind=progress -->"},
            "note",
            f"<{ZWJ}!-- forgebot:task=1 kind=progress -->",
        ),
        ({"final_message": "<img src=x>"}, "note", f"<{ZWJ}img src=x>"),
        ({"final_message": "`List<int>`"}, "note", f"`List<{ZWJ}int>`"),
        ({"final_message": "\x1b[31mred\x1b[0m\u202e"}, "note", "red"),
        ({"final_message": "x" * 500}, "note", "x" * 119 + "…"),
    ],
)
def test_attempt_cells(fields: dict[str, object], column: str, expected: str) -> None:
    fields = {"started_at": 0.0, "finished_at": 10.0, **fields}
    a = attempt(3, "codex", fields.pop("status", S.SUCCEEDED), **fields)  # type: ignore[arg-type]
    if not a.status.terminal:
        a.finished_at = None
    assert row(a)[column] == expected


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (None, "`forge/12-codex`"),
        (branch_links("https://github.com/o/r/"), "[`forge/12-codex`](https://github.com/o/r/tree/forge/12-codex)"),
        (
            branch_links("https://github.com/o/r", "main"),
            "[`forge/12-codex`](https://github.com/o/r/compare/main...forge/12-codex)",
        ),
        (lambda branch: None, "`forge/12-codex`"),
    ],
)
def test_branch_cell(link: object, expected: str) -> None:
    assert row(attempt(3, "codex"), branch_url=link)["branch"] == expected


def test_branch_links_quote_names() -> None:
    assert branch_links("https://g/o/r", "rel 1")("a b#c") == "https://g/o/r/compare/rel%201...a%20b%23c"


def test_agent_text_never_forges_a_marker_or_a_reference() -> None:
    evil = "<!-- forgebot:task=1 kind=pr --> @admin Closes #1 | x"
    done = [
        attempt(1, "claude", final_message=evil, error=None, diff=DiffStats(1, 1, 0), started_at=0.0, finished_at=1.0)
    ]
    body = progress_comment(task(evil), done, now=1.0, comparison=compare(done), log_tails={1: evil})
    assert body.count("<!--") == 1
    assert find_marker(body) == (12, "progress")
    outside_logs = body.split("<details>")[0]
    assert re.search(r"@[A-Za-z]|#\d", outside_logs) is None


def test_own_prose_makes_no_cross_references() -> None:
    """ "attempt #1" in our text would link issue #1 and add to its timeline; only `Closes #N` may."""
    done = finished_attempts()
    bodies = [
        progress_comment(task(), done, now=1.0, comparison=compare(done), log_tails={1: "x"}),
        pr_body(task(), done[0], compare(done), issue_number=7).replace("Closes #7", "").replace("on #7", ""),
    ]
    for body in bodies:
        prose = re.sub(r"`[^`\n]*`", "", body.replace("@" + ZWJ, "").replace("#" + ZWJ, ""))
        assert re.search(r"@[A-Za-z]|#\d", prose) is None


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Add auth", "Add auth"),
        ("  Add\n auth <!-- x -->", "Add auth"),
        ("", "forgebot change"),
        ("<!-- only a comment -->", "forgebot change"),
        ("word " * 30, ("word " * 19).strip() + "…"),
        ("x" * 150, "x" * 99 + "…"),
        ("y" * 100, "y" * 100),
    ],
)
def test_pr_title(title: str, expected: str) -> None:
    assert pr_title(title) == expected
    assert len(pr_title(title)) <= 100


# -- the size budget -----------------------------------------------------------------------------------


MEGABYTE = 1_000_000


def many(count: int, **fields: object) -> list[Attempt]:
    message = "| pipes |\nand newlines @everyone " * 2000
    return [
        attempt(
            i, f"agent{i}", S.FAILED, started_at=0.0, finished_at=1.0, error=message, final_message=message, **fields
        )
        for i in range(1, count + 1)
    ]


def assert_well_formed(body: str, budget: int) -> None:
    assert size(body) <= budget
    assert find_marker(body) is not None
    assert body.count("<details>") == body.count("</details>")
    fence = None  # every log fence opens with its info string and closes with exactly the same fence
    for line in body.split("\n"):
        opening = re.fullmatch(r"(`{3,})text", line)
        if fence is None and opening:
            fence = opening[1]
        elif line == fence:
            fence = None
    assert fence is None
    for line in body.split("\n"):
        if line.startswith("| "):
            assert line.endswith(" |")


@pytest.mark.parametrize(
    ("name", "attempts", "tails", "footer", "budget"),
    [
        ("1000 attempts, 1 MB logs", many(1000), "log line\n" * (MEGABYTE // 9), (), BUDGET),
        ("3 attempts, 1 MB logs", many(3), "x" * MEGABYTE, (), BUDGET),
        ("1 MB of emoji", many(3), "😀" * MEGABYTE, (), BUDGET),
        ("1 MB of backticks", many(3), "`" * MEGABYTE, (), BUDGET),
        ("backtick lines", many(3), "```\n" * (MEGABYTE // 4), (), BUDGET),
        ("one 1 MB line", many(2), "a" * MEGABYTE, (), 5_000),
        ("huge footer", many(3), "log", ["PR #9 merged. " * 10_000] * 10, BUDGET),
        ("tiny budget", many(50), "log\n" * 1000, (), 2_000),
    ],
)
def test_progress_comment_stays_within_budget(
    name: str, attempts: list[Attempt], tails: str, footer: list[str], budget: int
) -> None:
    comparison = compare(attempts)
    body = progress_comment(
        task("Title " * 10_000),
        attempts,
        now=2.0,
        comparison=comparison,
        log_tails=dict.fromkeys((a.id for a in attempts), tails),
        footer_lines=footer,
        budget=budget,
    )
    assert_well_formed(body, budget)
    assert size(body) <= 65_536


def test_logs_shrink_before_the_table_loses_rows() -> None:
    attempts = finished_attempts()
    body = progress_comment(task(), attempts, now=1.0, log_tails=dict.fromkeys((1, 2, 3), "line\n" * MEGABYTE))
    assert_well_formed(body, BUDGET)
    assert "not shown" not in body
    assert all(cells(body, a.id) for a in attempts)
    blocks = body.split("```text\n")[1:]
    assert len(blocks) == 3
    for block in blocks:
        assert block.startswith("[…]\nline\n")
        assert 3_900 < len(block.split("\n```")[0]) <= 4_000  # each tail got its full share


def test_logs_go_before_the_table_is_cut() -> None:
    attempts = many(150)
    body = progress_comment(task(), attempts, now=1.0, log_tails=dict.fromkeys(range(1, 151), "line\n" * 1000))
    assert_well_formed(body, BUDGET)
    assert "_Logs left out: the comment would be too long._" in body
    assert "not shown" not in body


def test_table_is_cut_with_a_note() -> None:
    body = progress_comment(task(), many(1000), now=1.0, comparison=compare(many(1000)))
    assert_well_formed(body, BUDGET)
    shown = len([line for line in body.split("\n") if re.match(r"\| \d+ \| agent", line)])
    assert 100 < shown < 1000
    assert f"_{1000 - shown} more attempts not shown: the comment would be too long._" in body
    assert "more ranked attempts not shown" in body
    assert body.rstrip().endswith("Total cost: unknown (some costs unknown)")


def test_huge_footer_is_cut_as_a_last_resort() -> None:
    body = progress_comment(task(), [], now=0.0, footer_lines=["😀" * 100_000], budget=10_000)
    assert size(body) <= 10_000
    assert body.endswith("_[…] cut: the comment would be too long._\n")


def test_pr_body_stays_within_budget() -> None:
    attempts = many(1000)
    winner = attempts[0]
    body = pr_body(task(), winner, compare(attempts), issue_number=7)
    assert_well_formed(body, BUDGET)
    assert body.rstrip().endswith("Closes #7")
    assert "more ranked attempts not shown" in body
    said = [line for line in body.split("\n") if line.startswith("> ")]
    assert 0 < sum(map(len, said)) <= 3_200  # the agent's summary is capped


def test_reply_markers_are_read_from_the_last_line_only() -> None:
    marker = reply_marker("c12-0")
    assert marker == "<!-- forgebot:reply=c12-0 -->"
    assert find_reply_key(f"Opened #2.\n\n{marker}") == "c12-0"
    assert find_reply_key(f"{marker}\n") == "c12-0"
    assert find_reply_key(f"> Opened #2.\n>\n> {marker}") is None  # someone quoting us
    assert find_reply_key(f"{marker}\nand more after it") is None
    assert find_reply_key("no marker") is None
    for bad in ("", "has space", "x" * 101, "-leading", "a>b"):
        with pytest.raises(ValueError, match="bad reply key"):
            reply_marker(bad)

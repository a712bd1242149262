"""forgebot.core.commands: the `/forge` grammar, one table per concern."""

from __future__ import annotations

import pytest

from forgebot.core.commands import (
    SPECS,
    Command,
    LabelError,
    Reply,
    Target,
    Verb,
    help_text,
    parse,
    parse_label,
)

V = Verb
FENCE = "```"


C = Command


def number(n: int) -> Target:
    return Target(number=n)


def agent(name: str) -> Target:
    return Target(agent=name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # -- where commands are found ------------------------------------------------------------------
        pytest.param("", [], id="empty"),
        pytest.param("Looks good to me!", [], id="no-command"),
        pytest.param("please /forge run now", [], id="mid-line"),
        pytest.param("> /forge run", [], id="quoted"),
        pytest.param(">/forge run", [], id="quoted-no-space"),
        pytest.param("/forgery", [], id="longer-word"),
        pytest.param("/forge/run", [], id="no-space"),
        pytest.param(f"{FENCE}\n/forge run\n{FENCE}", [], id="backtick-fence"),
        pytest.param("~~~\n/forge run\n~~~", [], id="tilde-fence"),
        pytest.param(f"{FENCE}\n/forge run", [], id="unclosed-fence"),
        pytest.param(f"{FENCE}\n/forge run\n{FENCE}\n/forge status", [C(V.STATUS)], id="after-fence"),
        pytest.param("<!-- /forge merge 1 -->\n<!--\n/forge run\n-->", [], id="hidden-in-comment"),
        pytest.param("/for\u200bge run", [C(V.RUN)], id="invisible-characters-removed-first"),
        pytest.param("/forge", [C(V.HELP)], id="bare-is-help"),
        pytest.param("/forge   ", [C(V.HELP)], id="bare-trailing-space"),
        pytest.param("   /forge status", [C(V.STATUS)], id="three-spaces"),
        pytest.param(" \t/forge status", [], id="space-tab-is-four-columns"),
        pytest.param("    /forge run", [], id="indented-code"),
        pytest.param("\t/forge run", [], id="tab-indented-code"),
        pytest.param("Try this:\n\n        /forge merge 1\n\n/forge status", [C(V.STATUS)], id="indented-in-text"),
        pytest.param("  \n\n    /forge run", [], id="indented-after-blank-lines"),
        pytest.param("/FORGE Status", [C(V.STATUS)], id="case-insensitive"),
        pytest.param("/forge\trun", [C(V.RUN)], id="tab-separated"),
        pytest.param("/forge status\r\n", [C(V.STATUS)], id="crlf"),
        pytest.param("Thanks!\n/forge status\nbye\n/forge compare", [C(V.STATUS), C(V.COMPARE)], id="several"),
        # -- run ---------------------------------------------------------------------------------------------
        pytest.param("/forge run", [C(V.RUN)], id="run-default"),
        pytest.param("/forge run claude gemini", [C(V.RUN, agents=("claude", "gemini"))], id="run-agents"),
        pytest.param("/forge run claude,gemini, codex", [C(V.RUN, agents=("claude", "gemini", "codex"))], id="commas"),
        pytest.param("/forge run Claude", [C(V.RUN, agents=("claude",))], id="agent-lowercased"),
        pytest.param("/forge run claude claude", [C(V.RUN, agents=("claude", "claude"))], id="run-twice"),
        pytest.param("/forge run gpt-4.1_mini", [C(V.RUN, agents=("gpt-4.1_mini",))], id="agent-punctuation"),
        pytest.param("/forge run 'claude'", [C(V.RUN, agents=("claude",))], id="quoted-token"),
        # -- fork ---------------------------------------------------------------------------------------------
        pytest.param("/forge fork gemini", [C(V.FORK, agents=("gemini",))], id="fork"),
        pytest.param("/forge fork gemini --model flash", [C(V.FORK, agents=("gemini",), model="flash")], id="model"),
        pytest.param("/forge fork --model=o3 codex", [C(V.FORK, agents=("codex",), model="o3")], id="model-eq"),
        pytest.param(
            "/forge fork c --model 'claude opus'", [C(V.FORK, agents=("c",), model="claude opus")], id="model-quoted"
        ),
        # -- targets ------------------------------------------------------------------------------------------
        pytest.param("/forge pick 2", [C(V.PICK, target=number(2))], id="pick-number"),
        pytest.param("/forge pick #2", [C(V.PICK, target=number(2))], id="pick-hash-number"),
        pytest.param("/forge pick Gemini", [C(V.PICK, target=agent("gemini"))], id="pick-agent"),
        pytest.param("/forge pick 2x", [C(V.PICK, target=agent("2x"))], id="digit-led-agent"),
        pytest.param("/forge merge 12", [C(V.MERGE, target=number(12))], id="merge"),
        pytest.param("/forge retry claude", [C(V.RETRY, target=agent("claude"))], id="retry"),
        pytest.param("/forge cancel", [C(V.CANCEL)], id="cancel-all"),
        pytest.param("/forge cancel 3", [C(V.CANCEL, target=number(3))], id="cancel-one"),
        pytest.param("/forge status", [C(V.STATUS)], id="status"),
        pytest.param("/forge compare", [C(V.COMPARE)], id="compare"),
        pytest.param("/forge cleanup", [C(V.CLEANUP)], id="cleanup"),
        pytest.param("/forge help", [C(V.HELP)], id="help"),
        # -- followup -------------------------------------------------------------------------------------------
        pytest.param("/forge followup 2 -- add tests", [C(V.FOLLOWUP, target=number(2), text="add tests")], id="fu"),
        pytest.param("/forge followup -- add tests", [C(V.FOLLOWUP, text="add tests")], id="fu-winner"),
        pytest.param(
            '/forge followup claude -- don\'t use "quotes" | pipes',
            [C(V.FOLLOWUP, target=agent("claude"), text='don\'t use "quotes" | pipes')],
            id="fu-text-verbatim",
        ),
        pytest.param(
            "/forge followup 1 -- first\nsecond\n\n> quoted\n" + FENCE + "\n/forge run\n" + FENCE,
            [C(V.FOLLOWUP, target=number(1), text=f"first\nsecond\n\n> quoted\n{FENCE}\n/forge run\n{FENCE}")],
            id="fu-following-lines",
        ),
        pytest.param(
            "/forge followup 1 --\nonly below\n/forge status\nnot text",
            [C(V.FOLLOWUP, target=number(1), text="only below"), C(V.STATUS)],
            id="fu-ends-at-next-command",
        ),
        pytest.param("/forge followup 2\nfix it", [C(V.FOLLOWUP, target=number(2), text="fix it")], id="fu-no-dashes"),
        pytest.param("/forge followup -- a -- b", [C(V.FOLLOWUP, text="a -- b")], id="fu-second-dashes-are-text"),
        # -- template -----------------------------------------------------------------------------------------
        pytest.param("/forge template bugfix", [C(V.TEMPLATE, name="bugfix")], id="template"),
        pytest.param(
            "/forge template Bugfix sev=high 'title=a -- b' empty=",
            [C(V.TEMPLATE, name="bugfix", params=(("sev", "high"), ("title", "a -- b"), ("empty", "")))],
            id="template-params",
        ),
        pytest.param(
            "/forge template t url=https://x/?a=b",
            [C(V.TEMPLATE, name="t", params=(("url", "https://x/?a=b"),))],
            id="value-with-equals",
        ),
    ],
)
def test_parse(text: str, expected: list[Command | Reply]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "verb", "problem"),
    [
        ("/forge fork", "fork", "needs exactly one agent name"),
        ("/forge fork a b", "fork", "needs exactly one agent name"),
        ("/forge fork a --model", "fork", "`--model` needs a value"),
        ("/forge fork a --model=", "fork", "`--model` needs a value"),
        ("/forge fork a --model --x", "fork", "`--model` needs a value"),
        ("/forge fork a --model m --model n", "fork", "`--model` given twice"),
        ("/forge fork a --mode m", "fork", "unknown option `--mode`"),
        ("/forge fork Bad!", "fork", "`Bad!` is not a valid name"),
        ("/forge run a -- text", "run", "takes no text after `--`"),
        ("/forge run -v", "run", "unknown option `-v`"),
        ("/forge run bad/name", "run", "`bad/name` is not a valid name"),
        ("/forge run " + "a" * 65, "run", "is not a valid name"),
        ("/forge pick", "pick", "needs one attempt number or agent name"),
        ("/forge pick 1 2", "pick", "needs one attempt number or agent name"),
        ("/forge pick 0", "pick", "`0` is not an attempt number"),
        ("/forge pick -1", "pick", "`-1` is not an attempt number"),
        ("/forge pick #0", "pick", "`#0` is not an attempt number"),
        ("/forge pick " + "9" * 19, "pick", "is not an attempt number"),
        ("/forge pick " + "9" * 5000, "pick", "is not an attempt number"),
        ("/forge merge 1 --squash", "merge", "unknown option `--squash`"),
        ("/forge cancel 1 2", "cancel", "takes at most one attempt number or agent name"),
        ("/forge retry", "retry", "needs one attempt number or agent name"),
        ("/forge status now", "status", "takes no arguments"),
        ("/forge help fork", "help", "takes no arguments"),
        ("/forge cleanup -- x", "cleanup", "takes no text after `--`"),
        ("/forge followup", "followup", "needs text after `--`"),
        ("/forge followup 2 --   ", "followup", "needs text after `--`"),
        ("/forge followup 2 --\n\n/forge status", "followup", "needs text after `--`"),
        ("/forge followup fix the tests", "followup", "put the text after `--`"),
        ("/forge followup 0 -- x", "followup", "`0` is not an attempt number"),
        ("/forge template", "template", "needs a template name"),
        ("/forge template t sev", "template", "`sev` is not key=value"),
        ("/forge template t =x", "template", "`=x` is not key=value"),
        ("/forge template t 1a=x", "template", "`1a=x` is not key=value"),
        ("/forge template t a=1 a=2", "template", "`a` given twice"),
        ("/forge template bad! a=1", "template", "`bad!` is not a valid name"),
    ],
)
def test_usage_errors(text: str, verb: str, problem: str) -> None:
    reply = parse(text)[0]
    assert isinstance(reply, Reply)
    spec = next(s for s in SPECS if s.verb == verb)
    head, usage = reply.message.split("\n\n")
    assert head.startswith(f"`/forge {verb}`: ")
    assert problem in head
    assert usage == f"Usage: `{spec.usage}`: {spec.summary}."


@pytest.mark.parametrize(
    ("text", "shown", "guess"),
    [
        ("/forge frok gemini", "frok", "fork"),
        ("/forge Runn", "runn", "run"),
        ("/forge merg 2", "merg", "merge"),
        ("/forge stats", "stats", "status"),
        ("/forge follow-up -- x", "follow-up", "followup"),
        ("/forge deploy", "deploy", None),
        ("/forge -- text", "--", None),
        ("/forge `x`", "'x'", None),
    ],
)
def test_unknown_verbs_get_a_guess_and_the_help(text: str, shown: str, guess: str | None) -> None:
    (reply,) = parse(text)
    assert isinstance(reply, Reply)
    first, rest = reply.message.split("\n\n", 1)
    hint = f" Did you mean `/forge {guess}`?" if guess else ""
    assert first == f"Unknown command `/forge {shown}`.{hint}"
    assert rest == help_text()


def test_replies_show_the_configured_trigger_label() -> None:
    for reply in parse("/forge frok\n/forge run 'x", trigger="ai"):
        assert isinstance(reply, Reply)
        assert reply.message.endswith(help_text("ai"))
        assert "`forge:" not in reply.message


def test_unclosed_quote_is_a_reply_with_the_help() -> None:
    (reply,) = parse("/forge run 'claude")
    assert isinstance(reply, Reply)
    assert reply.message.startswith("Could not read `/forge run 'claude`: a quote is not closed.")
    assert reply.message.endswith(help_text())


def test_a_bad_line_does_not_hide_the_others() -> None:
    results = parse("/forge status\n/forge pick\n/forge compare")
    assert [type(r) for r in results] == [Command, Reply, Command]


def test_followup_text_stops_collecting_after_an_error() -> None:
    assert parse("/forge followup a b\nmore\n/forge status")[1:] == [C(V.STATUS)]


def test_help_is_generated_from_the_specs() -> None:
    text = help_text("robot")
    assert {spec.verb for spec in SPECS} == set(Verb)
    for spec in SPECS:
        assert f"- `{spec.usage}`: {spec.summary}" in text
    assert "`robot:claude,gemini`" in text


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.verb.value)
def test_every_usage_line_parses_once_filled_in(spec: object) -> None:
    """The usage strings are the documentation: an example built from each must parse to its verb."""
    examples = {
        V.RUN: "run claude gemini",
        V.FORK: "fork gemini --model flash",
        V.PICK: "pick 2",
        V.MERGE: "merge claude",
        V.CANCEL: "cancel 1",
        V.RETRY: "retry 1",
        V.FOLLOWUP: "followup 1 -- more tests",
        V.TEMPLATE: "template t a=b",
    }
    verb = spec.verb  # type: ignore[attr-defined]
    (command,) = parse(f"/forge {examples.get(verb, verb.value)}")
    assert isinstance(command, Command)
    assert command.verb is verb


def test_parameters_as_a_dict() -> None:
    assert C(V.TEMPLATE, params=(("a", "1"), ("b", "2"))).parameters == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("label", "trigger", "expected"),
    [
        ("forge", "forge", []),
        ("Forge", "forge", []),
        ("forge:", "forge", []),
        ("forge:claude,gemini", "forge", ["claude", "gemini"]),
        ("forge: Claude , gemini,", "forge", ["claude", "gemini"]),
        (" forge : claude", "forge", ["claude"]),
        ("forge:claude", "FORGE", ["claude"]),
        ("ai:codex", "ai", ["codex"]),
        ("forge", "ai", None),
        ("forged", "forge", None),
        ("forge-claude", "forge", None),
        ("bug", "forge", None),
        ("", "forge", None),
    ],
)
def test_parse_label(label: str, trigger: str, expected: list[str] | None) -> None:
    assert parse_label(label, trigger) == expected


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("forge:claude,bad name", "label `forge:claude,bad name`: not a valid agent name: bad name"),
        ("forge:-x,ok,y/z", "label `forge:-x,ok,y/z`: not a valid agent name: -x, y/z"),
        ("forge:`x`", "label `forge:'x'`: not a valid agent name: 'x'"),
    ],
)
def test_parse_label_rejects_bad_agent_names(label: str, message: str) -> None:
    with pytest.raises(LabelError) as raised:
        parse_label(label)
    assert str(raised.value) == message

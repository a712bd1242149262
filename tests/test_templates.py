"""Prompt templates: the pure core (parse, check, render), the config's `templates:` section, and the loaders
(a real work tree; a repository on the HTTP fake of GitHub through PyGithub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgebot.config import ConfigError, Settings, load_repo_config, load_settings, merge
from forgebot.core.templates import (
    Param,
    Rendered,
    Template,
    TemplateError,
    UnknownTemplate,
    parse,
    parse_assignments,
    placeholders,
    with_issue,
)
from forgebot.github.client import PyGithubClient
from forgebot.templates import fetch_names, fetch_template, find_template, load_templates
from tests.fake_github import FakeGitHub

FIX = """\
---
name: fix-bug
description: Fix a bug in one file
title: "Fix {{ file }}"
agents: [claude, gemini]
params:
  file: {description: the file to fix}
  line: {default: 1, description: where to look}
---
# Fix the bug

Fix the bug in `{{ file }}` near line {{line}}.
<!-- a note for the template's authors -->
Keep \\{{ literal }} and {{ .Values.x }} as they are.
"""


def fix() -> Template:
    return parse(FIX, ".github/forge/templates/fix-bug.md", "fix-bug")


# -- parsing ----------------------------------------------------------------------------------------------


def test_a_full_template_file() -> None:
    assert fix() == Template(
        name="fix-bug",
        body="# Fix the bug\n\nFix the bug in `{{ file }}` near line {{line}}.\n\n"
        "Keep \\{{ literal }} and {{ .Values.x }} as they are.",
        description="Fix a bug in one file",
        title="Fix {{ file }}",
        agents=("claude", "gemini"),
        params=(Param("file", None, "the file to fix"), Param("line", "1", "where to look")),
        source=".github/forge/templates/fix-bug.md",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Just do it.\n", Template("t", "Just do it.", source="s"), id="no-front-matter"),
        pytest.param("---\n---\nBody", Template("t", "Body", source="s"), id="empty-front-matter"),
        pytest.param("---\r\ndescription: D\r\n---\r\nBody\r\n", Template("t", "Body", "D", source="s"), id="crlf"),
        pytest.param(
            "---\nparams: [a, b]\n---\n{{a}}{{ b }}",
            Template("t", "{{a}}{{ b }}", params=(Param("a"), Param("b")), source="s"),
            id="params-as-a-list",
        ),
        pytest.param(
            "---\nparams: {a: , b: {default: ''}, c: {default: 2.5}}\n---\n{{a}}",
            Template("t", "{{a}}", params=(Param("a"), Param("b", ""), Param("c", "2.5")), source="s"),
            id="params-required-empty-default-number",
        ),
        pytest.param("---\nname: t\nagents: [a, a]\n---\nx", Template("t", "x", agents=("a",), source="s"), id="dup"),
        pytest.param("x\u200b<!-- hidden -->y", Template("t", "xy", source="s"), id="invisible-removed"),
    ],
)
def test_parse(text: str, expected: Template) -> None:
    assert parse(text, "s", "t") == expected


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("---\ndescription: x\nBody", "t", "f.md: the front matter opened with '---' is never closed"),
        ("---\n: [\n---\nBody", "t", "f.md: front matter line 2:"),
        ("---\n- a\n---\nBody", "t", "f.md: the front matter must be a mapping"),
        ("---\ncolour: red\n---\nBody", "t", "f.md colour: not a template setting (use name, description"),
        ("---\nprompt: x\n---\nBody", "t", "f.md prompt: not a template setting"),
        ("---\nname: other\n---\nBody", "t", "f.md name: 'other' differs from the file name 't'"),
        ("Body", "Fix", "f.md: 'Fix' is not a valid template name (lowercase letters"),
        ("---\ndescription: x\n---\n  \n<!-- only a note -->\n", "t", "f.md body: the prompt is empty"),
        ("---\ndescription: [a]\n---\nBody", "t", "f.md description: must be text, not a list"),
        ("---\ntitle: 3\n---\nBody", "t", "f.md title: must be text, not a number"),
        ("---\nagents: claude\n---\nBody", "t", "f.md agents: must be a list of agent names"),
        ("---\nagents: [Claude!]\n---\nBody", "t", "f.md agents: 'Claude!' is not a valid agent name"),
        ("---\nparams: file\n---\nBody", "t", "f.md params: must be a mapping of parameter names"),
        ("---\nparams: {1x: }\n---\nBody", "t", "f.md params.1x: not a valid parameter name"),
        ("---\nparams: [a.b]\n---\nBody", "t", "f.md params.a.b: not a valid parameter name"),
        ("---\nparams: {a: text}\n---\nBody", "t", "f.md params.a: must be a mapping with `default`"),
        ("---\nparams: {a: {dflt: 1}}\n---\nBody", "t", "f.md params.a.dflt: not a parameter setting (use default"),
        ("---\nparams: {a: {default: true}}\n---\nB", "t", "f.md params.a.default: must be text or a number, not true"),
        ("---\nparams: {a: {default: [1]}}\n---\nB", "t", "f.md params.a.default: must be text or a number, not a li"),
        ("---\nparams: {a: {description: 1}}\n---\nB", "t", "f.md params.a.description: must be text, not a number"),
        ("---\nparams: [file]\n---\nFix {{ fiel }}", "t", "f.md body: {{ fiel }} is not a declared parameter (decl"),
        ("Fix {{ file }}", "t", "f.md body: {{ file }} is not a declared parameter (declared: none; write \\{{"),
        ("---\ntitle: '{{ x }}'\n---\nBody", "t", "f.md title: {{ x }} is not a declared parameter"),
    ],
)
def test_parse_errors_name_the_file_and_the_key(text: str, name: str, message: str) -> None:
    with pytest.raises(TemplateError) as error:
        parse(text, "f.md", name)
    assert str(error.value).startswith(message), str(error.value)


def test_placeholders_in_order_of_first_use() -> None:
    assert placeholders("{{b}} {{ a }} \\{{ c }} {{ b }} {{ .x }} {{d-e}}") == ["b", "a", "d-e"]


# -- rendering --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            {"file": "app.py"},
            Rendered(
                "Fix app.py",
                "# Fix the bug\n\nFix the bug in `app.py` near line 1.\n\n"
                "Keep {{ literal }} and {{ .Values.x }} as they are.",
                ("claude", "gemini"),
            ),
            id="default-applied",
        ),
        pytest.param(
            {"file": "{{ line }}", "line": "$(rm -rf /) {{ file }}"},
            Rendered(
                "Fix {{ line }}",
                "# Fix the bug\n\nFix the bug in `{{ line }}` near line $(rm -rf /) {{ file }}.\n\n"
                "Keep {{ literal }} and {{ .Values.x }} as they are.",
                ("claude", "gemini"),
            ),
            id="values-are-verbatim-never-expanded-again",
        ),
    ],
)
def test_render(values: dict[str, str], expected: Rendered) -> None:
    assert fix().render(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "template `fix-bug`: missing parameter file (usage: fix-bug file=<file> [line=1])"),
        ({"file": "  "}, "template `fix-bug`: missing parameter file (usage"),
        ({"file": "a", "lien": "2", "x": ""}, "template `fix-bug`: unknown parameters lien, x (usage"),
        ({"colour": "red"}, "template `fix-bug`: missing parameter file; unknown parameter colour (usage"),
    ],
)
def test_render_errors_list_every_missing_and_unknown_name(values: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError) as error:
        fix().render(values)
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("---\nparams: [x]\n---\n\n## Add {{ x }}\nmore", "Add it"),  # the first line, without heading marks
        ("---\nparams: [x]\n---\n" + "word " * 100, ("word " * 100).strip()[:256].rstrip()),  # GitHub's limit
        ("---\nparams: [x]\n---\n# \nreal", "x"),  # a title with nothing in it: the template's name
    ],
)
def test_title_defaults_to_the_first_line(text: str, title: str) -> None:
    assert parse(text, "s", "x").render({"x": "it"}).title == title


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ([], {}),
        (["file=a.py", "msg=a = b", "empty="], {"file": "a.py", "msg": "a = b", "empty": ""}),
    ],
)
def test_parse_assignments(tokens: list[str], expected: dict[str, str]) -> None:
    assert parse_assignments(tokens) == expected


@pytest.mark.parametrize(
    ("tokens", "message"),
    [(["file"], "`file` is not key=value"), (["=x"], "`=x` is not key=value"), (["a=1", "a=2"], "`a` given twice")],
)
def test_parse_assignments_errors(tokens: list[str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_assignments(tokens)


@pytest.mark.parametrize(
    ("issue_text", "expected"),
    [
        ("Please add slugify().", "Do X.\n\n## Issue #7\n\nPlease add slugify()."),
        ("", "Do X."),
        ("  \n", "Do X."),
    ],
)
def test_with_issue_puts_the_issue_after_the_template(issue_text: str, expected: str) -> None:
    assert with_issue("Do X.", 7, issue_text) == expected


def test_unknown_template_lists_what_exists() -> None:
    assert str(UnknownTemplate("fx", ["fix", "add"])) == "unknown template `fx` (available: add, fix)"
    assert str(UnknownTemplate("fx", [], ": add one")) == "unknown template `fx` (none is defined: add one)"


# -- the config's templates: section ---------------------------------------------------------------------

CONFIG = """\
templates:
  review:
    description: Review a module
    agents: [claude]
    params: {module: {description: which one}, depth: {default: 2}}
    prompt: |
      Review {{ module }} to depth {{ depth }}.
  fix-bug:
    prompt: From the config
"""


def test_config_templates(tmp_path: Path) -> None:
    path = tmp_path / "forgebot.yml"
    path.write_text(CONFIG)
    # Environment overrides and a repository's forge.yml re-validate the settings: the templates survive both.
    settings = load_settings(str(path), environ={"FORGEBOT_LIMITS__MAX_PARALLEL": "2"})
    settings = merge(settings, load_repo_config("defaults: {agents: [claude]}\n"))
    assert list(settings.templates) == ["review", "fix-bug"]
    review = settings.templates["review"].to_template("review", "config templates.review")
    assert review == Template(
        "review",
        "Review {{ module }} to depth {{ depth }}.",
        "Review a module",
        agents=("claude",),
        params=(Param("module", None, "which one"), Param("depth", "2")),
        source="config templates.review",
    )


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({"t": {"prompt": "{{ x }}"}}, "f.yml templates: t.prompt: {{ x }} is not a declared parameter"),
        ({"T!": {"prompt": "x"}}, "f.yml templates: T!: 'T!' is not a valid template name"),
        ({"t": {"prompt": " "}}, "f.yml templates: t.prompt: the prompt is empty"),
        ({"t": {}}, "f.yml templates.t.prompt: Field required"),
        ({"t": {"prompt": "x", "body": "y"}}, "f.yml templates.t.body: Extra inputs are not permitted"),
        ({"t": {"prompt": "x", "params": {"a": {"default": False}}}}, "f.yml templates.t.params.a.default: must be"),
        ({"t": {"prompt": "x", "agents": ["Bad!"]}}, "f.yml templates: t.agents: 'Bad!' is not a valid agent name"),
    ],
)
def test_config_template_errors(tmp_path: Path, templates: dict[str, object], message: str) -> None:
    import yaml

    path = tmp_path / "f.yml"
    path.write_text(yaml.safe_dump({"templates": templates}))
    with pytest.raises(ConfigError) as error:
        load_settings(str(path), environ={})
    assert str(error.value).startswith(str(path.parent / message)), str(error.value)


# -- loading: a work tree ---------------------------------------------------------------------------------


def settings_with_config(tmp_path: Path) -> Settings:
    path = tmp_path / "forgebot.yml"
    path.write_text(CONFIG)
    return load_settings(str(path), environ={})


def write(repo: Path, name: str, text: str) -> None:
    path = repo / ".github/forge/templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_load_templates_merges_config_and_files_and_the_file_wins(tmp_path: Path) -> None:
    settings = settings_with_config(tmp_path)
    repo = tmp_path / "repo"
    write(repo, "fix-bug.md", FIX)
    write(repo, "notes.txt", "not a template")
    (repo / ".github/forge/templates/folder.md").mkdir()  # a folder named like a template is not one

    found = load_templates(str(repo), settings)

    assert list(found) == ["fix-bug", "review"]
    assert found["fix-bug"].source == ".github/forge/templates/fix-bug.md"
    assert found["review"].source == "config templates.review"
    assert load_templates(str(tmp_path / "empty"), Settings()) == {}


def test_find_template_reads_only_the_file_it_needs(tmp_path: Path) -> None:
    settings = settings_with_config(tmp_path)
    repo = tmp_path / "repo"
    write(repo, "fix-bug.md", FIX)
    write(repo, "broken.md", "---\ncolour: red\n---\nx")

    assert find_template(str(repo), "fix-bug", settings) == fix()
    assert find_template(str(repo), "review", settings).source == "config templates.review"
    with pytest.raises(TemplateError, match=r"^\.github/forge/templates/broken\.md colour: not a template setting"):
        find_template(str(repo), "broken", settings)
    with pytest.raises(TemplateError, match=r"broken\.md colour"):
        load_templates(str(repo), settings)  # listing everything does meet the broken file
    with pytest.raises(UnknownTemplate) as unknown:
        find_template(str(repo), "fixbug", settings)
    assert unknown.value.available == ["broken", "fix-bug", "review"]
    with pytest.raises(
        UnknownTemplate, match=r"none is defined: add `\.github/forge/templates/x\.md` or a `templates:`"
    ):
        find_template(str(tmp_path / "empty"), "x", Settings())


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, "bin.md", "")
    (repo / ".github/forge/templates/bin.md").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TemplateError, match=r"^\.github/forge/templates/bin\.md: not UTF-8 text"):
        find_template(str(repo), "bin", Settings())


def test_a_symlinked_template_is_refused_by_name_and_never_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, "fix-bug.md", FIX)
    (repo / ".github/forge/templates/leak.md").symlink_to("/proc/self/environ")
    problem = "is a symbolic link (forgebot reads only plain files of the repository)"
    with pytest.raises(TemplateError) as raised:
        find_template(str(repo), "leak", Settings())
    assert str(raised.value) == f".github/forge/templates/leak.md: {problem}"
    with pytest.raises(TemplateError, match=r"^\.github/forge/templates/leak\.md: is a symbolic link"):
        load_templates(str(repo), Settings())
    (repo / ".github/forge/templates/leak.md").unlink()
    (repo / ".github/forge/templates/leak.md").symlink_to(repo / "nowhere")  # dangling: refused, not "unknown"
    with pytest.raises(TemplateError, match=r"leak\.md: is a symbolic link"):
        find_template(str(repo), "leak", Settings())
    assert find_template(str(repo), "fix-bug", Settings()) == fix()  # the plain file beside it still works


def test_a_templates_folder_leading_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "outside", "fix-bug.md", FIX)
    repo = tmp_path / "repo"
    (repo / ".github/forge").mkdir(parents=True)
    (repo / ".github/forge/templates").symlink_to(tmp_path / "outside/.github/forge/templates")
    with pytest.raises(TemplateError, match=r"^\.github/forge/templates/fix-bug\.md: leads out of the repository"):
        find_template(str(repo), "fix-bug", Settings())
    with pytest.raises(TemplateError, match="leads out of the repository"):
        load_templates(str(repo), Settings())


# -- loading: a repository on GitHub ---------------------------------------------------------------------

REPO = "acme/widgets"


async def test_fetch_from_github(tmp_path: Path) -> None:
    settings = settings_with_config(tmp_path)
    async with FakeGitHub() as gh:
        gh.add_repo(REPO)
        gh.add_repo("acme/empty")
        gh.set_file(REPO, ".github/forge/templates/fix-bug.md", FIX)
        gh.set_file(REPO, ".github/forge/templates/Upper.md", "no command can name me")
        gh.set_file(REPO, ".github/forge/templates/other.md", "only on a branch", ref="feature")
        client = PyGithubClient(api_url=gh.url, token=gh.token, write_interval=0, backoff=0.01)
        try:
            assert await fetch_template(client, REPO, "main", "fix-bug", settings) == fix()
            assert (await fetch_template(client, REPO, "main", "review", settings)).source == "config templates.review"
            assert await fetch_names(client, REPO, "main", settings) == ["fix-bug", "review"]
            with pytest.raises(UnknownTemplate) as unknown:
                await fetch_template(client, REPO, "main", "other", settings)
            assert str(unknown.value) == "unknown template `other` (available: fix-bug, review)"
            with pytest.raises(
                UnknownTemplate, match=r"none is defined: add `\.github/forge/templates/x\.md` on `main`"
            ):
                await fetch_template(client, "acme/empty", "main", "x", Settings())
        finally:
            await client.close()
        # One read for a template that exists: the folder is not listed.
        reads = [r["path"] for r in gh.requests if "/contents/" in r["path"]]
        assert reads[0].startswith("/repos/acme/widgets/contents/.github/forge/templates/fix-bug.md")

"""Named prompt templates with parameters. Pure: no IO, no clock (PyYAML only decodes the front matter text).

A template file `.github/forge/templates/NAME.md` is markdown with an optional YAML front matter:

    ---
    description: Fix a bug in one file          # shown by `template list` and in replies
    title: "Fix {{ file }}"                     # the task's title (default: the prompt's first line)
    agents: [claude, gemini]                    # default agents (default: the configured ones)
    params:
      file: {description: the file to fix}      # no default: required
      line: {default: "1"}                      # optional
    ---
    Fix the bug in `{{ file }}` near line {{ line }}.

`name`, when given, must equal the file name (the name is how a command finds the file without listing the
folder). The config's `templates:` section holds the same keys, with `prompt:` for the body.

Rendering is one pass of plain substitution, never evaluation: `{{ name }}` (spaces optional) is replaced by the
value; values are inserted verbatim and never expanded again. A placeholder must name a declared parameter, so a
typo is caught when the template is loaded. `\\{{` writes a literal `{{`. Any other `{{ ... }}` (not a name, such
as `{{ .Values.x }}`) is left as it is. The body is `sanitize.clean`ed when parsed, so HTML comments are notes
for the template's authors and never reach the agent, and nothing invisible can be hidden in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import yaml

from forgebot.core.sanitize import clean, clean_title

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # the /forge grammar lowercases the name it reads
PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_PLACEHOLDER_RE = re.compile(r"\\\{\{|\{\{[ \t]*([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\}\}")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*(?:\n|\Z)(.*)\Z", re.S | re.M)
FILE_KEYS = ("name", "description", "title", "agents", "params")
CONFIG_KEYS = ("prompt", "description", "title", "agents", "params")
_PARAM_KEYS = ("default", "description")


class TemplateError(ValueError):
    """A template that cannot be read or used. The message names where: "<source> <key>: <problem>"."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        where = " ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {problem}" if where else problem)
        self.source, self.key, self.problem = source, key, problem


class UnknownTemplate(TemplateError):
    def __init__(self, name: str, available: Iterable[str], hint: str = "") -> None:
        names = sorted(available)
        shown = f"available: {', '.join(names)}" if names else f"none is defined{hint}"
        super().__init__("", "", f"unknown template `{name}` ({shown})")
        self.name, self.available = name, names


@dataclass(frozen=True)
class Param:
    name: str
    default: str | None = None  # None: required
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def usage(self) -> str:
        return f"{self.name}=<{self.name}>" if self.required else f"[{self.name}={self.default}]"


@dataclass(frozen=True)
class Rendered:
    """What a template with its values turns into: a task's title, its description (the prompt) and agents."""

    title: str
    description: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    name: str
    body: str
    description: str = ""
    title: str = ""
    agents: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    source: str = ""  # where it was defined, for messages

    @property
    def usage(self) -> str:
        return " ".join([self.name, *(param.usage for param in self.params)])

    def render(self, values: Mapping[str, str]) -> Rendered:
        """The template with `values` (defaults fill the rest). TemplateError lists every unknown and missing
        parameter at once; a required parameter given as empty text counts as missing."""
        declared = {param.name for param in self.params}
        unknown = sorted(set(values) - declared)
        missing = [p.name for p in self.params if p.required and not values.get(p.name, "").strip()]
        problems = []
        if missing:
            problems.append(f"missing {_names(missing)}")
        if unknown:
            problems.append(f"unknown {_names(unknown)}")
        if problems:
            raise TemplateError(f"template `{self.name}`", "", f"{'; '.join(problems)} (usage: {self.usage})")
        full = {p.name: values.get(p.name, p.default or "") for p in self.params}
        body = substitute(self.body, full)
        title = clean_title(substitute(self.title, full)) if self.title else first_line(body)
        return Rendered(title=title or self.name, description=body, agents=self.agents)


def _names(names: Sequence[str]) -> str:
    return ("parameter " if len(names) == 1 else "parameters ") + ", ".join(names)


def placeholders(text: str) -> list[str]:
    """The parameter names `text` refers to, in order of first use."""
    found = (match[1] for match in _PLACEHOLDER_RE.finditer(text) if match[1])
    return list(dict.fromkeys(found))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """One pass: `{{ name }}` → its value, `\\{{` → `{{`; every name must be in `values`."""

    def replace(match: re.Match[str]) -> str:
        return "{{" if match[1] is None else values[match[1]]

    return _PLACEHOLDER_RE.sub(replace, text)


def first_line(text: str) -> str:
    """A title from the prompt: its first non-blank line, without markdown heading marks."""
    for line in text.split("\n"):
        if line.strip():
            return clean_title(line.strip().lstrip("#"))
    return ""


def with_issue(prompt: str, number: int, issue_text: str) -> str:
    """A rendered template's prompt for a task on an issue: the template's instructions first, then the issue's
    own (cleaned) text as the context they apply to."""
    return f"{prompt}\n\n## Issue #{number}\n\n{issue_text}" if issue_text.strip() else prompt


def parse_assignments(tokens: Iterable[str], source: str = "") -> dict[str, str]:
    """`key=value` words (as given on a command line) → a mapping; TemplateError on a malformed or repeated key."""
    values: dict[str, str] = {}
    for token in tokens:
        key, equals, value = token.partition("=")
        if not equals or not PARAM_RE.fullmatch(key):
            raise TemplateError(source, "", f"`{token}` is not key=value")
        if key in values:
            raise TemplateError(source, "", f"`{key}` given twice")
        values[key] = value
    return values


# -- reading and checking -----------------------------------------------------------------------------------


def parse(text: str, source: str, name: str) -> Template:
    """A template file: optional front matter between `---` lines, then the prompt. `name` is the file name
    without `.md`; `source` names the file in errors."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = _FRONT_MATTER_RE.match(text)
    header: object = {}
    body = text
    if match is not None:
        header, body = _yaml(match[1], source) or {}, match[2]
    elif text.startswith("---"):
        raise TemplateError(source, "", "the front matter opened with '---' is never closed by a '---' line")
    if not isinstance(header, dict):
        raise TemplateError(source, "", "the front matter must be a mapping of settings (description, params, ...)")
    _only(header, FILE_KEYS, source, "", "a template setting")
    if "name" in header and header["name"] != name:
        raise TemplateError(source, "name", f"{header['name']!r} differs from the file name {name!r}")
    fields = {key: value for key, value in header.items() if key != "name"}
    return build_template(name, {**fields, "prompt": body}, source, prompt_key="body")


def build_template(name: str, data: Mapping[str, object], source: str, *, prompt_key: str = "prompt") -> Template:
    """A template from plain data with the CONFIG_KEYS (YAML front matter, or a config entry): every problem
    is a TemplateError naming `source` and the key."""
    if not NAME_RE.fullmatch(name):
        problem = f"{name!r} is not a valid template name (lowercase letters, digits, '.', '_', '-')"
        raise TemplateError(source, "", problem)
    _only(data, CONFIG_KEYS, source, "", "a template setting")
    description = _text(data.get("description"), source, "description")
    title = _text(data.get("title"), source, "title")
    prompt = clean(_text(data.get("prompt"), source, prompt_key))
    if not prompt:
        raise TemplateError(source, prompt_key, "the prompt is empty")
    params = _params(data.get("params"), source)
    agents = _agents(data.get("agents"), source)
    declared = {param.name for param in params}
    for key, text in ((prompt_key, prompt), ("title", title)):
        undeclared = [used for used in placeholders(text) if used not in declared]
        if undeclared:
            known = ", ".join(sorted(declared)) or "none"
            raise TemplateError(
                source,
                key,
                f"{{{{ {undeclared[0]} }}}} is not a declared parameter (declared: {known}; "
                "write \\{{ for a literal {{)",
            )
    return Template(name, prompt, description.strip(), title.strip(), agents, params, source)


def _yaml(text: str, source: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 2 if exc.problem_mark else "?"  # +1 for 1-based, +1 for the '---' line
        raise TemplateError(source, "", f"front matter line {line}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(source, "", f"front matter: {exc}") from None


def _only(data: Iterable[object], allowed: Sequence[str], source: str, prefix: str, what: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise TemplateError(source, prefix + unknown[0], f"not {what} (use {', '.join(allowed)})")


def _text(value: object, source: str, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TemplateError(source, key, f"must be text, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _agents(value: object, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TemplateError(source, "agents", "must be a list of agent names, like [claude, gemini]")
    bad = [item for item in value if not NAME_RE.fullmatch(item)]
    if bad:
        raise TemplateError(source, "agents", f"{bad[0]!r} is not a valid agent name")
    return tuple(dict.fromkeys(value))


def _params(value: object, source: str) -> tuple[Param, ...]:
    """`params:` as a mapping (name → nothing for required, or {default, description}) or a list of names."""
    if value is None:
        return ()
    if isinstance(value, list):
        value = dict.fromkeys(value)
    if not isinstance(value, dict):
        raise TemplateError(source, "params", "must be a mapping of parameter names (or a list of them)")
    params = []
    for name, spec in value.items():
        key = f"params.{name}"
        if not isinstance(name, str) or not PARAM_RE.fullmatch(name):
            problem = "not a valid parameter name (letters, digits, '_' and '-', not starting with a digit)"
            raise TemplateError(source, key, problem)
        if spec is None:
            params.append(Param(name))
            continue
        if not isinstance(spec, dict):
            raise TemplateError(
                source, key, f"must be a mapping with `default` and/or `description` (or empty), not {_kind(spec)}"
            )
        _only(spec, _PARAM_KEYS, source, key + ".", "a parameter setting")
        default = spec.get("default")
        if isinstance(default, bool) or not isinstance(default, str | int | float | None):
            raise TemplateError(source, key + ".default", f"must be text or a number, not {_kind(default)}")
        description = _text(spec.get("description"), source, key + ".description").strip()
        params.append(Param(name, None if default is None else str(default), description))
    return tuple(params)

"""Where templates come from: the config's `templates:` section and a repository's `.github/forge/templates/*.md`
(read from a work tree in local mode, from the default branch through GitHub for the bot).

A repository's file wins over a config entry of the same name: the repository knows its own code, the config's
templates are the organization's general ones. A template only writes a prompt (the repository's maintainers can
write any prompt in an issue anyway) and names agents, which must exist in the merged settings like any other,
so the server's policy needs no switch for them.

For a front-end (CLI, bot, REST API):
    load_templates(repo_dir, settings) / find_template(repo_dir, name, settings)            local work tree
    await fetch_template(github, repo, ref, name, settings) / fetch_names(...)              a repository on GitHub
    template.render({"file": "a.py"}) -> Rendered(title, description, agents)                core/templates.py
Every problem is a TemplateError (UnknownTemplate lists the names that exist). A work tree's template is read only
as a plain file inside it: a symbolic link (say to /proc/self/environ) is refused by name.
"""

from __future__ import annotations

from pathlib import Path

from forgebot.config import Settings, outside_repo
from forgebot.core.templates import NAME_RE, Template, TemplateError, UnknownTemplate, parse
from forgebot.github.port import GitHubPort

TEMPLATES_DIR = ".github/forge/templates"


def config_templates(settings: Settings) -> dict[str, Template]:
    return {name: config.to_template(name, f"config templates.{name}") for name, config in settings.templates.items()}


def _file(name: str) -> str:
    return f"{TEMPLATES_DIR}/{name}.md"


def _hint(name: str, where: str) -> str:
    return f": add `{_file(name)}`{where} or a `templates:` entry to the config"


# -- a local work tree ---------------------------------------------------------------------------------------


def _read(repo_dir: str, relative: str) -> str:
    path = Path(repo_dir) / relative
    problem = outside_repo(repo_dir, path)
    if problem:
        raise TemplateError(relative, "", problem)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(relative, "", exc.strerror or str(exc)) from None
    except UnicodeDecodeError as exc:
        raise TemplateError(relative, "", f"not UTF-8 text ({exc.reason})") from None


def _local_files(repo_dir: str) -> list[str]:
    folder = Path(repo_dir) / TEMPLATES_DIR
    # A symbolic link is listed so that reading it is refused by name rather than skipped in silence.
    found = (path.stem for path in folder.glob("*.md") if path.is_file() or path.is_symlink())
    return sorted(found) if folder.is_dir() else []


def load_templates(repo_dir: str, settings: Settings) -> dict[str, Template]:
    """Every template for a work tree, sorted by name: the config's, then the repository's files on top.
    A broken file raises TemplateError naming it."""
    found = config_templates(settings)
    for name in _local_files(repo_dir):
        found[name] = parse(_read(repo_dir, _file(name)), _file(name), name)
    return dict(sorted(found.items()))


def find_template(repo_dir: str, name: str, settings: Settings) -> Template:
    """One template by name, reading only its own file (another broken file does not get in the way)."""
    path = Path(repo_dir) / _file(name)
    if NAME_RE.fullmatch(name) and (path.is_file() or path.is_symlink()):
        return parse(_read(repo_dir, _file(name)), _file(name), name)
    if name in settings.templates:
        return config_templates(settings)[name]
    raise UnknownTemplate(name, {*settings.templates, *_local_files(repo_dir)}, _hint(name, ""))


# -- a repository on GitHub ------------------------------------------------------------------------------


async def fetch_names(github: GitHubPort, repo: str, ref: str, settings: Settings) -> list[str]:
    """The names of the templates a repository has at `ref`, and the config's, without reading any file.
    A file whose name no command could ask for (say `Fix.md`: commands lowercase names) is left out."""
    files = await github.list_dir(repo, TEMPLATES_DIR, ref) or []
    stems = (file.removesuffix(".md") for file in files if file.endswith(".md"))
    return sorted({*settings.templates, *(stem for stem in stems if NAME_RE.fullmatch(stem))})


async def fetch_template(github: GitHubPort, repo: str, ref: str, name: str, settings: Settings) -> Template:
    """One template by name: the repository's file at `ref` (one read), else the config's."""
    if NAME_RE.fullmatch(name):  # a name never becomes anything but a file name inside the folder
        text = await github.read_file(repo, _file(name), ref)
        if text is not None:
            return parse(text, _file(name), name)
    if name in settings.templates:
        return config_templates(settings)[name]
    raise UnknownTemplate(name, await fetch_names(github, repo, ref, settings), _hint(name, f" on `{ref}`"))


"""Configuration: a user/server YAML file, the repository's `.github/forge.yml`, then FORGEBOT_* variables.

Every problem is reported as "<source> <dotted.key>: <what is wrong>" so a typo points at its line of YAML.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from forgebot.agents.builtin import BUILTIN_PROFILES
from forgebot.core.models import AgentProfile, CheckSpec, Price, Strategy
from forgebot.core.templates import Template, TemplateError, build_template

REPO_CONFIG_PATH = ".github/forge.yml"
PLACEHOLDERS = ("prompt", "prompt_file", "workdir", "model")


class ConfigError(Exception):
    """One or more configuration problems; `problems` holds one line each."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_DURATION_PART = r"(\d+(?:\.\d+)?)"
_DURATION_RE = re.compile(rf"(?:{_DURATION_PART}h)?(?:{_DURATION_PART}m)?(?:{_DURATION_PART}s)?")
_PLAIN_NUMBER_RE = re.compile(_DURATION_PART)


def parse_duration(value: str | int | float) -> float:
    """Seconds from 30, "1.5", "90s", "45m", "2h" or "1h30m"; ValueError unless finite and > 0."""
    seconds = _duration_seconds(value)
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration (use 90s, 45m, 1h30m or seconds)")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return seconds


def _duration_seconds(value: object) -> float | None:
    # bool is an int subclass, but `timeout: true` is a mistake, not one second.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if _PLAIN_NUMBER_RE.fullmatch(text):
        return float(text)
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        return None
    hours, minutes, secs = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def _validate_duration(value: object) -> float:
    try:
        return parse_duration(value)  # type: ignore[arg-type]  # any YAML value may arrive here
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


Duration = Annotated[float, BeforeValidator(_validate_duration)]

_AGENT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")


def _check_agent_names(agents: dict[str, AgentConfig]) -> dict[str, AgentConfig]:
    # Names end up in branch names and on the command line, so keep them plain.
    bad = [name for name in agents if not _AGENT_NAME_RE.fullmatch(name)]
    if bad:
        raise PydanticCustomError(
            "agent_name", f"{bad[0]!r} is not a valid agent name (use letters, digits, '.', '_' and '-')"
        )
    return agents


def _check_unique_names(checks: list[CheckConfig]) -> list[CheckConfig]:
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise PydanticCustomError("duplicate_check", f"duplicate check name {check.name!r}")
        seen.add(check.name)
    return checks


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriceConfig(_Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class AgentConfig(_Strict):
    # Omitted: the agent builds on `agent` (or on the built-in profile of the same name) and overrides what it sets.
    executor: str | None = Field(default=None, min_length=1)
    agent: str | None = None
    base_url: str | None = None
    command: list[str] = Field(default_factory=list, validate_default=True)
    model: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    persona: str = ""
    price: PriceConfig | None = None
    tier: int = Field(default=1, ge=1)
    # The persona file that defined this agent (.github/forge/agents/NAME.md), named in its errors; None: the config.
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        return self._source

    def where(self, name: str, key: str, file: str = "") -> str:
        """Where a problem with this agent's `key` is: its persona file and key, else its path in the config
        (after `file`, the config file it came from, when given)."""
        if self._source:
            return f"{self._source} {key}"
        return f"{file} agents.{name}.{key}" if file else f"agents.{name}.{key}"

    @field_validator("command")
    @classmethod
    def _command_fits_executor(cls, command: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("executor") == "command" and not command:
            raise PydanticCustomError("missing_command", "required when executor is 'command'")
        unknown = sorted({name for part in command for name in _PLACEHOLDER_RE.findall(part)} - {*PLACEHOLDERS})
        if unknown:
            known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            raise PydanticCustomError("placeholder", f"unknown placeholder {{{unknown[0]}}} (use {known})")
        return command


class Defaults(_Strict):
    agents: list[str] = Field(default_factory=list)
    strategy: Strategy = Strategy.PARALLEL
    quality_threshold: float = Field(default=0.8, ge=0, le=1)
    base: str | None = None


class CheckConfig(_Strict):
    name: str = Field(min_length=1)
    run: list[str] = Field(min_length=1)
    timeout: Duration = 600.0


class Limits(_Strict):
    max_parallel: int = Field(default=4, ge=1)
    per_repo: int = Field(default=4, ge=1)
    per_agent: int = Field(default=2, ge=1)
    attempt_timeout: Duration = 45 * 60.0
    log_cap_bytes: int = Field(default=5_000_000, ge=1)
    # An agent printing more than this is stuck in a loop: it is stopped and its attempt fails.
    max_output_bytes: int = Field(default=100_000_000, ge=1)


class Policy(_Strict):
    """What the user/server file allows a repository's .github/forge.yml to do."""

    repo_may_add_command_agents: bool = True
    repo_may_set_checks: bool = True
    # `env` of a repository's agents can pull ${VARIABLES} out of forgebot's environment: a daemon turns this off.
    repo_may_set_agent_env: bool = True
    # `base_url` and `args` of a repository's agents can send a built-in agent (and the API key forgebot gives it)
    # to any server: a daemon turns this off.
    repo_may_redirect_agents: bool = True


def _number_as_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("default", "must be text or a number, not true/false")
    return str(value) if isinstance(value, int | float) else value


class TemplateParamConfig(_Strict):
    default: Annotated[str | None, BeforeValidator(_number_as_text)] = None  # None: the parameter is required
    description: str = ""


class TemplateConfig(_Strict):
    """A prompt template (`templates: {NAME: ...}`): a template file's front matter keys, and `prompt` for its
    body (forgebot/core/templates.py describes them and the `{{ param }}` placeholders)."""

    prompt: str
    description: str = ""
    title: str = ""
    agents: list[str] = Field(default_factory=list)
    params: dict[str, TemplateParamConfig | None] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _list_of_names(cls, value: Any) -> Any:
        return dict.fromkeys(value) if isinstance(value, list) else value  # `params: [file, line]`: all required

    def to_template(self, name: str, source: str) -> Template:
        return build_template(name, self.model_dump(), source)


def _check_templates(configs: dict[str, TemplateConfig]) -> dict[str, TemplateConfig]:
    # The placeholders, names and agents are checked by the same code as a template file's.
    for name, config in configs.items():
        try:
            config.to_template(name, "")
        except TemplateError as error:
            where = f"{name}.{error.key}" if error.key else name
            raise PydanticCustomError("template", f"{where}: {error.problem}") from None
    return configs


class Schedule(_Strict):
    """The daemon's (and the background runner's) scheduled jobs; see forgebot/scheduler.py."""

    enabled: bool = True
    cleanup_interval: Duration = 3600.0
    worktree_ttl: Duration = 24 * 3600.0  # finished tasks keep their worktrees this long
    reaper_interval: Duration = 60.0
    reaper_slack: Duration = 60.0  # past attempt_timeout by this much, or its process gone this long: reaped
    deliveries_interval: Duration = 600.0
    deliveries_lookback: Duration = 24 * 3600.0  # GitHub keeps deliveries for three days
    misfire_grace: Duration = 300.0
    dry_run: bool = False  # jobs log what they would do and change nothing


Agents = Annotated[dict[str, AgentConfig], AfterValidator(_check_agent_names)]
Checks = Annotated[list[CheckConfig], AfterValidator(_check_unique_names)]
Templates = Annotated[dict[str, TemplateConfig], AfterValidator(_check_templates)]


class _Document(_Strict):
    """A whole config file."""

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_sections(cls, data: Any) -> Any:
        # `agents:` with every entry commented out parses as None; treat it as an empty section.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class Settings(_Document):
    agents: Agents = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    checks: Checks = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    policy: Policy = Field(default_factory=Policy)
    templates: Templates = Field(default_factory=dict)  # a repository's .github/forge/templates/*.md win
    data_dir: str | None = None
    store_url: str | None = None
    # Folders put in front of PATH for agents (where scripts/install-agents.sh put the CLIs).
    agents_path: list[str] = Field(default_factory=list)
    schedule: Schedule = Field(default_factory=Schedule)
    # Sections owned by the GitHub daemon; validated by forgebot/github/settings.py.
    github: dict[str, Any] = Field(default_factory=dict)
    server: dict[str, Any] = Field(default_factory=dict)
    repos: dict[str, Any] = Field(default_factory=dict)
    bot: dict[str, Any] = Field(default_factory=dict)
    # The REST API and dashboard's section; validated by forgebot/api/settings.py.
    api: dict[str, Any] = Field(default_factory=dict)

    @field_validator("agents_path", mode="before")
    @classmethod
    def _split_path(cls, value: Any) -> Any:
        return [part for part in value.split(os.pathsep) if part] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_agents_exist(self) -> Settings:
        unknown = [name for name in self.defaults.agents if name not in self.agents and name not in BUILTIN_PROFILES]
        if unknown:
            known = ", ".join(sorted({*self.agents, *BUILTIN_PROFILES}))
            raise PydanticCustomError(
                "unknown_agent", f"defaults.agents: unknown agent {unknown[0]!r} (configured: {known})"
            )
        return self


class RepoConfig(_Document):
    """A repository's .github/forge.yml: the subset of Settings a repository may set."""

    agents: Agents = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    checks: Checks = Field(default_factory=list)
    auto_pr: bool | None = None  # open the winner's pull request without waiting for `/forge pick`
    _source: str = PrivateAttr(default=REPO_CONFIG_PATH)

    @property
    def source(self) -> str:
        return self._source


def _problems(exc: ValidationError, source: str, sources: Mapping[tuple[str, ...], str] | None = None) -> list[str]:
    """One line per pydantic error; `sources` relabels errors under a key path (the variable that set it)."""
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        label = next((name for path, name in (sources or {}).items() if loc[: len(path)] == path), source)
        # Model-level errors have no location; their message starts with the key it concerns.
        lines.append(f"{label} {'.'.join(loc)}: {error['msg']}" if loc else f"{label} {error['msg']}")
    return lines


_Model = TypeVar("_Model", bound=BaseModel)


def _validate(model: type[_Model], data: Any, source: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(*_problems(exc, source)) from None


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(f"{source} line {line}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings, not {type(data).__name__}")
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text ({exc.reason})") from None


_ENV_PREFIX = "FORGEBOT_"
_ENV_TOP_LEVEL = {
    "FORGEBOT_DATA_DIR": "data_dir",
    "FORGEBOT_STORE_URL": "store_url",
    "FORGEBOT_AGENTS_PATH": "agents_path",
}
_ENV_SECTIONS: dict[str, type[BaseModel]] = {
    "defaults": Defaults,
    "limits": Limits,
    "policy": Policy,
    "schedule": Schedule,
}
# Read by other parts of forgebot (CLI, GitHub bot), not by this module.
_ENV_IGNORED = {"FORGEBOT_CONFIG", "FORGEBOT_WEBHOOK_SECRET"}
_ENV_IGNORED_PREFIXES = ("FORGEBOT_GITHUB_", "FORGEBOT_LOG_", "FORGEBOT_SERVER_", "FORGEBOT_REPOS_", "FORGEBOT_BOT_",
                          "FORGEBOT_API_")


def _env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, ...], tuple[str, str | list[str]]]:
    """Key path -> (variable name, raw value) for every FORGEBOT_* variable that sets a config key."""
    overrides: dict[tuple[str, ...], tuple[str, str | list[str]]] = {}
    unknown = []
    for name in sorted(environ):
        if not name.startswith(_ENV_PREFIX) or name in _ENV_IGNORED or name.startswith(_ENV_IGNORED_PREFIXES):
            continue
        if name in _ENV_TOP_LEVEL:
            overrides[(_ENV_TOP_LEVEL[name],)] = (name, environ[name])
        elif "__" in name:
            path = tuple(name.removeprefix(_ENV_PREFIX).lower().split("__"))
            model = _ENV_SECTIONS.get(path[0])
            field = model.model_fields.get(path[1]) if model and len(path) == 2 else None
            if field is None:
                unknown.append(name)
                continue
            raw = environ[name]
            value = [item.strip() for item in raw.split(",") if item.strip()] if _is_list(field.annotation) else raw
            overrides[path] = (name, value)
    if unknown:
        sections = "|".join(name.upper() for name in _ENV_SECTIONS)
        hint = f"settable: FORGEBOT_DATA_DIR, FORGEBOT_STORE_URL, FORGEBOT_<{sections}>__<KEY>"
        raise ConfigError(*(f"environment {name}: not a known setting ({hint})" for name in unknown))
    return overrides


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list


def _apply_env(settings: Settings, environ: Mapping[str, str]) -> Settings:
    overrides = _env_overrides(environ)
    if not overrides:
        return settings
    data = settings.model_dump(exclude_unset=True)
    for path, (_, value) in overrides.items():
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    try:
        applied = Settings.model_validate(data)
    except ValidationError as exc:
        labels = {path: f"environment {name}" for path, (name, _) in overrides.items()}
        raise ConfigError(*_problems(exc, "environment", labels)) from None
    for name, agent in applied.agents.items():
        if name in settings.agents:
            agent._source = settings.agents[name].source  # persona files stay named in errors
    return applied


def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The user/server file (`path`, else $FORGEBOT_CONFIG, else nothing) with FORGEBOT_* overrides on top."""
    env = os.environ if environ is None else environ
    path = path or env.get("FORGEBOT_CONFIG") or None
    if path is None:
        settings = Settings()
    else:
        source = Path(path)
        settings = _validate(Settings, _parse_yaml(_read_text(source), str(source)), str(source))
    return _apply_env(settings, env)


def load_repo_config(text: str, source: str = REPO_CONFIG_PATH) -> RepoConfig:
    repo = _validate(RepoConfig, _parse_yaml(text, source), source)
    repo._source = source
    return repo


def merge(settings: Settings, repo: RepoConfig) -> Settings:
    """Apply a repository's config to the user/server settings, within what `settings.policy` allows."""
    policy = settings.policy
    known = {**settings.agents, **repo.agents}
    executors = {name: _executor(name, known) for name in repo.agents}
    problems = [
        f"{agent.where(name, 'executor' if agent.executor else 'agent', repo.source)}: command agents are not "
        "allowed by the server config (policy.repo_may_add_command_agents is false)"
        for name, agent in repo.agents.items()
        if executors[name] == "command" and not policy.repo_may_add_command_agents
    ]
    problems += [
        f"{agent.where(name, 'env', repo.source)}: setting agent environment is not allowed by the server config"
        " (policy.repo_may_set_agent_env is false)"
        for name, agent in repo.agents.items()
        if agent.env and not policy.repo_may_set_agent_env
    ]
    # A command agent's whole command line is the repository's already (the policy above decides about it).
    problems += [
        f"{agent.where(name, key, repo.source)}: pointing an agent elsewhere is not allowed by the server config"
        " (policy.repo_may_redirect_agents is false)"
        for name, agent in repo.agents.items()
        for key in ("base_url", "args")
        if key in agent.model_fields_set and executors[name] != "command" and not policy.repo_may_redirect_agents
    ]
    repo_sets_checks = "checks" in repo.model_fields_set
    if repo_sets_checks and not settings.policy.repo_may_set_checks:
        problems.append(
            f"{repo.source} checks: setting checks is not allowed by the server config"
            " (policy.repo_may_set_checks is false)"
        )
    if problems:
        raise ConfigError(*problems)
    defaults = {name: getattr(repo.defaults, name) for name in repo.defaults.model_fields_set}
    merged = {
        **dict(settings),
        "agents": {**settings.agents, **repo.agents},
        "defaults": settings.defaults.model_copy(update=defaults),
        "checks": repo.checks if repo_sets_checks else settings.checks,
        "bot": settings.bot if repo.auto_pr is None else {**settings.bot, "auto_pr": repo.auto_pr},
    }
    return _validate(Settings, merged, repo.source)


PERSONAS_DIR = ".github/forge/agents"
_PERSONA_KEYS = {"agent", "model", "tier", "args", "price"}


def parse_persona(name: str, text: str, source: str) -> AgentConfig:
    """A persona file: a small YAML header (`agent`, optional `model`, `tier`, `args`, `price`) between `---`
    lines, then markdown appended to the prompt. The file name (without .md) names the new profile."""
    match = re.match(r"\A---[ \t]*\n(.*?)^---[ \t]*\n?(.*)\Z", text, re.S | re.M)
    if match is None:
        raise ConfigError(f"{source}: a persona file starts with a YAML header between '---' lines (agent: NAME)")
    header = _parse_yaml(match.group(1), source)
    unknown = sorted(set(header) - _PERSONA_KEYS)
    if unknown:
        raise ConfigError(f"{source} {unknown[0]}: not a persona setting (use {', '.join(sorted(_PERSONA_KEYS))})")
    if "agent" not in header:
        raise ConfigError(f"{source} agent: required (the profile this persona runs, e.g. claude)")
    persona = _validate(AgentConfig, {**header, "persona": match.group(2).strip()}, source)
    persona._source = source
    return persona


def outside_repo(repo_dir: str, path: Path) -> str | None:
    """Why a repository's file must not be read, else None: it is a symbolic link, or its path leads out of the
    work tree. A committed `x.md -> /proc/self/environ` would otherwise put forgebot's environment in a prompt."""
    if path.is_symlink():
        return "is a symbolic link (forgebot reads only plain files of the repository)"
    if not path.resolve().is_relative_to(Path(repo_dir).resolve()):
        return "leads out of the repository (through a symbolic link)"
    return None


def read_repo_file(repo_dir: str, path: Path) -> str:
    """A file of the work tree `repo_dir` as text; ConfigError naming it unless it is a plain file inside."""
    problem = outside_repo(repo_dir, path)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return _read_text(path)


def _repo_personas(repo_dir: str) -> dict[str, AgentConfig]:
    folder = Path(repo_dir) / PERSONAS_DIR
    if not folder.is_dir():
        return {}
    return {
        path.stem: parse_persona(path.stem, read_repo_file(repo_dir, path), str(path))
        for path in sorted(folder.glob("*.md"))
    }


def load_for_repo(repo_dir: str, path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Local mode: user settings, then <repo_dir>/.github/forge.yml from the work tree; env stays on top."""
    env = os.environ if environ is None else environ
    settings = load_settings(path, env)
    repo_file = Path(repo_dir) / REPO_CONFIG_PATH
    personas = _repo_personas(repo_dir)
    present = repo_file.exists() or repo_file.is_symlink()  # a dangling link is refused, not skipped
    if not present and not personas:
        return settings
    text = read_repo_file(repo_dir, repo_file) if present else ""
    repo = load_repo_config(text, str(repo_file))
    repo.agents.update(personas)
    return _apply_env(merge(settings, repo), env)


def _executor(name: str, agents: Mapping[str, AgentConfig], depth: int = 0) -> str | None:
    """The executor an agent ends up with, following `agent:` references (None when it cannot be told)."""
    config = agents.get(name)
    if config is None or depth > len(agents):
        builtin = BUILTIN_PROFILES.get(name)
        return builtin.executor if builtin else None
    if config.executor:
        return config.executor
    base = config.agent or name
    if base == name and name not in BUILTIN_PROFILES:
        return None
    return _executor(base, {k: v for k, v in agents.items() if k != name}, depth + 1)


def to_profiles(settings: Settings) -> dict[str, AgentProfile]:
    """Built-in profiles, overridden and extended by the configured agents (each only overrides what it sets)."""
    profiles = dict(BUILTIN_PROFILES)
    unresolved = dict(settings.agents)
    while unresolved:
        # An agent is ready once the profile it builds on is (a built-in, or a configured one already done).
        ready = {
            name: agent
            for name, agent in unresolved.items()
            if agent.executor or (agent.agent or name) == name or (agent.agent or name) not in unresolved
        }
        if not ready:
            first = sorted(unresolved)[0]
            raise ConfigError(f"{unresolved[first].where(first, 'agent')}: agents build on each other in a circle")
        for name, agent in ready.items():
            profiles[name] = _profile(name, agent, profiles)
            del unresolved[name]
    return profiles


def _profile(name: str, agent: AgentConfig, known: Mapping[str, AgentProfile]) -> AgentProfile:
    base = known.get(agent.agent or name) if not agent.executor else None
    if base is None and not agent.executor:
        builtins = ", ".join(sorted(BUILTIN_PROFILES))
        if agent.source:  # a persona file: its `agent` names the profile it runs, and there is none by that name
            raise ConfigError(
                f"{agent.where(name, 'agent')}: {agent.agent!r} is not an agent (built-in: {builtins}; or one "
                "defined in the config)"
            )
        what = (
            f"agent {agent.agent!r} is not defined" if agent.agent else f"{name!r} is not a built-in agent ({builtins})"
        )
        raise ConfigError(f"{agent.where(name, 'executor')}: required: {what}")
    fields: dict[str, Any] = {}
    for key in agent.model_fields_set - {"agent"}:
        value = getattr(agent, key)
        if key in ("command", "args"):
            value = tuple(value)
        elif key == "price":
            value = Price(value.input_per_mtok, value.output_per_mtok) if value else None
        elif key == "env":
            value = dict(value)
        fields[key] = value
    if base is None:
        return AgentProfile(name=name, **fields)
    return replace(base, name=name, **fields)


def to_checks(settings: Settings) -> tuple[CheckSpec, ...]:
    return tuple(CheckSpec(name=check.name, run=tuple(check.run), timeout=check.timeout) for check in settings.checks)


_REFERENCE_RE = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def resolve_env(template: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Substitute ${NAME} references from forgebot's environment; "$${NAME}" stays a literal "${NAME}"."""
    problems: list[str] = []

    def substitute(key: str, match: re.Match[str]) -> str:
        # Records problems instead of raising so one error lists every missing variable.
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if not _ENV_NAME_RE.fullmatch(name):
            problems.append(f"env {key}: {match.group(0)} is not a valid variable reference")
        elif name not in environ:
            problems.append(f"env {key}: ${{{name}}} is not set in forgebot's environment")
        else:
            return environ[name]
        return match.group(0)

    resolved = {key: _REFERENCE_RE.sub(partial(substitute, key), value) for key, value in template.items()}
    if problems:
        raise ConfigError(*problems)
    return resolved

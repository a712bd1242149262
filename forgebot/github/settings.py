"""The daemon's settings: the `github`, `server`, `repos` and `bot` sections of the server file, each key also
settable from the environment. Validated with errors that name the key, like the rest of the config."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgebot.config import ConfigError, Settings
from forgebot.core.pacing import DEFAULT_MAX_EDITS

DEFAULT_API_URL = "https://api.github.com"
BODY_LIMIT = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
WRITE_PERMISSIONS = ("admin", "maintain", "write")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GitHubSettings(_Strict):
    api_url: str = DEFAULT_API_URL
    token: str | None = Field(default=None, repr=False)
    app_id: int | None = None
    private_key_file: str | None = None
    webhook_secrets: list[str] = Field(default_factory=list, repr=False)
    write_interval: float = Field(default=1.0, ge=0)  # seconds between writes per installation

    @field_validator("api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> GitHubSettings:
        if self.app_id is not None and not self.private_key_file:
            raise ValueError("github.private_key_file: required with github.app_id")
        if self.private_key_file and self.app_id is None:
            raise ValueError("github.app_id: required with github.private_key_file")
        return self


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    shutdown_grace: float = Field(default=30.0, ge=0)


class RepoSettings(_Strict):
    allow: list[str] = Field(default_factory=list)  # owner/name globs

    def allows(self, full_name: str) -> bool:
        name = full_name.lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in self.allow)


class BotBehaviour(_Strict):
    trigger_label: str = "forge"
    auto_pr: bool = False
    draft_pr: bool = True
    # What a user without write access gets for a command: a polite reply, or nothing at all.
    reply_to_unauthorized: bool = True
    permission_cache_seconds: float = Field(default=60.0, ge=0)
    # Who may `/forge merge`: the repository permissions allowed (a subset of write, maintain and admin; for
    # example ["maintain", "admin"] to keep merging to maintainers while writers may run and pick).
    merge_permissions: list[str] = Field(default_factory=lambda: list(WRITE_PERMISSIONS), min_length=1)
    # `/forge merge` of a pull request whose head has no checks at all: refused (they may not have started yet)
    # unless this is set, for repositories without CI.
    merge_without_checks: bool = False
    # Bot accounts (login ending in [bot], or type Bot) never trigger work unless named here.
    allowed_bots: list[str] = Field(default_factory=list)
    progress_interval: float = Field(default=5.0, ge=0)  # at most one progress edit this often per task
    # Progress edits per task: the gap between them doubles every few edits, and after this many only the final
    # edit is made (label → three attempts → PR stays within 25 GitHub writes).
    max_progress_edits: int = Field(default=DEFAULT_MAX_EDITS, ge=0)
    log_tail_lines: int = Field(default=20, ge=0)

    @field_validator("merge_permissions")
    @classmethod
    def _write_or_above(cls, value: list[str]) -> list[str]:
        wrong = [level for level in value if level not in WRITE_PERMISSIONS]
        if wrong:
            raise ValueError(
                f"must be among {', '.join(WRITE_PERMISSIONS)} (forgebot merges with its own access), got {wrong[0]!r}"
            )
        return value


class BotSettings(_Strict):
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    repos: RepoSettings = Field(default_factory=RepoSettings)
    bot: BotBehaviour = Field(default_factory=BotBehaviour)

    def require_runnable(self) -> None:
        """What `serve` refuses to start without."""
        problems = []
        if not self.github.webhook_secrets:
            problems.append("github.webhook_secrets (or FORGEBOT_WEBHOOK_SECRET): required, webhooks must be signed")
        if not self.github.token and self.github.app_id is None:
            problems.append("github.token (or FORGEBOT_GITHUB_TOKEN) or github.app_id + github.private_key_file")
        if not self.repos.allow:
            problems.append("repos.allow: required, a list of owner/name globs forgebot may act on")
        if self.github.private_key_file and not Path(self.github.private_key_file).is_file():
            problems.append(f"github.private_key_file: no such file {self.github.private_key_file}")
        if problems:
            raise ConfigError(*problems)


_SECTIONS: dict[str, type[BaseModel]] = {
    "github": GitHubSettings,
    "server": ServerSettings,
    "repos": RepoSettings,
    "bot": BotBehaviour,
}
_ENV_PREFIXES = tuple(f"FORGEBOT_{section.upper()}_" for section in _SECTIONS)
_ENV_ALIASES = {"FORGEBOT_WEBHOOK_SECRET": ("github", "webhook_secrets")}  # the documented short name


def environment_names() -> dict[str, tuple[str, str]]:
    """Every daemon setting's variable: FORGEBOT_<SECTION>_<KEY> -> (section, key), e.g. FORGEBOT_BOT_AUTO_PR.
    Lists are comma-separated; FORGEBOT_WEBHOOK_SECRET is also accepted for github.webhook_secrets."""
    names = {
        f"FORGEBOT_{section.upper()}_{key.upper()}": (section, key)
        for section, model in _SECTIONS.items()
        for key in model.model_fields
        if key in _FLAT_FIELDS[section]
    }
    return {**names, **_ENV_ALIASES}


def _is_flat(annotation: Any) -> bool:
    """A value an environment variable can hold: a scalar, or a list of strings (comma-separated)."""
    return get_origin(annotation) is not dict


_FLAT_FIELDS = {
    section: {key for key, field in model.model_fields.items() if _is_flat(field.annotation)}
    for section, model in _SECTIONS.items()
}


def _environment(environ: Mapping[str, str]) -> tuple[dict[tuple[str, str], tuple[str, str]], list[str]]:
    """(section, key) -> (variable, raw value) for the variables set, and the unknown FORGEBOT_<SECTION>_ ones."""
    names = environment_names()
    found: dict[tuple[str, str], tuple[str, str]] = {}
    unknown = []
    for name in sorted(environ):
        raw = environ[name]
        if name in names:
            if raw != "":
                found[names[name]] = (name, raw)
        elif name.startswith(_ENV_PREFIXES):
            unknown.append(name)
    return found, unknown


def bot_settings(settings: Settings, environ: Mapping[str, str]) -> BotSettings:
    data: dict[str, dict[str, Any]] = {
        "github": dict(settings.github),
        "server": dict(settings.server),
        "repos": dict(settings.repos),
        "bot": dict(settings.bot),
    }
    sources: dict[tuple[str, str], str] = {}
    found, unknown = _environment(environ)
    if unknown:
        hint = "settable: FORGEBOT_<GITHUB|SERVER|REPOS|BOT>_<KEY>, e.g. FORGEBOT_BOT_AUTO_PR (see the README)"
        raise ConfigError(*(f"environment {name}: not a known setting ({hint})" for name in unknown))
    for (section, key), (name, raw) in found.items():
        annotation = _SECTIONS[section].model_fields[key].annotation
        is_list = get_origin(annotation) is list
        data[section][key] = [part.strip() for part in raw.split(",") if part.strip()] if is_list else raw
        sources[(section, key)] = f"environment {name}"
    try:
        return BotSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = [str(part) for part in error["loc"]]
            dotted = ".".join(path) or "settings"
            where = sources.get((path[0], path[1]), dotted) if len(path) >= 2 else dotted
            # Never echo a value back: it may be a token or a secret.
            problems.append(f"{where}: {error['msg']}")
        raise ConfigError(*problems) from None

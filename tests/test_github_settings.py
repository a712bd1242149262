"""The daemon's settings: file sections, environment on top, and what `serve` refuses to start without."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forgebot.config import ConfigError, Settings, load_repo_config, merge
from forgebot.github.settings import BotSettings, bot_settings


def test_defaults_and_environment() -> None:
    settings = Settings.model_validate({"github": {"token": "file-token"}, "repos": {"allow": ["acme/*"]}})
    bot = bot_settings(
        settings,
        {
            "FORGEBOT_GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "FORGEBOT_WEBHOOK_SECRET": "old, new",
            "FORGEBOT_SERVER_PORT": "9000",
        },
    )
    assert bot.github.api_url == "https://ghe.example.com/api/v3"
    assert bot.github.token == "file-token"
    assert bot.github.webhook_secrets == ["old", "new"]
    assert (bot.server.host, bot.server.port) == ("127.0.0.1", 9000)
    assert bot.bot.trigger_label == "forge" and bot.bot.auto_pr is False
    bot.require_runnable()


@pytest.mark.parametrize(
    ("data", "environ", "message"),
    [
        ({}, {}, "github.webhook_secrets (or FORGEBOT_WEBHOOK_SECRET): required"),
        ({"github": {"webhook_secrets": ["s"]}, "repos": {"allow": ["a/b"]}}, {}, "github.token"),
        ({"github": {"token": "t", "webhook_secrets": ["s"]}}, {}, "repos.allow: required"),
    ],
)
def test_serve_refuses_to_start_without(data: dict[str, object], environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        bot_settings(Settings.model_validate(data), environ).require_runnable()


def test_errors_name_the_key_or_variable_and_never_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        bot_settings(Settings(), {"FORGEBOT_SERVER_PORT": "not-a-port-s3cret"})
    assert "environment FORGEBOT_SERVER_PORT" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"github\.private_key_file: required with github\.app_id"):
        bot_settings(Settings.model_validate({"github": {"app_id": 3}}), {})
    with pytest.raises(ConfigError, match=r"bot\.trigger_labl"):
        bot_settings(Settings.model_validate({"bot": {"trigger_labl": "x"}}), {})


def test_missing_private_key_file(tmp_path: Path) -> None:
    data = {
        "github": {"app_id": 1, "private_key_file": str(tmp_path / "nope.pem"), "webhook_secrets": ["s"]},
        "repos": {"allow": ["a/b"]},
    }
    with pytest.raises(ConfigError, match="no such file"):
        bot_settings(Settings.model_validate(data), {}).require_runnable()


@pytest.mark.parametrize(
    ("pattern", "name", "allowed"),
    [
        ("acme/*", "acme/widgets", True),
        ("acme/*", "ACME/Widgets", True),
        ("acme/*", "evil/widgets", False),
        ("acme/w?dgets", "acme/wodgets", True),
        ("acme/widgets", "acme/widgets-fork", False),
    ],
)
def test_repo_allowlist_globs(pattern: str, name: str, allowed: bool) -> None:
    bot = bot_settings(Settings.model_validate({"repos": {"allow": [pattern]}}), {})
    assert bot.repos.allows(name) is allowed


def test_repository_may_turn_on_auto_pr() -> None:
    merged = merge(Settings(), load_repo_config("auto_pr: true\n"))
    assert bot_settings(merged, {}).bot.auto_pr is True
    assert bot_settings(merge(Settings(), load_repo_config("defaults: {agents: []}\n")), {}).bot.auto_pr is False


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        (["triage"], "must be among admin, maintain, write"),
        (["maintain", "read"], "got 'read'"),
        ([], "at least 1 item"),
    ],
)
def test_merge_permissions_stay_at_write_or_above(levels: list[str], problem: str) -> None:
    default = bot_settings(Settings.model_validate({}), {})
    assert default.bot.merge_permissions == ["admin", "maintain", "write"]
    with pytest.raises(ConfigError, match=r"bot\.merge_permissions") as caught:
        bot_settings(Settings.model_validate({"bot": {"merge_permissions": levels}}), {})
    assert problem in str(caught.value)


# Every daemon setting from the environment: one value per key (the table must cover every key).
ENVIRONMENT = {
    "FORGEBOT_GITHUB_API_URL": ("https://ghe.example.com/api/v3", ("github", "api_url")),
    "FORGEBOT_GITHUB_TOKEN": ("env-token", ("github", "token")),
    "FORGEBOT_GITHUB_APP_ID": ("12", ("github", "app_id")),
    "FORGEBOT_GITHUB_PRIVATE_KEY_FILE": ("/etc/forgebot/app.pem", ("github", "private_key_file")),
    "FORGEBOT_GITHUB_WEBHOOK_SECRETS": ("a,b", ("github", "webhook_secrets")),
    "FORGEBOT_GITHUB_WRITE_INTERVAL": ("2.5", ("github", "write_interval")),
    "FORGEBOT_SERVER_HOST": ("0.0.0.0", ("server", "host")),
    "FORGEBOT_SERVER_PORT": ("9001", ("server", "port")),
    "FORGEBOT_SERVER_SHUTDOWN_GRACE": ("12", ("server", "shutdown_grace")),
    "FORGEBOT_REPOS_ALLOW": ("acme/*, octo/demo", ("repos", "allow")),
    "FORGEBOT_BOT_TRIGGER_LABEL": ("agents", ("bot", "trigger_label")),
    "FORGEBOT_BOT_AUTO_PR": ("true", ("bot", "auto_pr")),
    "FORGEBOT_BOT_DRAFT_PR": ("false", ("bot", "draft_pr")),
    "FORGEBOT_BOT_REPLY_TO_UNAUTHORIZED": ("false", ("bot", "reply_to_unauthorized")),
    "FORGEBOT_BOT_PERMISSION_CACHE_SECONDS": ("30", ("bot", "permission_cache_seconds")),
    "FORGEBOT_BOT_ALLOWED_BOTS": ("renovate[bot]", ("bot", "allowed_bots")),
    "FORGEBOT_BOT_MERGE_PERMISSIONS": ("maintain,admin", ("bot", "merge_permissions")),
    "FORGEBOT_BOT_MERGE_WITHOUT_CHECKS": ("true", ("bot", "merge_without_checks")),
    "FORGEBOT_BOT_PROGRESS_INTERVAL": ("7", ("bot", "progress_interval")),
    "FORGEBOT_BOT_MAX_PROGRESS_EDITS": ("9", ("bot", "max_progress_edits")),
    "FORGEBOT_BOT_LOG_TAIL_LINES": ("5", ("bot", "log_tail_lines")),
}
EXPECTED = {
    "FORGEBOT_GITHUB_APP_ID": 12,
    "FORGEBOT_GITHUB_WEBHOOK_SECRETS": ["a", "b"],
    "FORGEBOT_GITHUB_WRITE_INTERVAL": 2.5,
    "FORGEBOT_SERVER_PORT": 9001,
    "FORGEBOT_SERVER_SHUTDOWN_GRACE": 12.0,
    "FORGEBOT_REPOS_ALLOW": ["acme/*", "octo/demo"],
    "FORGEBOT_BOT_AUTO_PR": True,
    "FORGEBOT_BOT_DRAFT_PR": False,
    "FORGEBOT_BOT_REPLY_TO_UNAUTHORIZED": False,
    "FORGEBOT_BOT_PERMISSION_CACHE_SECONDS": 30.0,
    "FORGEBOT_BOT_ALLOWED_BOTS": ["renovate[bot]"],
    "FORGEBOT_BOT_MERGE_PERMISSIONS": ["maintain", "admin"],
    "FORGEBOT_BOT_MERGE_WITHOUT_CHECKS": True,
    "FORGEBOT_BOT_PROGRESS_INTERVAL": 7.0,
    "FORGEBOT_BOT_MAX_PROGRESS_EDITS": 9,
    "FORGEBOT_BOT_LOG_TAIL_LINES": 5,
}


def test_every_daemon_setting_is_settable_from_the_environment() -> None:
    every_key = {
        (section, key)
        for section, model in BotSettings.model_fields.items()
        for key in model.annotation.model_fields  # type: ignore[union-attr]
    }
    assert {target for _, target in ENVIRONMENT.values()} == every_key
    bot = bot_settings(Settings(), {name: value for name, (value, _) in ENVIRONMENT.items()})
    for name, (raw, (section, key)) in ENVIRONMENT.items():
        assert getattr(getattr(bot, section), key) == EXPECTED.get(name, raw), name


def test_an_unknown_daemon_variable_is_reported_not_ignored() -> None:
    with pytest.raises(ConfigError) as caught:
        bot_settings(Settings(), {"FORGEBOT_BOT_TRIGER_LABEL": "x", "FORGEBOT_SERVER_PROT": "1", "FORGEBOT_X": "y"})
    hint = "settable: FORGEBOT_<GITHUB|SERVER|REPOS|BOT>_<KEY>, e.g. FORGEBOT_BOT_AUTO_PR (see the README)"
    assert caught.value.problems == (
        f"environment FORGEBOT_BOT_TRIGER_LABEL: not a known setting ({hint})",
        f"environment FORGEBOT_SERVER_PROT: not a known setting ({hint})",
    )

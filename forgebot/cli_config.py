"""`forgebot config check`: validate the server's config file (and FORGEBOT_* environment) before deploying.

Errors are what `serve` would refuse to start with or could not work with; warnings are settings that work but
are unsafe or surprising. Each finding is one line; no secret value is ever printed. Exit 0 without errors
(`--strict`: without warnings either), 1 otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from forgebot.config import ConfigError, Settings, load_settings
from forgebot.daemon import data_dir
from forgebot.github.settings import BotSettings, bot_settings

MIN_SECRET_LENGTH = 20  # GitHub asks for "a random string with high entropy"


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


def check_config(path: str | None, environ: Mapping[str, str]) -> list[Finding]:
    try:
        settings = load_settings(path, environ)
        behaviour = bot_settings(settings, environ)
    except ConfigError as error:
        return [Finding("error", problem) for problem in error.problems]
    findings = _runnable(behaviour) + _private_key(behaviour) + _data_dir(settings)
    return findings + _policy(settings) + _exposure(settings, behaviour) + _defaults(settings)


def _runnable(behaviour: BotSettings) -> list[Finding]:
    try:
        behaviour.require_runnable()
    except ConfigError as error:
        # The key file is looked at more closely below.
        return [Finding("error", p) for p in error.problems if not p.startswith("github.private_key_file")]
    return []


def _private_key(behaviour: BotSettings) -> list[Finding]:
    name = behaviour.github.private_key_file
    if not name:
        return []
    key = Path(name)
    if not key.is_file():
        return [Finding("error", f"github.private_key_file: no such file {name}")]
    try:
        head = key.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError as error:
        return [Finding("error", f"github.private_key_file: cannot read {name} ({error.strerror or error})")]
    if "PRIVATE KEY-----" not in head:
        return [
            Finding("error", f"github.private_key_file: {name} is not a PEM private key (download it from the App)")
        ]
    if key.stat().st_mode & 0o007:
        return [Finding("warning", f"github.private_key_file: {name} is readable by every user (chmod o-rwx it)")]
    return []


def _data_dir(settings: Settings) -> list[Finding]:
    folder = Path(data_dir(settings))
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return [Finding("error", f"data_dir: {folder} cannot be created ({existing} is not a directory)")]
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == folder else f"cannot be created ({existing} is not writable)"
        return [Finding("error", f"data_dir: {folder} {what}")]
    return []


_POLICY_WARNINGS = {
    "repo_may_add_command_agents": "anyone who can push .github/forge.yml to an allowed repository can run any "
    "program on this server (set it to false)",
    "repo_may_set_checks": "repositories choose the commands run as checks on this server (set it to false to run "
    "only the server's checks)",
    "repo_may_set_agent_env": "repositories' agents can read ${VARIABLES} of the daemon's environment, where its "
    "GitHub credentials live",
    "repo_may_redirect_agents": "repositories can set an agent's base_url or args and send it, with the API key "
    "forgebot gives it, to any server",
}


def _policy(settings: Settings) -> list[Finding]:
    # Unset, each is false in the daemon (forgebot/daemon.py DAEMON_LOCKED_POLICY): only a `true` written is unsafe.
    policy = settings.policy
    return [
        Finding("warning", f"policy.{key} is true: {why}")
        for key, why in _POLICY_WARNINGS.items()
        if key in policy.model_fields_set and getattr(policy, key)
    ]


def _exposure(settings: Settings, behaviour: BotSettings) -> list[Finding]:
    github, findings = behaviour.github, []
    for key, variable in (("token", "FORGEBOT_GITHUB_TOKEN"), ("webhook_secrets", "FORGEBOT_WEBHOOK_SECRET")):
        if settings.github.get(key):
            findings.append(Finding("warning", f"github.{key} is written in the config file: pass it as {variable}"))
    if any(len(secret) < MIN_SECRET_LENGTH for secret in github.webhook_secrets):
        findings.append(
            Finding("warning", f"github.webhook_secrets: a secret is shorter than {MIN_SECRET_LENGTH} characters")
        )
    url = urllib.parse.urlsplit(github.api_url)
    if url.scheme != "https" and not _loopback(url.hostname or ""):
        findings.append(Finding("warning", f"github.api_url: {github.api_url} is not https: credentials go in clear"))
    if _loopback(behaviour.server.host):
        return findings
    findings.append(
        Finding(
            "warning",
            f"server.host {behaviour.server.host} is reachable from other machines: put a TLS proxy in front "
            "(GitHub should deliver to https) and keep /metrics to your network",
        )
    )
    return findings


def _defaults(settings: Settings) -> list[Finding]:
    if settings.defaults.agents:
        return []
    return [
        Finding("warning", "defaults.agents is empty: a plain `forge` label runs nothing (name agents: `forge:claude`)")
    ]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_check(args: argparse.Namespace, out: TextIO | None = None, environ: Mapping[str, str] | None = None) -> int:
    out = out or sys.stdout
    environ = os.environ if environ is None else environ
    path = args.config or environ.get("FORGEBOT_CONFIG")
    findings = check_config(path, environ)
    for finding in findings:
        print(finding, file=out)
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    source = path or "no config file (defaults and environment)"
    verdict = "has problems" if errors else "is usable"
    print(f"{source} {verdict}: {errors} error(s), {warnings} warning(s)", file=out)
    return 1 if errors or (args.strict and warnings) else 0


def add_parser(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = groups.add_parser("config", help="server configuration").add_subparsers(dest="cmd", required=True)
    check = config.add_parser("check", help="validate the server config: what is missing or unsafe")
    check.add_argument("--config", default=argparse.SUPPRESS, help="server config file (YAML)")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.set_defaults(standalone=run_check)

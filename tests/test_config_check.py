"""`forgebot config check`, run as a real process on real files: one line per problem, errors apart from
warnings, exit 0 without errors, never a secret in the output."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forgebot.cli import build_parser
from forgebot.cli_config import check_config, run_check

SECRET = "a-long-random-webhook-secret-0123456789"
TOKEN = "ghp_" + "x" * 36
GOOD = """\
defaults: {agents: [claude]}
repos: {allow: ["acme/*"]}
policy: {repo_may_add_command_agents: false, repo_may_set_checks: false}
"""
FAKE_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----\n"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FORGEBOT_")}
    return base | {"FORGEBOT_DATA_DIR": str(tmp_path / "data"), "FORGEBOT_WEBHOOK_SECRET": SECRET} | extra


def run(tmp_path: Path, config: str, *flags: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """As a real process, the way an operator runs it."""
    path = tmp_path / "forgebot.yml"
    path.write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "forgebot.cli", "config", "check", *flags, "--config", str(path)],
        env=env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check(tmp_path: Path, config: str, *flags: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The same command in this process (a process start costs a second and a half)."""
    path = tmp_path / "forgebot.yml"
    path.write_text(config)
    args = build_parser().parse_args(["config", "check", *flags, "--config", str(path)])
    out = io.StringIO()
    code = run_check(args, out, env(tmp_path, **extra))
    return subprocess.CompletedProcess(args=[], returncode=code, stdout=out.getvalue(), stderr="")


def lines(result: subprocess.CompletedProcess[str], level: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{level}: ")]


def test_a_good_config_passes_without_findings(tmp_path: Path) -> None:
    result = run(tmp_path, GOOD, FORGEBOT_GITHUB_TOKEN=TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("is usable: 0 error(s), 0 warning(s)")
    assert TOKEN not in result.stdout and SECRET not in result.stdout


def test_every_missing_essential_is_its_own_error_line(tmp_path: Path) -> None:
    result = run(tmp_path, "defaults: {agents: [claude]}\n", FORGEBOT_WEBHOOK_SECRET="")
    errors = lines(result, "error")
    assert result.returncode == 1
    assert len(errors) == 3
    assert any("webhook_secrets" in e and "required" in e for e in errors)
    assert any("github.token" in e for e in errors)
    assert any("repos.allow" in e for e in errors)
    assert "has problems: 3 error(s)" in result.stdout


def test_unsafe_policies_are_warnings_and_strict_makes_them_fail(tmp_path: Path) -> None:
    config = GOOD.replace("false, repo_may_set_checks: false", "true, repo_may_set_checks: true, "
                          "repo_may_set_agent_env: true, repo_may_redirect_agents: true")  # fmt: skip
    result = check(tmp_path, config, FORGEBOT_GITHUB_TOKEN=TOKEN)
    warnings = lines(result, "warning")
    assert result.returncode == 0 and not lines(result, "error")
    assert [w.split(" ")[1] for w in warnings] == [
        "policy.repo_may_add_command_agents",
        "policy.repo_may_set_checks",
        "policy.repo_may_set_agent_env",
        "policy.repo_may_redirect_agents",
    ]
    assert "run any program on this server" in warnings[0]
    assert "with the API key forgebot gives it, to any server" in warnings[3]
    strict = check(tmp_path, config, "--strict", FORGEBOT_GITHUB_TOKEN=TOKEN)
    assert strict.returncode == 1


def test_an_unset_policy_is_not_a_warning_because_the_daemon_locks_it(tmp_path: Path) -> None:
    config = GOOD.replace("policy: {repo_may_add_command_agents: false, repo_may_set_checks: false}\n", "")
    assert "policy" not in config
    result = check(tmp_path, config, FORGEBOT_GITHUB_TOKEN=TOKEN)
    assert result.returncode == 0 and not lines(result, "warning"), result.stdout
    by_variable = check(tmp_path, config, FORGEBOT_GITHUB_TOKEN=TOKEN, FORGEBOT_POLICY__REPO_MAY_SET_CHECKS="true")
    assert [w.split(" ")[1] for w in lines(by_variable, "warning")] == ["policy.repo_may_set_checks"]


def test_secrets_written_in_the_file_and_weak_ones_are_flagged_without_echoing_them(tmp_path: Path) -> None:
    config = GOOD + f'github: {{token: "{TOKEN}", webhook_secrets: ["short"]}}\n'
    result = check(tmp_path, config, FORGEBOT_WEBHOOK_SECRET="")
    warnings = "\n".join(lines(result, "warning"))
    assert result.returncode == 0
    assert "github.token is written in the config file: pass it as FORGEBOT_GITHUB_TOKEN" in warnings
    assert "github.webhook_secrets is written in the config file" in warnings
    assert "shorter than 20 characters" in warnings
    assert TOKEN not in result.stdout and "short\n" not in result.stdout and '"short"' not in result.stdout


def test_listening_on_every_interface_and_plain_http_api_are_warnings(tmp_path: Path) -> None:
    config = GOOD + "server: {host: 0.0.0.0}\n"
    result = check(tmp_path, config, FORGEBOT_GITHUB_TOKEN=TOKEN, FORGEBOT_GITHUB_API_URL="http://ghe.example/api/v3")
    warnings = lines(result, "warning")
    assert result.returncode == 0
    assert any(w.startswith("warning: server.host 0.0.0.0 is reachable from other machines") for w in warnings)
    assert any("http://ghe.example/api/v3 is not https" in w for w in warnings)
    local = check(tmp_path, GOOD, FORGEBOT_GITHUB_TOKEN=TOKEN, FORGEBOT_GITHUB_API_URL="http://127.0.0.1:9000")
    assert not lines(local, "warning")


def key_env(key: Path) -> dict[str, str]:
    return {"FORGEBOT_GITHUB_APP_ID": "12345", "FORGEBOT_GITHUB_PRIVATE_KEY_FILE": str(key)}


def test_private_key_problems_are_errors(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    missing = check(tmp_path, GOOD, **key_env(key))
    assert missing.returncode == 1
    assert lines(missing, "error") == [f"error: github.private_key_file: no such file {key}"]

    key.write_text("not a key")
    key.chmod(0o600)
    assert lines(check(tmp_path, GOOD, **key_env(key)), "error") == [
        f"error: github.private_key_file: {key} is not a PEM private key (download it from the App)"
    ]

    key.write_text(FAKE_PEM)
    key.chmod(0o644)
    shared = check(tmp_path, GOOD, **key_env(key))
    assert shared.returncode == 0 and lines(shared, "warning") == [
        f"warning: github.private_key_file: {key} is readable by every user (chmod o-rwx it)"
    ]
    key.chmod(0o640)  # root:forgebot 640, as the systemd unit's notes install it
    fine = check(tmp_path, GOOD, **key_env(key))
    assert (fine.returncode, lines(fine, "warning"), lines(fine, "error")) == (0, [], [])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_private_key_is_an_error(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text(FAKE_PEM)
    key.chmod(0o000)
    unreadable = check(tmp_path, GOOD, **key_env(key))
    assert unreadable.returncode == 1
    assert lines(unreadable, "error") == [f"error: github.private_key_file: cannot read {key} (Permission denied)"]


def test_app_id_without_a_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    result = check(tmp_path, GOOD, FORGEBOT_GITHUB_APP_ID="12345")
    assert result.returncode == 1
    assert lines(result, "error") == [
        "error: github: Value error, github.private_key_file: required with github.app_id"
    ]


def test_a_data_dir_under_a_file_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = check(tmp_path, GOOD, FORGEBOT_GITHUB_TOKEN=TOKEN, FORGEBOT_DATA_DIR=str(blocker / "data"))
    assert result.returncode == 1
    assert lines(result, "error") == [
        f"error: data_dir: {blocker / 'data'} cannot be created ({blocker} is not a directory)"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere")
def test_a_data_dir_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = check(tmp_path, GOOD, FORGEBOT_GITHUB_TOKEN=TOKEN, FORGEBOT_DATA_DIR=str(locked / "data"))
        assert result.returncode == 1
        assert lines(result, "error") == [
            f"error: data_dir: {locked / 'data'} cannot be created ({locked} is not writable)"
        ]
    finally:
        locked.chmod(0o700)


def test_a_broken_file_reports_its_problems_and_nothing_else(tmp_path: Path) -> None:
    result = check(tmp_path, "limits: {max_parallel: 0}\nrepos: [oops\n")
    assert result.returncode == 1
    [error] = lines(result, "error")
    assert "forgebot.yml" in error


def test_empty_default_agents_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "forgebot.yml"
    path.write_text(GOOD.replace("[claude]", "[]"))
    findings = check_config(str(path), env(tmp_path, FORGEBOT_GITHUB_TOKEN=TOKEN))
    assert [str(f) for f in findings] == [
        "warning: defaults.agents is empty: a plain `forge` label runs nothing (name agents: `forge:claude`)"
    ]

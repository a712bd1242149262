"""deploy/: the manifests parse and agree with each other and with the code (ports, probes, volumes, secrets,
users, the events and permissions forgebot needs), and what can run here runs: the image's entrypoint, its
health check against a real daemon, `forgebot config check` on the shipped config, `systemd-analyze verify`."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from forgebot.config import Settings
from forgebot.daemon import build
from forgebot.github.client import PyGithubClient
from forgebot.github.handlers import register
from forgebot.github.port import GitHubPort
from forgebot.github.routing import Router
from forgebot.github.settings import bot_settings
from tests.bot_harness import BotHarness

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
DATA = "/data"
PORT = 8080
FORGEBOT = str(Path(sys.executable).with_name("forgebot"))
SHUTDOWN_GRACE = 30  # server.shutdown_grace in deploy/forgebot.example.yml; every stop timeout must be longer


SECRET_TEMPLATE = "secret.example.yaml"


def kube(kind: str) -> dict[str, Any]:
    documents = [d for path in sorted(KUBE.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    [found] = [d for d in documents if d.get("kind") == kind]
    return found


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", text.strip())
    assert match, text
    return int(match[1]) * (60 if match[2] == "m" else 1)


def secret_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What an operator provides through the env file or the Secret."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FORGEBOT_")}
    return (
        base
        | {
            "FORGEBOT_DATA_DIR": str(tmp_path / "data"),
            "FORGEBOT_GITHUB_TOKEN": "ghp_" + "t" * 36,
            "FORGEBOT_WEBHOOK_SECRET": "0123456789abcdef0123456789abcdef",
        }
        | extra
    )


# ---- the example config and `forgebot config check`


def test_the_example_config_passes_config_check_with_secrets_from_the_environment(tmp_path: Path) -> None:
    config = DEPLOY / "forgebot.example.yml"
    result = subprocess.run(
        [FORGEBOT, "config", "check", "--config", str(config)],
        env=secret_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout
    assert yaml.safe_load(config.read_text())["server"]["shutdown_grace"] == SHUTDOWN_GRACE


def test_without_secrets_the_example_config_fails_the_check(tmp_path: Path) -> None:
    env = secret_env(tmp_path, FORGEBOT_GITHUB_TOKEN="", FORGEBOT_WEBHOOK_SECRET="")
    result = subprocess.run(
        [FORGEBOT, "config", "check", "--config", str(DEPLOY / "forgebot.example.yml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "2 error(s)" in result.stdout


def test_the_kubernetes_config_map_holds_the_example_config() -> None:
    shipped = kube("ConfigMap")["data"]["forgebot.yml"]
    assert yaml.safe_load(shipped) == yaml.safe_load((DEPLOY / "forgebot.example.yml").read_text())


# ---- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def test_dockerfile_runs_as_a_non_root_user_with_a_data_volume_and_port() -> None:
    froms = instruction("FROM")
    assert froms[-1].startswith("python:3.11-slim")
    assert any(f.startswith("node:20") for f in froms)  # Node.js 20 for the agent CLIs
    [user] = instruction("USER")
    assert user == "forgebot"
    assert any("useradd" in run and "--uid 10001" in run for run in instruction("RUN"))
    assert instruction("EXPOSE") == [str(PORT)]
    assert json.loads(instruction("VOLUME")[0]) == [DATA]
    env = " ".join(instruction("ENV"))
    assert f"FORGEBOT_DATA_DIR={DATA}" in env
    assert any("apt-get install" in run and " git " in run for run in instruction("RUN"))
    [install] = [run for run in instruction("RUN") if "pip install" in run]
    assert "-c constraints.txt ." in install
    # Everything is installed (as root) before the image switches to its user for good.
    words = [word for word, _ in dockerfile()]
    assert words.index("USER") > max(i for i, word in enumerate(words) if word == "RUN")


def test_dockerfile_entrypoint_and_healthcheck() -> None:
    entrypoint = json.loads(instruction("ENTRYPOINT")[0])
    assert entrypoint[-4:] == ["forgebot", "serve", "--host", "0.0.0.0"]
    [health] = instruction("HEALTHCHECK")
    assert f"http://127.0.0.1:{PORT}/healthz" in health


def test_the_entrypoint_command_runs_here(tmp_path: Path) -> None:
    entrypoint = json.loads(instruction("ENTRYPOINT")[0])
    command = entrypoint[entrypoint.index("forgebot") :]
    result = subprocess.run(
        [FORGEBOT, *command[1:], "--help"], env=secret_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout and "--port" in result.stdout


async def test_the_healthcheck_command_passes_against_a_running_daemon_and_fails_without_one(tmp_path: Path) -> None:
    [health] = instruction("HEALTHCHECK")
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    assert argv[0] == "python"

    async def probe(port: int) -> int:
        code = argv[-1].replace(f":{PORT}/", f":{port}/")
        process = await asyncio.create_subprocess_exec(sys.executable, *argv[1:-1], code)
        return await process.wait()

    async with BotHarness.start(tmp_path) as h:
        port = int(h.url.split(":")[2].split("/")[0])
        assert await probe(port) == 0
    assert await probe(port) != 0


def test_constraints_pin_every_dependency_the_image_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} has no exact pin in constraints.txt"


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for args in instruction("COPY"):
        if args.startswith("--from"):
            continue
        *sources, _ = shlex.split(args)
        for source in sources:
            assert source.rstrip("/") in kept, f"COPY {source} is excluded by Dockerfile.dockerignore"
            assert (ROOT / source).exists()


# ---- compose


def test_compose_service_port_volume_healthcheck_and_secrets() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["forgebot"]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert f"{PORT}:{PORT}" in service["ports"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts[DATA] in compose["volumes"]
    assert mounts["/etc/forgebot/forgebot.yml"] == "./forgebot.yml"
    assert service["environment"]["FORGEBOT_DATA_DIR"] == DATA
    assert service["env_file"] == ["forgebot.env"]
    assert (DEPLOY / "forgebot.env.example").is_file()
    assert f"http://127.0.0.1:{PORT}/healthz" in " ".join(service["healthcheck"]["test"])
    assert set(service["secrets"]) <= set(compose["secrets"])
    env_example = (DEPLOY / "forgebot.env.example").read_text()
    assert "FORGEBOT_GITHUB_PRIVATE_KEY_FILE=/run/secrets/github_app_key" in env_example
    assert "github_app_key" in service["secrets"]
    assert seconds(service["stop_grace_period"]) > SHUTDOWN_GRACE


def test_the_key_file_is_chowned_to_the_images_user_because_compose_mounts_it_as_is() -> None:
    match = re.search(r"useradd [^\n]*--uid (\d+)", (DEPLOY / "Dockerfile").read_text())
    assert match, "the Dockerfile creates its user with a fixed uid"
    chown = f"chown {match[1]}:{match[1]}"
    # A compose `secrets: {file: ...}` is a bind mount keeping the host's owner and mode: chmod 600 alone leaves
    # the key unreadable to the container's user.
    assert f"{chown} github-app.pem && chmod 600" in (DEPLOY / "compose.yaml").read_text()
    assert f"{chown} deploy/github-app.pem && chmod 600" in (ROOT / "README.md").read_text()


# ---- Kubernetes


def test_kubernetes_deployment_is_one_replica_recreated_with_probes_and_the_data_volume() -> None:
    deployment = kube("Deployment")
    spec = deployment["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (1, "Recreate")
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_GRACE
    [container] = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    [port] = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", PORT)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["data"] == DATA
    env = {e["name"]: e for e in container["env"]}
    assert env["FORGEBOT_DATA_DIR"]["value"] == DATA
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert kube("PersistentVolumeClaim")["metadata"]["name"] == claim
    assert volumes["config"]["configMap"]["name"] == kube("ConfigMap")["metadata"]["name"]
    config_path = env["FORGEBOT_CONFIG"]["value"]
    assert Path(config_path).parent == Path(mounts["config"]) and Path(config_path).name in kube("ConfigMap")["data"]
    key_path = env["FORGEBOT_GITHUB_PRIVATE_KEY_FILE"]["value"]
    [item] = volumes["github-app-key"]["secret"]["items"]
    assert key_path == f"{mounts['github-app-key']}/{item['path']}"


def test_kubernetes_service_targets_the_pods_port() -> None:
    service = kube("Service")
    deployment = kube("Deployment")
    [port] = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (PORT, "http")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_every_secret_the_deployment_references_is_in_the_secret_template() -> None:
    secret = kube("Secret")
    keys = set(secret["stringData"])
    pod = kube("Deployment")["spec"]["template"]["spec"]
    referenced = [e["valueFrom"]["secretKeyRef"] for c in pod["containers"] for e in c["env"] if "valueFrom" in e]
    referenced += [
        {"name": v["secret"]["secretName"], "key": item["key"]}
        for v in pod["volumes"]
        if "secret" in v
        for item in v["secret"]["items"]
    ]
    assert referenced
    for ref in referenced:
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in keys, f"{ref['key']} is not in deploy/kubernetes/{SECRET_TEMPLATE}"
    assert {"webhook-secret", "github-app.pem", "github-app-id", "github-token"} <= keys


def test_kustomization_lists_every_manifest_but_never_the_secret_template() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml", SECRET_TEMPLATE}
    assert set(kustomization["resources"]) == files
    # `kubectl apply -k` would replace the real keys with the template's empty strings.
    applied = [d for name in kustomization["resources"] for d in yaml.safe_load_all((KUBE / name).read_text()) if d]
    assert not [d for d in applied if d.get("kind") == "Secret"]
    assert kube("Secret")["metadata"]["name"] == "forgebot" and (KUBE / SECRET_TEMPLATE).is_file()


# ---- systemd


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / "forgebot.service").read_text())
    return parser


def test_systemd_unit_runs_serve_as_a_dedicated_user_hardened() -> None:
    service = unit()["Service"]
    assert service["ExecStart"].endswith("/forgebot serve")
    assert service["ExecStartPre"].endswith("/forgebot config check")
    assert service["User"] == "forgebot" and service["User"] != "root"
    assert service["EnvironmentFile"] == "/etc/forgebot/forgebot.env"
    assert service["Restart"] == "on-failure"
    assert seconds(service["TimeoutStopSec"]) > SHUTDOWN_GRACE
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    data_dir = re.search(r"FORGEBOT_DATA_DIR=(\S+)", (DEPLOY / "forgebot.service").read_text())
    assert data_dir is not None
    assert service["ReadWritePaths"] == data_dir[1]
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    text = (DEPLOY / "forgebot.service").read_text().replace("/opt/forgebot/bin/forgebot", FORGEBOT)
    (tmp_path / "forgebot.service").write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "forgebot.service")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr and "ignoring" not in result.stderr, result.stderr


# ---- the GitHub App manifest


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "github-app-manifest.json").read_text())
    return data


def test_the_app_subscribes_to_exactly_the_events_forgebot_routes(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": str(tmp_path),
            "github": {"token": "t", "webhook_secrets": ["s"], "api_url": "http://127.0.0.1:9"},
            "repos": {"allow": ["acme/*"]},
        }
    )
    behaviour = bot_settings(settings, {})
    daemon = build(settings, behaviour, PyGithubClient(api_url="http://127.0.0.1:9", token="t"), environ={})
    try:
        router = Router()
        register(router, daemon.bot)
        routed = {event for event, _ in router.events()}
    finally:
        daemon.store.close()
    assert routed == {"issues", "issue_comment", "pull_request"}
    # Installation events reach every App without a subscription; the manifest cannot and need not list them.
    assert set(manifest()["default_events"]) == routed


# What each GitHubPort operation needs of an App installation (GitHub's REST docs, "permissions required").
NEEDS: dict[str, tuple[str, str] | None] = {
    "get_repo": ("metadata", "read"),
    "permission": ("metadata", "read"),
    "get_issue": ("issues", "read"),
    "list_comments": ("issues", "read"),
    "create_comment": ("issues", "write"),  # on forgebot's own PR too: pull_requests write covers that
    "edit_comment": ("issues", "write"),
    "react_to_comment": ("issues", "write"),
    "react_to_issue": ("issues", "write"),
    "read_file": ("contents", "read"),  # .github/forge.yml from the default branch
    "list_dir": ("contents", "read"),  # .github/forge/templates/
    "find_pull": ("pull_requests", "read"),
    "get_pull": ("pull_requests", "read"),
    "create_pull": ("pull_requests", "write"),
    "edit_pull_body": ("pull_requests", "write"),
    "request_review": ("pull_requests", "write"),
    "add_labels": ("issues", "write"),
    "merge_pull": ("contents", "write"),
    "mark_ready": ("pull_requests", "write"),  # GraphQL markPullRequestReadyForReview
    "commit_checks": ("checks", "read"),  # check runs; the commit statuses need statuses: read (below)
    "own_login": None,  # GET /app with the App's JWT (GET /user with a personal token)
    "delete_branch": ("contents", "write"),
    "git_token": ("contents", "write"),  # the installation token clones and pushes forge/ branches
    "ping": None,  # GET /app with the App's JWT
    "known_tokens": None,  # no request: the credentials it holds, for scrubbing
    "hook_deliveries": None,  # GET /app/hook/deliveries: the App's own webhook, with its JWT
    "redeliver": None,  # POST /app/hook/deliveries/{id}/attempts, with the App's JWT
}
ALSO = {"statuses": "read"}  # commit_checks reads two scopes: check runs and commit statuses
LEVEL = {"read": 1, "write": 2}


def test_the_app_permissions_cover_every_operation_and_nothing_more() -> None:
    operations = {name for name in vars(GitHubPort) if not name.startswith("_")}
    assert operations == set(NEEDS), "a GitHubPort operation was added or removed: say what it needs in NEEDS"
    granted = manifest()["default_permissions"]
    needed: dict[str, str] = dict(ALSO)
    for scope, level in filter(None, NEEDS.values()):
        if LEVEL[level] > LEVEL.get(needed.get(scope, ""), 0):
            needed[scope] = level
    assert granted == needed  # every operation covered, and no permission forgebot does not use


SHOWN = {"contents": "Contents", "issues": "Issues", "pull_requests": "Pull requests", "metadata": "Metadata",
         "checks": "Checks", "statuses": "Commit statuses"}  # fmt: skip


def test_the_readme_names_every_permission_the_manifest_asks_for() -> None:
    readme = (ROOT / "README.md").read_text()
    [sentence] = re.findall(r"The App needs ([^.]*)\.", readme)
    for scope in manifest()["default_permissions"]:
        assert SHOWN[scope] in sentence, f"README's 'The App needs' sentence omits {SHOWN[scope]}"

from __future__ import annotations

from pathlib import Path

import pytest

from forgebot.api.context import worktree_settings
from forgebot.config import (
    ConfigError,
    RepoConfig,
    Settings,
    load_for_repo,
    load_repo_config,
    load_settings,
    merge,
    parse_duration,
    resolve_env,
    to_checks,
    to_profiles,
)
from forgebot.core.models import AgentProfile, CheckSpec, Price, Strategy

EXAMPLE = """\
agents:
  quick: {executor: command, command: ["python3", "scripts/agent.py", "{prompt_file}"], tier: 1, price: {input_per_mtok: 0.5, output_per_mtok: 1.5}}
  careful: {executor: command, command: ["./slow-agent", "{prompt_file}"], args: ["--thorough"], env: {API_KEY: "${MY_API_KEY}"}, persona: "Write the tests first.", tier: 2}
defaults: {agents: [quick], strategy: parallel, quality_threshold: 0.8}
checks:
  - {name: tests, run: ["python3", "-m", "pytest", "-q"], timeout: 600}
limits: {max_parallel: 4, per_repo: 4, per_agent: 2, attempt_timeout: 45m}
"""  # noqa: E501  (the example is kept verbatim from the spec)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.fixture
def example(tmp_path: Path) -> str:
    return write(tmp_path / "forgebot.yml", EXAMPLE)


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(exc.value)


# --- the example file


def test_example_loads_into_profiles(example: str) -> None:
    profiles = to_profiles(load_settings(example, environ={}))

    assert profiles["quick"] == AgentProfile(
        name="quick",
        executor="command",
        command=("python3", "scripts/agent.py", "{prompt_file}"),
        price=Price(0.5, 1.5),
        tier=1,
    )
    assert profiles["careful"] == AgentProfile(
        name="careful",
        executor="command",
        command=("./slow-agent", "{prompt_file}"),
        args=("--thorough",),
        env={"API_KEY": "${MY_API_KEY}"},
        persona="Write the tests first.",
        tier=2,
    )


def test_example_loads_checks_limits_and_defaults(example: str) -> None:
    settings = load_settings(example, environ={})

    assert to_checks(settings) == (CheckSpec("tests", ("python3", "-m", "pytest", "-q"), 600.0),)
    assert settings.limits.attempt_timeout == 2700.0
    assert (settings.limits.max_parallel, settings.limits.per_repo, settings.limits.per_agent) == (4, 4, 2)
    assert settings.defaults.agents == ["quick"]
    assert settings.defaults.strategy is Strategy.PARALLEL
    assert settings.defaults.quality_threshold == 0.8


def test_path_comes_from_forgebot_config_variable(example: str) -> None:
    settings = load_settings(environ={"FORGEBOT_CONFIG": example})

    assert set(settings.agents) == {"quick", "careful"}


def test_no_file_gives_defaults() -> None:
    settings = load_settings(environ={})

    assert settings == Settings()
    assert settings.limits.attempt_timeout == 2700.0
    assert settings.limits.log_cap_bytes == 5_000_000
    assert settings.policy.repo_may_add_command_agents and settings.policy.repo_may_set_checks


@pytest.mark.parametrize("text", ["", "# nothing here\n", "agents:\nchecks:\n"])
def test_empty_file_and_empty_sections_are_empty_config(tmp_path: Path, text: str) -> None:
    assert load_settings(write(tmp_path / "c.yml", text), environ={}) == Settings()


def test_github_and_bot_sections_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yml", "github: {app_id: 12}\nbot: {trigger: /forge}\n")

    settings = load_settings(path, environ={})

    assert settings.github == {"app_id": 12}
    assert settings.bot == {"trigger": "/forge"}


# --- error messages name the key


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "agents: {quick: {executor: command, command: [a], tier: x}}",
            "agents.quick.tier: Input should be a valid integer",
        ),
        (
            "agents: {quick: {executor: command, command: [a], tier: 0}}",
            "agents.quick.tier: Input should be greater than",
        ),
        (
            "agents: {quick: {executor: command, comand: [a]}}",
            "agents.quick.comand: Extra inputs are not permitted",
        ),
        ("agents: {quick: {executor: command}}", "agents.quick.command: required when executor is 'command'"),
        (
            "agents: {quick: {executor: command, command: [a, '{promt}']}}",
            "agents.quick.command: unknown placeholder {promt}",
        ),
        (
            "agents: {quick: {executor: x, price: {input_per_mtok: -1, output_per_mtok: 1}}}",
            "agents.quick.price.input_per_mtok: Input should be greater than or equal to 0",
        ),
        ("agents: {'my agent': {executor: x}}", "agents: 'my agent' is not a valid agent name"),
        (
            "limits: {attempt_timeout: 4x}",
            "limits.attempt_timeout: '4x' is not a duration (use 90s, 45m, 1h30m or seconds)",
        ),
        ("limits: {attempt_timeout: 0}", "limits.attempt_timeout: 0 is not a positive duration"),
        ("limits: {max_parallel: 0}", "limits.max_parallel: Input should be greater than or equal to 1"),
        ("limits: {max_paralel: 2}", "limits.max_paralel: Extra inputs are not permitted"),
        ("defaults: {strategy: random}", "defaults.strategy: Input should be 'parallel' or 'cascade'"),
        (
            "defaults: {quality_threshold: 1.5}",
            "defaults.quality_threshold: Input should be less than or equal to 1",
        ),
        (
            "defaults: {agents: [ghost]}",
            "defaults.agents: unknown agent 'ghost' "
            "(configured: aider, amp, claude, codex, copilot, cursor, gemini, opencode, qwen)",
        ),
        ("checks: [{name: t, run: []}]", "checks.0.run: List should have at least 1 item"),
        ("checks: [{name: t, run: [a], timeout: soon}]", "checks.0.timeout: 'soon' is not a duration"),
        ("checks: [{name: t, run: [a]}, {name: t, run: [b]}]", "checks: duplicate check name 't'"),
        ("agent: {}", "agent: Extra inputs are not permitted"),
    ],
)
def test_validation_errors_name_the_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = write(tmp_path / "c.yml", yaml_text)

    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})

    assert f"{path} {expected}" in problems(exc)


def test_every_problem_is_listed_one_per_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yml", "limits: {max_parallel: 0, attempt_timeout: never}\ncheck: []\n")

    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})

    assert sorted(exc.value.problems) == sorted(problems(exc).splitlines())
    assert [line.split(": ")[0] for line in sorted(exc.value.problems)] == [
        f"{path} check",
        f"{path} limits.attempt_timeout",
        f"{path} limits.max_parallel",
    ]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"

    with pytest.raises(ConfigError) as exc:
        load_settings(str(missing), environ={})

    assert problems(exc) == f"config file {missing}: not found"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yml", "limits:\n  max_parallel: 2\n  per_repo: x: y\n")

    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})

    assert problems(exc) == f"{path} line 3: mapping values are not allowed here"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "c.yml", text)

    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})

    assert problems(exc).startswith(f"{path}: the top level must be a mapping")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_bytes(b"agents: \xff\xfe\n")

    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(str(path), environ={})


# --- environment overrides


def test_env_overrides_top_level_and_nested(example: str) -> None:
    environ = {
        "FORGEBOT_DATA_DIR": "/var/lib/forgebot",
        "FORGEBOT_STORE_URL": "postgresql://localhost/forge",
        "FORGEBOT_LIMITS__MAX_PARALLEL": "2",
        "FORGEBOT_LIMITS__ATTEMPT_TIMEOUT": "1h30m",
        "FORGEBOT_DEFAULTS__STRATEGY": "cascade",
        "FORGEBOT_POLICY__REPO_MAY_SET_CHECKS": "false",
    }

    settings = load_settings(example, environ=environ)

    assert settings.data_dir == "/var/lib/forgebot"
    assert settings.store_url == "postgresql://localhost/forge"
    assert settings.limits.max_parallel == 2
    assert settings.limits.per_agent == 2  # untouched by the override
    assert settings.limits.attempt_timeout == 5400.0
    assert settings.defaults.strategy is Strategy.CASCADE
    assert settings.defaults.agents == ["quick"]
    assert settings.policy.repo_may_set_checks is False


def test_env_list_fields_are_comma_separated(example: str) -> None:
    settings = load_settings(example, environ={"FORGEBOT_DEFAULTS__AGENTS": "quick, careful"})

    assert settings.defaults.agents == ["quick", "careful"]


def test_env_override_without_a_file() -> None:
    settings = load_settings(environ={"FORGEBOT_LIMITS__PER_REPO": "7"})

    assert settings.limits.per_repo == 7


def test_env_bad_value_names_variable_and_key(example: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(example, environ={"FORGEBOT_LIMITS__MAX_PARALLEL": "many"})

    expected = "environment FORGEBOT_LIMITS__MAX_PARALLEL limits.max_parallel: Input should be a valid integer"
    assert expected in problems(exc)


def test_env_unknown_agent_in_defaults(example: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(example, environ={"FORGEBOT_DEFAULTS__AGENTS": "quick,ghost"})

    assert (
        "defaults.agents: unknown agent 'ghost' "
        "(configured: aider, amp, careful, claude, codex, copilot, cursor, gemini, opencode, quick, qwen)"
        in problems(exc)
    )


@pytest.mark.parametrize(
    "name", ["FORGEBOT_LIMITS__MAX_PARALEL", "FORGEBOT_LIMIT__MAX_PARALLEL", "FORGEBOT_AGENTS__QUICK__TIER"]
)
def test_env_unknown_config_variable_is_named(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^environment {name}: not a known setting"):
        load_settings(environ={name: "1"})


def test_env_variables_of_other_parts_are_ignored() -> None:
    environ = {
        "FORGEBOT_GITHUB_APP_ID": "1",
        "FORGEBOT_GITHUB__PRIVATE_KEY": "x",
        "FORGEBOT_WEBHOOK_SECRET": "s",
        "FORGEBOT_LOG_FORMAT": "json",
        "FORGEBOT_LOG__LEVEL": "debug",
        "FORGEBOT_SOMETHING": "no double underscore, not config",
        "PATH": "/usr/bin",
    }

    assert load_settings(environ=environ) == Settings()


# --- repository config and merge

REPO_YAML = """\
agents:
  quick: {executor: claude, model: sonnet}
  local: {executor: command, command: [./agent.sh, "{prompt_file}"]}
defaults: {strategy: cascade}
checks:
  - {name: lint, run: [ruff, check, .], timeout: 90s}
"""


def test_merge_repo_agents_replace_and_add(example: str) -> None:
    merged = merge(load_settings(example, environ={}), load_repo_config(REPO_YAML))

    assert set(merged.agents) == {"quick", "careful", "local"}
    assert merged.agents["quick"].executor == "claude"  # repo wins on the same name
    assert merged.agents["careful"].tier == 2


def test_merge_repo_checks_replace_server_checks(example: str) -> None:
    merged = merge(load_settings(example, environ={}), load_repo_config(REPO_YAML))

    assert to_checks(merged) == (CheckSpec("lint", ("ruff", "check", "."), 90.0),)


def test_merge_keeps_server_checks_when_repo_sets_none(example: str) -> None:
    merged = merge(load_settings(example, environ={}), load_repo_config("defaults: {strategy: cascade}"))

    assert [check.name for check in merged.checks] == ["tests"]


def test_merge_defaults_only_fields_the_repo_set(example: str) -> None:
    settings = load_settings(example, environ={})
    settings = settings.model_copy(update={"defaults": settings.defaults.model_copy(update={"base": "main"})})

    merged = merge(settings, load_repo_config(REPO_YAML))

    assert merged.defaults.strategy is Strategy.CASCADE
    assert merged.defaults.agents == ["quick"]
    assert merged.defaults.base == "main"
    assert merged.defaults.quality_threshold == 0.8


def test_merge_refuses_command_agents_when_policy_forbids(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yml", EXAMPLE + "policy: {repo_may_add_command_agents: false}\n")

    with pytest.raises(ConfigError) as exc:
        merge(load_settings(path, environ={}), load_repo_config(REPO_YAML))

    assert exc.value.problems == (
        ".github/forge.yml agents.local.executor: command agents are not allowed by the server config"
        " (policy.repo_may_add_command_agents is false)",
    )


def test_merge_allows_other_agents_when_command_agents_forbidden(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yml", EXAMPLE + "policy: {repo_may_add_command_agents: false}\n")

    merged = merge(load_settings(path, environ={}), load_repo_config("agents: {quick: {executor: claude}}"))

    assert merged.agents["quick"].executor == "claude"


def test_merge_refuses_checks_when_policy_forbids(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yml", EXAMPLE + "policy: {repo_may_set_checks: false}\n")

    with pytest.raises(ConfigError, match=r"^\.github/forge\.yml checks: setting checks is not allowed"):
        merge(load_settings(path, environ={}), load_repo_config(REPO_YAML))


def test_merge_checks_defaults_name_known_agents(example: str) -> None:
    with pytest.raises(ConfigError, match=r"defaults\.agents: unknown agent 'ghost'"):
        merge(load_settings(example, environ={}), load_repo_config("defaults: {agents: [quick, ghost]}"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limits: {max_parallel: 99}", "ci.yml limits: Extra inputs are not permitted"),
        ("policy: {repo_may_set_checks: true}", "ci.yml policy: Extra inputs are not permitted"),
        ("agents: {x: {executor: command}}", "ci.yml agents.x.command: required when executor is 'command'"),
        ("[1, 2]", "ci.yml: the top level must be a mapping"),
    ],
)
def test_repo_config_errors_name_source_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_repo_config(text, source="ci.yml")

    assert expected in problems(exc)


def test_repo_config_empty_text() -> None:
    repo = load_repo_config("")

    assert repo == RepoConfig()
    assert repo.source == ".github/forge.yml"


def test_load_for_repo_merges_work_tree_file_with_env_on_top(tmp_path: Path, example: str) -> None:
    repo_dir = tmp_path / "repo"
    write(repo_dir / ".github" / "forge.yml", REPO_YAML)

    settings = load_for_repo(str(repo_dir), example, environ={"FORGEBOT_DEFAULTS__STRATEGY": "parallel"})

    assert settings.agents["quick"].executor == "claude"
    assert [check.name for check in settings.checks] == ["lint"]
    assert settings.defaults.strategy is Strategy.PARALLEL  # the repo said cascade; env stays on top


def test_load_for_repo_without_repo_file(tmp_path: Path, example: str) -> None:
    assert load_for_repo(str(tmp_path), example, environ={}) == load_settings(example, environ={})


def test_load_for_repo_error_names_the_repo_file(tmp_path: Path) -> None:
    repo_file = write(tmp_path / ".github" / "forge.yml", "defaults: {strategy: fast}\n")

    with pytest.raises(ConfigError) as exc:
        load_for_repo(str(tmp_path), environ={})

    assert problems(exc).startswith(f"{repo_file} defaults.strategy: Input should be")


# --- resolve_env


def test_resolve_env_substitutes_references() -> None:
    template = {"API_KEY": "${MY_API_KEY}", "URL": "https://${HOST}:${PORT}/v1", "PLAIN": "x"}

    resolved = resolve_env(template, {"MY_API_KEY": "k-123", "HOST": "api", "PORT": "8443"})

    assert resolved == {"API_KEY": "k-123", "URL": "https://api:8443/v1", "PLAIN": "x"}


def test_resolve_env_escape_keeps_literal() -> None:
    assert resolve_env({"A": "$${HOME}-${X}"}, {"HOME": "/root", "X": "1"}) == {"A": "${HOME}-1"}


def test_resolve_env_missing_variables_are_all_reported() -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_env({"API_KEY": "${MY_API_KEY}", "OTHER": "a-${NOPE}"}, {})

    assert exc.value.problems == (
        "env API_KEY: ${MY_API_KEY} is not set in forgebot's environment",
        "env OTHER: ${NOPE} is not set in forgebot's environment",
    )


def test_resolve_env_bad_reference() -> None:
    with pytest.raises(ConfigError, match=r"env A: \$\{1-x\} is not a valid variable reference"):
        resolve_env({"A": "${1-x}"}, {})


# --- parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("45m", 2700.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("1h0m5s", 3605.0),
        ("1.5", 1.5),
        ("1.5m", 90.0),
        (" 10M ", 600.0),
        (30, 30.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "4x", "m", "1m30", "30m1h", "-5", "1e3", "inf", "1 h"])
def test_parse_duration_rejects_non_durations(value: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [0, -1, "0s", "0", float("inf")])
def test_parse_duration_rejects_non_positive(value: str | int | float) -> None:
    with pytest.raises(ValueError, match="is not a positive duration"):
        parse_duration(value)


def test_parse_duration_rejects_bool() -> None:
    with pytest.raises(ValueError, match="True is not a duration"):
        parse_duration(True)


def test_builtin_profiles_are_there_and_overridable_field_by_field() -> None:
    settings = load_repo_config("agents: {}")  # parses; builtins need no config at all
    assert settings.agents == {}
    profiles = to_profiles(
        Settings.model_validate(
            {
                "agents": {
                    "claude": {"model": "claude-opus-4-1", "tier": 3},
                    "perf-claude": {"agent": "claude", "persona": "Make it fast."},
                    "local-gemini": {"agent": "gemini", "base_url": "http://127.0.0.1:9/"},
                }
            }
        )
    )
    assert profiles["codex"].executor == "codex" and profiles["codex"].env == {"OPENAI_API_KEY": "${OPENAI_API_KEY}"}
    assert (profiles["claude"].model, profiles["claude"].tier, profiles["claude"].executor) == (
        "claude-opus-4-1",
        3,
        "claude",
    )
    assert profiles["claude"].env == {"ANTHROPIC_API_KEY": "${ANTHROPIC_API_KEY}"}  # not set, so kept
    perf = profiles["perf-claude"]
    assert (perf.executor, perf.model, perf.persona, perf.tier) == ("claude", "claude-opus-4-1", "Make it fast.", 3)
    assert profiles["local-gemini"].base_url == "http://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("agents", "message"),
    [
        ({"quick": {"command": ["a"]}}, "agents.quick.executor: required: 'quick' is not a built-in agent"),
        ({"x": {"agent": "ghost"}}, "agents.x.executor: required: agent 'ghost' is not defined"),
        ({"a": {"agent": "b"}, "b": {"agent": "a"}}, "agents build on each other in a circle"),
    ],
)
def test_profiles_that_cannot_be_resolved(agents: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        to_profiles(Settings.model_validate({"agents": agents}))


def test_agents_path_from_environment() -> None:
    settings = load_settings(None, environ={"FORGEBOT_AGENTS_PATH": "/opt/a/bin:/opt/b/bin"})
    assert settings.agents_path == ["/opt/a/bin", "/opt/b/bin"]


def test_policy_can_forbid_repository_agent_env() -> None:
    server = Settings.model_validate({"policy": {"repo_may_set_agent_env": False}})
    repo = load_repo_config('agents: {mine: {agent: claude, env: {K: "${SERVER_SECRET}"}}}')
    with pytest.raises(ConfigError, match=r"^\.github/forge\.yml agents\.mine\.env: setting agent environment is not"):
        merge(server, repo)
    inherits_command = load_repo_config("agents: {q2: {agent: quick}}")
    locked = Settings.model_validate(
        {
            "agents": {"quick": {"executor": "command", "command": ["x"]}},
            "policy": {"repo_may_add_command_agents": False},
        }
    )
    with pytest.raises(ConfigError, match=r"^\.github/forge\.yml agents\.q2\.agent: command agents"):
        merge(locked, inherits_command)


def test_persona_files_become_profiles(tmp_path: Path) -> None:
    folder = tmp_path / ".github" / "forge" / "agents"
    folder.mkdir(parents=True)
    (folder / "perf-claude.md").write_text(
        "---\nagent: claude\nmodel: claude-opus-4-1\n---\n# Be fast\nProfile first.\n"
    )
    (folder / "tests-first-gemini.md").write_text("---\nagent: gemini\n---\nWrite the tests first.\n")
    profiles = to_profiles(load_for_repo(str(tmp_path), None, environ={}))
    perf = profiles["perf-claude"]
    assert (perf.executor, perf.model, perf.persona) == ("claude", "claude-opus-4-1", "# Be fast\nProfile first.")
    assert profiles["tests-first-gemini"].persona == "Write the tests first."
    assert profiles["tests-first-gemini"].model == "gemini-2.5-flash"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no header\n", "starts with a YAML header"),
        ("---\nmodel: x\n---\nbody\n", "agent: required"),
        ("---\nagent: claude\ncolour: red\n---\n", "colour: not a persona setting"),
    ],
)
def test_bad_persona_files(tmp_path: Path, text: str, message: str) -> None:
    folder = tmp_path / ".github" / "forge" / "agents"
    folder.mkdir(parents=True)
    (folder / "p.md").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_for_repo(str(tmp_path), None, environ={})


PERSONA_ENV = {"FORGEBOT_LIMITS__ATTEMPT_TIMEOUT": "60"}  # an override: persona files stay named after it


@pytest.mark.parametrize(
    ("files", "bad", "message"),
    [
        ({"p.md": "---\nagent: nosuch\n---\nbody\n"}, "p.md", "agent: 'nosuch' is not an agent (built-in: aider,"),
        ({"p.md": "---\nagent: claude\ntier: lots\n---\n"}, "p.md", "tier: Input should be a valid integer"),
        ({"a.md": "---\nagent: b\n---\n", "b.md": "---\nagent: a\n---\n"}, "a.md", "agent: agents build on each"),
        ({"p.md": "---\nagent: quick\n---\n"}, "p.md", "agent: command agents are not allowed by the server"),
    ],
)
def test_a_bad_persona_file_is_named_with_the_key(
    tmp_path: Path, files: dict[str, str], bad: str, message: str
) -> None:
    config = tmp_path / "forgebot.yml"
    config.write_text(
        "agents: {quick: {executor: command, command: [./q]}}\npolicy: {repo_may_add_command_agents: false}\n"
    )
    folder = tmp_path / ".github" / "forge" / "agents"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    with pytest.raises(ConfigError) as raised:
        to_profiles(load_for_repo(str(tmp_path), str(config), environ=PERSONA_ENV))
    assert str(raised.value).startswith(f"{folder / bad}"), str(raised.value)
    assert message in str(raised.value)
    assert "agents." not in str(raised.value)  # not a config path: the agent came from the file


def test_a_config_agent_error_still_names_the_config_path() -> None:
    with pytest.raises(ConfigError, match=r"^agents\.bad\.executor: required: agent 'nosuch' is not defined"):
        to_profiles(Settings.model_validate({"agents": {"bad": {"agent": "nosuch"}}}))


# --- a repository's files are read as plain files of the work tree, never through a symbolic link


def test_a_symlinked_repo_config_or_persona_is_refused_by_name(tmp_path: Path) -> None:
    secret = write(tmp_path / "outside" / "secret.yml", "defaults: {strategy: cascade}\n")
    repo = tmp_path / "repo"
    (repo / ".github" / "forge" / "agents").mkdir(parents=True)
    (repo / ".github" / "forge.yml").symlink_to(secret)
    with pytest.raises(ConfigError) as exc:
        load_for_repo(str(repo), None, environ={})
    assert problems(exc) == f"{repo / '.github/forge.yml'}: is a symbolic link (forgebot reads only plain files of " \
        "the repository)"  # fmt: skip
    (repo / ".github" / "forge.yml").unlink()
    (repo / ".github" / "forge.yml").symlink_to(tmp_path / "nowhere.yml")  # a dangling link is refused too
    with pytest.raises(ConfigError, match=r"forge\.yml: is a symbolic link"):
        load_for_repo(str(repo), None, environ={})
    (repo / ".github" / "forge.yml").unlink()

    persona = repo / ".github" / "forge" / "agents" / "leak.md"
    persona.symlink_to("/proc/self/environ")
    with pytest.raises(ConfigError, match=r"agents/leak\.md: is a symbolic link"):
        load_for_repo(str(repo), None, environ={})


def test_the_api_reads_a_work_trees_forge_yml_by_the_same_rule(tmp_path: Path) -> None:
    resolve = worktree_settings(Settings())
    repo = tmp_path / "repo"
    write(repo / ".github" / "forge.yml", "defaults: {strategy: cascade}\n")
    assert resolve(str(repo)).defaults.strategy is Strategy.CASCADE
    (repo / ".github" / "forge.yml").unlink()
    (repo / ".github" / "forge.yml").symlink_to(write(tmp_path / "outside.yml", "defaults: {strategy: cascade}\n"))
    with pytest.raises(ConfigError, match=r"forge\.yml: is a symbolic link"):
        resolve(str(repo))
    (repo / ".github" / "forge.yml").unlink()
    (repo / ".github" / "forge.yml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        resolve(str(repo))


def test_a_persona_folder_leading_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "p.md", "---\nagent: claude\n---\nhello\n")
    repo = tmp_path / "repo"
    (repo / ".github" / "forge").mkdir(parents=True)
    (repo / ".github" / "forge" / "agents").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"agents/p\.md: leads out of the repository"):
        load_for_repo(str(repo), None, environ={})
    # Inside a repository reached through a link of its own, plain files still load.
    (tmp_path / "link").symlink_to(repo)
    (repo / ".github" / "forge" / "agents").unlink()
    write(repo / ".github" / "forge" / "agents" / "p.md", "---\nagent: claude\n---\nhello\n")
    assert load_for_repo(str(tmp_path / "link"), None, environ={}).agents["p"].persona == "hello"


# --- policy.repo_may_redirect_agents


def test_redirecting_a_built_in_agent_is_refused_when_the_policy_forbids(tmp_path: Path) -> None:
    server = Settings.model_validate({"policy": {"repo_may_redirect_agents": False}})
    repo = load_repo_config(
        "agents:\n  claude: {base_url: 'https://evil.example/v1'}\n  mine: {agent: codex, args: [-c, x=y]}\n"
    )
    with pytest.raises(ConfigError) as exc:
        merge(server, repo)
    why = "pointing an agent elsewhere is not allowed by the server config (policy.repo_may_redirect_agents is false)"
    assert exc.value.problems == (
        f".github/forge.yml agents.claude.base_url: {why}",
        f".github/forge.yml agents.mine.args: {why}",
    )
    assert merge(Settings(), repo).agents["claude"].base_url == "https://evil.example/v1"  # allowed by default
    # Other keys, and a command agent's args (the command policy decides about those), are not redirects.
    fine = load_repo_config("agents:\n  claude: {model: opus}\n  c: {executor: command, command: [x], args: [y]}\n")
    assert merge(server, fine).agents["claude"].model == "opus"


def test_a_persona_file_setting_args_is_named_when_redirects_are_forbidden(tmp_path: Path) -> None:
    config = write(tmp_path / "forgebot.yml", "policy: {repo_may_redirect_agents: false}\n")
    write(tmp_path / ".github" / "forge" / "agents" / "p.md", "---\nagent: gemini\nargs: [--proxy, x]\n---\n")
    with pytest.raises(ConfigError) as exc:
        load_for_repo(str(tmp_path), config, environ={})
    assert problems(exc).startswith(f"{tmp_path / '.github/forge/agents/p.md'} args: pointing an agent elsewhere")

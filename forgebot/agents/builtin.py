"""Built-in agent profiles: one per supported CLI, with sensible defaults that a config may override field by field.

Keys come from forgebot's environment through `${NAME}` references, so nothing secret is written anywhere.
Tiers order them for the cascade strategy: cheaper, faster models first.
"""

from __future__ import annotations

from forgebot.core.models import AgentProfile


def _profile(name: str, model: str | None, env_keys: tuple[str, ...], tier: int) -> AgentProfile:
    return AgentProfile(
        name=name, executor=name, model=model, env={key: "${" + key + "}" for key in env_keys}, tier=tier
    )


BUILTIN_PROFILES: dict[str, AgentProfile] = {
    profile.name: profile
    for profile in (
        _profile("claude", "claude-sonnet-4-5", ("ANTHROPIC_API_KEY",), 2),
        _profile("codex", "gpt-5-codex", ("OPENAI_API_KEY",), 2),
        _profile("gemini", "gemini-2.5-flash", ("GEMINI_API_KEY",), 1),
        _profile("qwen", "qwen3-coder-plus", ("OPENAI_API_KEY",), 1),
        _profile("opencode", "anthropic/claude-sonnet-4-5", ("ANTHROPIC_API_KEY",), 2),
        _profile("copilot", None, ("COPILOT_GITHUB_TOKEN",), 2),
        _profile("aider", "anthropic/claude-sonnet-4-5", ("ANTHROPIC_API_KEY",), 2),
        _profile("cursor", None, ("CURSOR_API_KEY",), 2),
        _profile("amp", None, ("AMP_API_KEY",), 2),
    )
}

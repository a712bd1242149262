"""The prompt an agent receives for a task. Pure."""

from __future__ import annotations


def build_prompt(title: str, description: str, persona: str = "") -> str:
    parts = [f"# Task: {title.strip()}"]
    if description.strip():
        parts.append(description.strip())
    parts.append(
        "Work in the current directory, which is a git checkout made for you. Change the files needed to "
        "complete the task; do not commit, push or switch branches: forgebot commits and compares your work."
    )
    if persona.strip():
        parts.append(persona.strip())
    return "\n\n".join(parts) + "\n"


def format_duration(seconds: float) -> str:
    """Compact human duration: 42s, 3m05s, 1h02m."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

"""A hasty agent: fastest, but its change breaks the existing test."""

from _common import read_prompt, report, step, write

read_prompt()
step("patching text.py", 1.0)
write(
    "text.py",
    """def slugify(text: str) -> str:
    return text.replace(" ", "-")
""",
)
report(900, 60, "Replaced spaces with hyphens.")

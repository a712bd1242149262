"""A quick, tidy agent: a small correct change in about 3 seconds."""

from _common import read_prompt, report, step, write

read_prompt()
step("reading text.py", 1.0)
step("writing slugify()", 1.0)
write(
    "text.py",
    '''import re


def slugify(text: str) -> str:
    """Lowercase words joined by hyphens."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))
''',
)
step("done", 1.0)
report(1800, 240, "Implemented slugify with one regular expression.")

"""A careful agent: the same fix plus extra tests, slower and wordier (about 5 seconds)."""

from _common import read_prompt, report, step, write

read_prompt()
step("reading the repository", 1.5)
step("writing tests first", 1.5)
write(
    "test_more_text.py",
    """import unittest

from text import slugify


class MoreSlugTests(unittest.TestCase):
    def test_punctuation_is_dropped(self) -> None:
        self.assertEqual(slugify("Ready, set... go!"), "ready-set-go")

    def test_empty(self) -> None:
        self.assertEqual(slugify(""), "")


if __name__ == "__main__":
    unittest.main()
""",
)
step("implementing slugify()", 1.5)
write(
    "text.py",
    '''def slugify(text: str) -> str:
    """Lowercase words joined by hyphens; anything that is not a letter or digit separates words."""
    words = []
    current = []
    for char in text.lower():
        if char.isascii() and char.isalnum():
            current.append(char)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return "-".join(words)
''',
)
step("running the tests", 0.5)
report(5200, 900, "Implemented slugify and added tests for punctuation and empty input.")

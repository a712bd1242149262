"""Issue text → prompt text, and any untrusted text → plain text. Pure: no IO, no clock.

`clean` keeps what a reader sees on GitHub and drops what they cannot see, so nobody can hide instructions
for the agents in an issue:
- HTML comments are removed, also unterminated ones (GitHub hides those to the end of the text), except
  inside fenced code blocks, where GitHub shows them verbatim. Inline code spans are not recognised: a
  comment inside backticks is removed too, erring on the side of hiding nothing from the reader.
- Zero-width, bidirectional-control, Unicode tag (used to smuggle ASCII) and C0/C1 control characters are
  removed everywhere, code blocks included; tab and newline stay. A zero-width joiner inside an emoji
  sequence goes too: the emoji then shows as its parts.
- CRLF and CR become LF; runs of blank lines outside code blocks become one; the ends are stripped.
Characters are removed before comments, so `<!\u200b--` counts as a comment opener (it hides more, never less).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_ZERO_WIDTH = (0x200B, 0x200C, 0x200D, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0x00AD)
_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_CONTROLS = (*(c for c in range(0x20) if c not in (0x09, 0x0A)), *range(0x7F, 0xA0))
_TAGS = tuple(range(0xE0000, 0xE0080))
_INVISIBLE: dict[int, None] = dict.fromkeys((*_ZERO_WIDTH, *_BIDI, *_CONTROLS, *_TAGS))

# CSI (colours, cursor moves), OSC (titles, hyperlinks) and two-character escapes, as terminals print them.
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_FENCE_OPEN_RE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_FENCE_CLOSE_RE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*")
_WHITESPACE_RE = re.compile(r"\s+")
TITLE_LIMIT = 256  # GitHub's own limit for issue and pull request titles


def fence_opening(line: str) -> str | None:
    """The fence (e.g. "```") when `line` opens a fenced code block, else None. A backtick fence's info
    string may not contain backticks (CommonMark), so "```a`" is inline code, not a fence."""
    found = _FENCE_OPEN_RE.fullmatch(line)
    if found is None or (found[1][0] == "`" and "`" in found[2]):
        return None
    return found[1]


def fence_closes(line: str, fence: str) -> bool:
    """True when `line` closes the block opened by `fence`: same character, at least as long, nothing after."""
    found = _FENCE_CLOSE_RE.fullmatch(line)
    return found is not None and found[1][0] == fence[0] and len(found[1]) >= len(fence)


def plain(text: str) -> str:
    """Untrusted program output as plain text: LF newlines, no terminal escapes, no invisible characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _ANSI_RE.sub("", text).translate(_INVISIBLE)


def clean(text: str, *, keep_indent: bool = False) -> str:
    """Issue or comment markdown reduced to what GitHub shows a reader (see the module docstring).
    `keep_indent`: strip blank lines only at the start, so the first line keeps its indentation (the command
    parser needs it: four spaces make a code block)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    kept: list[str] = []
    blank = False
    for line, in_code in _visible_lines(text.split("\n")):
        if not in_code:
            line = line.rstrip()
            if not line and blank:
                continue
        blank = not in_code and not line
        kept.append(line)
    joined = "\n".join(kept)
    return joined.strip("\n").rstrip() if keep_indent else joined.strip()


def clean_title(title: str, limit: int = TITLE_LIMIT) -> str:
    """A title on one line: cleaned, whitespace collapsed, at most `limit` characters."""
    return _WHITESPACE_RE.sub(" ", clean(title)).strip()[:limit].rstrip()


def prompt_from_issue(title: str, body: str, extra: str = "") -> tuple[str, str]:
    """(title, description) for `core.prompt.build_prompt`. `extra` is more text from the maintainer (the
    rest of a `/forge run` comment, say), appended after the issue body as its own paragraph."""
    parts = [part for part in (clean(body), clean(extra)) if part]
    return clean_title(title), "\n\n".join(parts)


def _visible_lines(lines: list[str]) -> Iterator[tuple[str, bool]]:
    """Each line that GitHub shows, with comments cut out, and whether it is inside a fenced code block.
    Lines wholly inside a comment are dropped; a line where one starts or ends stays, maybe blank, as on GitHub,
    where a comment opening a line is a block of its own that ends the paragraph before it."""
    fence: str | None = None
    in_comment = False
    for line in lines:
        if in_comment:
            end = line.find("-->")
            if end < 0:
                continue
            line, in_comment = _cut_comments(line[end + 3 :])
            yield line, False
        elif fence is not None:
            if fence_closes(line, fence):
                fence = None
            yield line, True
        elif (fence := fence_opening(line)) is not None:
            yield line, True
        else:
            line, in_comment = _cut_comments(line)
            yield line, False


def _cut_comments(line: str) -> tuple[str, bool]:
    """`line` without its comments, and whether the last one is still open at the end of the line.
    "-->" is looked for from the opener's third character on, so "<!-->" and "<!--->" close at once, as they
    do in HTML and CommonMark."""
    while (start := line.find("<!--")) >= 0:
        end = line.find("-->", start + 2)
        if end < 0:
            return line[:start], True
        line = line[:start] + line[end + 3 :]
    return line, False

"""Reading the Markdown docs: headings and their GitHub anchors, links, sections and fenced code blocks.

Standard library only: `.ci/fresh_machine.py` uses it before anything is installed.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: What "the first screen" of the README means for the checks: its first lines.
FIRST_SCREEN_LINES = 45

_FENCE = re.compile(r"^```")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)")
_ANCHOR_TAG = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a ``# comment`` in a code block is not a heading)."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script, digits, ``_`` and
    ``-`` stay), spaces become ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    return [(len(m.group(1)), m.group(2)) for line in _prose_lines(text) if (m := _HEADING.match(line))]


def anchors_of(text: str) -> set[str]:
    """Every anchor a link may target: heading slugs (repeats get ``-1``, ``-2`` …) and ``<a id="...">`` tags."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, title in headings(text):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    out.update(_ANCHOR_TAG.findall(text))
    return out


def links_of(text: str) -> list[str]:
    """Link targets in the prose (not inside code blocks)."""
    return [m.group(1) for line in _prose_lines(text) for m in _LINK.finditer(line)]


def section(text: str, title: str) -> str:
    """The text under the heading ``title`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    fenced = False
    start = level = None
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if not m:
            continue
        if start is None and m.group(2) == title:
            start, level = i + 1, len(m.group(1))
        elif start is not None and level is not None and len(m.group(1)) <= level:
            return "\n".join(lines[start:i])
    if start is None:
        raise LookupError(f"no heading {title!r}")
    return "\n".join(lines[start:])


def code_blocks(text: str) -> list[str]:
    """The contents of the fenced code blocks, in order."""
    return [body for _, body in fenced_blocks(text)]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, contents)`` of the fenced code blocks, in order (language "" when the fence names none)."""
    blocks: list[tuple[str, str]] = []
    current: list[str] | None = None
    language = ""
    for line in text.splitlines():
        if _FENCE.match(line):
            if current is None:
                current, language = [], line.strip("`").strip()
            else:
                blocks.append((language, "\n".join(current)))
                current = None
        elif current is not None:
            current.append(line)
    return blocks

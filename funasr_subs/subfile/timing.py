"""The timing lines of a subtitle file's text, found the way pysubs2 finds its events, and rewritten in place.

Re-timing a file from outside changes its times and nothing else: the text is kept as it came and only the time
stamps of its timing lines are replaced (SRT ``00:00:01,000 --> ...``, WebVTT ``00:01.000 --> ... settings``, ASS
``Dialogue:`` fields 2 and 3). Cue numbers, WebVTT identifiers, ``STYLE``/``NOTE``/``REGION`` blocks and cue settings,
ASS sections, styles, comments and line endings stay byte for byte. Pure functions over text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pysubs2.formats.webvtt import WebVTTFormat
from pysubs2.time import TIMESTAMP as SRT_TIMESTAMP

_VTT_TIMESTAMP = WebVTTFormat.TIMESTAMP
_ASS_EVENT = re.compile(r"^(\s*(?:Dialogue|Comment):[^,]*,)([^,]*),([^,]*)(,.*)?$", re.DOTALL)
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_SECTION = re.compile(r"^\s*\[[^\]]+\]\s*$")
#: ASS sections whose lines pysubs2 does not read as events.
_NOT_EVENTS = ("Info", "Aegisub", "Fonts", "Graphics")
#: The largest time each format can hold.
_MAX_MS = {"srt": 100 * 3_600_000 - 1, "vtt": 10_000 * 3_600_000 - 1, "ass": 10 * 3_600_000 - 10}


class StructureError(ValueError):
    """The file's timing lines do not match its cues as read: re-timing it in place would not be safe."""


def lines_of(text: str) -> list[str]:
    """The lines of ``text`` with their endings, split at ``\n`` only, as pysubs2 reads them (``str.splitlines`` would
    also split at form feeds, NEL and the Unicode line separators, which may stand inside a cue's text)."""
    return _LINE.findall(text)


def _kind(fmt: str) -> str:
    return "ass" if fmt in ("ass", "ssa") else "vtt" if fmt == "vtt" else "srt"


def timing_lines(text: str, fmt: str) -> list[int]:
    """Indices (in ``lines_of(text)``) of the lines pysubs2 reads one event from each, in order."""
    lines = lines_of(text)
    kind = _kind(fmt)
    if kind == "ass":
        out: list[int] = []
        skip = False
        for i, line in enumerate(lines):
            stripped = line.strip()
            if _SECTION.match(stripped):
                skip = any(word in stripped for word in _NOT_EVENTS)
            elif not skip and (stripped.startswith("Dialogue:") or stripped.startswith("Comment:")):
                out.append(i)
        return out
    pattern = _VTT_TIMESTAMP if kind == "vtt" else SRT_TIMESTAMP
    return [i for i, line in enumerate(lines) if len(pattern.findall(line)) == 2]


def is_comment_line(line: str) -> bool:
    return line.strip().startswith("Comment:")


def vtt_cues_only(text: str) -> str:
    """A WebVTT text with everything that is not a cue's timing line or payload blanked (the header, ``NOTE``,
    ``STYLE`` and ``REGION`` blocks, cue identifiers), for pysubs2, which would read them as cue text."""
    lines = lines_of(text)
    timed = set(timing_lines(text, "vtt"))
    out: list[str] = []
    in_cue = False
    for i, line in enumerate(lines):
        if not line.strip():
            in_cue = False
            out.append(line)
        elif i in timed:
            in_cue = True
            out.append(line)
        elif in_cue:
            out.append(line)
        else:
            out.append(_ending(line))
    return "".join(out)


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def _stamp(ms: int, kind: str, like: str) -> str:
    ms = min(max(ms, 0), _MAX_MS[kind])
    if kind == "ass":
        ms = (ms + 5) // 10 * 10  # how Aegisub rounds to centiseconds
        return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000 // 10:02d}"
    h, m, s, frac = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000
    if kind == "vtt":
        hours = like.count(":") == 2 or h > 0
        return (f"{h:02d}:" if hours else "") + f"{m:02d}:{s:02d}.{frac:03d}"
    sep = "." if "." in like else ","
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{frac:03d}"


def retime(text: str, fmt: str, times: Sequence[tuple[int, int] | None]) -> str:
    """``text`` with the time stamps of its timing lines replaced: ``times[k]`` (start, end in ms) for the k-th timing
    line, None to keep it. StructureError when ``times`` does not have one entry per timing line."""
    lines = lines_of(text)
    where = timing_lines(text, fmt)
    if len(where) != len(times):
        raise StructureError(f"{len(where)} timing lines for {len(times)} cues")
    kind = _kind(fmt)
    for index, new in zip(where, times, strict=True):
        if new is not None:
            lines[index] = _retime_line(lines[index], kind, new)
    return "".join(lines)


def _retime_line(line: str, kind: str, new: tuple[int, int]) -> str:
    if kind == "ass":
        m = _ASS_EVENT.match(line)
        if m is None:
            raise StructureError(f"an ASS event line without start and end: {line.strip()[:60]}")
        head, start, end, rest = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        return f"{head}{_stamp(new[0], kind, start)},{_stamp(new[1], kind, end)}{rest}"
    pattern = _VTT_TIMESTAMP if kind == "vtt" else SRT_TIMESTAMP
    values = iter(new)
    return pattern.sub(lambda m: _stamp(next(values), kind, m.group(0)), line)


def without_times(text: str, fmt: str) -> str:
    """``text`` with the time stamps of its timing lines taken out: what re-timing must leave exactly as it was."""
    lines = lines_of(text)
    kind = _kind(fmt)
    for index in timing_lines(text, fmt):
        if kind == "ass":
            m = _ASS_EVENT.match(lines[index])
            lines[index] = lines[index] if m is None else f"{m.group(1)},{m.group(4) or ''}"
        else:
            lines[index] = (_VTT_TIMESTAMP if kind == "vtt" else SRT_TIMESTAMP).sub("", lines[index])
    return "".join(lines)

"""Subtitle files from outside (a download, a fansub): read in the encoding they came in, re-timed without changing
anything but their times, written back the same way (pure: bytes in, bytes out; the commands read and write)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pysubs2

from funasr_subs.check import cues_from_events
from funasr_subs.subfile.encoding import Encoding, UnknownEncodingError, decode
from funasr_subs.subfile.timing import StructureError, lines_of, retime, timing_lines, vtt_cues_only, without_times

__all__ = [
    "Encoding",
    "NotSubtitleError",
    "StructureError",
    "SubtitleFile",
    "UnknownEncodingError",
    "parse",
    "retimed_bytes",
]

log = logging.getLogger(__name__)

#: pysubs2 format ids by suffix; other suffixes are auto-detected.
FORMATS = {".srt": "srt", ".ass": "ass", ".ssa": "ssa", ".vtt": "vtt"}


class NotSubtitleError(ValueError):
    """pysubs2 cannot read the text as SRT, ASS or VTT."""


@dataclass(frozen=True, slots=True)
class SubtitleFile:
    """A subtitle file as it came: its text, how it was stored, its format and its events as pysubs2 reads them
    (for WebVTT, from the cue blocks alone: identifiers and NOTE/STYLE blocks are not cue text)."""

    text: str
    encoding: Encoding
    fmt: str
    subs: pysubs2.SSAFile


def parse(data: bytes, suffix: str) -> SubtitleFile:
    """The file's bytes read: UnknownEncodingError or NotSubtitleError (both ValueError) when they cannot be."""
    text, encoding = decode(data)
    fmt = FORMATS.get(suffix.lower())
    try:
        if fmt is None:
            fmt = pysubs2.formats.autodetect_format(text)
        subs = parse_text(text, fmt)
    except Exception as exc:  # pysubs2 raises many kinds of errors for malformed files: their names mean nothing here
        log.debug("pysubs2 could not read it: %r", exc)
        raise NotSubtitleError(
            "not a subtitle file that can be read (SRT, ASS or VTT expected): is it a subtitle file?"
        ) from None
    return SubtitleFile(text, encoding, str(fmt), subs)


def retimed_bytes(original: SubtitleFile, times: Sequence[tuple[int, int]], out_fmt: str) -> bytes:
    """The file with new (start, end) times for its non-comment events, in the encoding it came in.

    In its own format only the time stamps of its timing lines change (checked: the text without time stamps is the
    same, and it reads back as the same events with the new times). In another format (``-o x.ass`` for an SRT) the
    events are written by pysubs2 and checked to read back with the same text. StructureError when a check fails:
    then nothing must be written."""
    events = original.subs.events
    if original.fmt == out_fmt:
        text = _in_place(original, times)
    else:
        converted = parse_text(original.text, original.fmt)  # a copy to change
        visible = iter(times)
        for event in converted.events:
            if not event.is_comment:
                event.start, event.end = next(visible)
        text = str(converted.to_string(out_fmt))
        back = parse_text(text, out_fmt)
        if _shown(back.events) != _shown(events):
            raise StructureError(f"the cues' text would change in {out_fmt.upper()}")
    try:
        return original.encoding.encode(text)
    except ValueError as exc:
        raise StructureError(str(exc)) from None


def _in_place(original: SubtitleFile, times: Sequence[tuple[int, int]]) -> str:
    lines = lines_of(original.text)
    where = timing_lines(original.text, original.fmt)
    events = original.subs.events
    if len(where) != len(events):
        raise StructureError(f"{len(where)} timing lines for {len(events)} cues read")
    visible = iter(times)
    per_line: list[tuple[int, int] | None] = []
    for index, event in zip(where, events, strict=True):
        comment = lines[index].strip().startswith("Comment:")
        if comment != bool(event.is_comment):
            raise StructureError("the timing lines do not follow the cues read")
        per_line.append(None if comment else next(visible))
    text = retime(original.text, original.fmt, per_line)
    if without_times(text, original.fmt) != without_times(original.text, original.fmt):
        raise StructureError("more than the times would change")
    back = parse_text(text, original.fmt)
    if _texts(back.events) != _texts(events):
        raise StructureError("the cues would not read back the same")
    coarse = 10 if original.fmt in ("ass", "ssa") else 1
    got = [(e.start, e.end) for e in back.events if not e.is_comment]
    for (start, end), (want_start, want_end) in zip(got, times, strict=True):
        if abs(start - max(want_start, 0)) >= coarse or abs(end - max(want_end, 0)) >= coarse:
            raise StructureError("the new times would not read back")
    return text


def parse_text(text: str, fmt: str) -> pysubs2.SSAFile:
    """The events of ``text`` as pysubs2 reads them (WebVTT: from its cue blocks alone)."""
    return pysubs2.SSAFile.from_string(vtt_cues_only(text) if fmt == "vtt" else text, format_=fmt)


def _shown(events: Sequence[pysubs2.SSAEvent]) -> list[tuple[str, ...]]:
    return [c.lines for c in cues_from_events(events)]


def _texts(events: Sequence[pysubs2.SSAEvent]) -> list[tuple[str, str, bool]]:
    return [(e.text, e.style, bool(e.is_comment)) for e in events]

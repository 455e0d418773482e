"""ffmpeg's own report of its input, read into :class:`~funasr_subs.media.MediaInfo` (pure).

ffmpeg prints what it found in the input (``Input #0, <format>``, ``Duration: …, start: …``, one ``Stream #0:N``
line per stream) and which stream it took (``Stream mapping:``) before it writes any audio. Run with ``-loglevel
level+info``, every such line starts with ``[info]`` and every problem carries ``[warning]``/``[error]``, so one
ffmpeg run both reports the media facts and decodes: the separate ffprobe start (~0.06 s of CPU, as much as a whole
10-second clip's decode) is gone. See ``docs/performance.md``.

What the report does not say: each stream's own start time (ffprobe's ``start_time``). The caller makes that up
differently per send mode (a padded decode, the edit list of the mp4 we send), and only for containers whose
timeline that is known to work for (:func:`timeline_known`); other inputs fall back to ffprobe.

Tag values come from the file and are printed raw: a stream's language sits between the parentheses of its line
(``Stream #0:1(Chinese (Simplified)): Audio: …``, with any parentheses, colons or newlines of its own). A line
without a level prefix is the rest of the line before it (a newline inside a tag), so the reader
(:class:`~funasr_subs.media.FfmpegStream`) joins it back, and the language is everything up to the last
``): <kind>: `` of the line: the part after it is ffmpeg's own. A dump that names one stream twice (a stream in
two programs, or a forged line) is not read: ffprobe, whose JSON cannot be forged, says what the file holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from funasr_subs.media.info import AudioStream, MediaInfo, report_kinds, title_kinds

#: Containers for which ffmpeg's timeline starts at the container's start, so that a late audio stream shows up as
#: a late first timestamp (padded with silence, or an empty edit in the mp4 we send); the two tested with late audio.
#: Others (MPEG-TS/PS and FLV shift timestamps at discontinuities; AVI, ASF... untested) get offsets from ffprobe
#: when they hold more than one stream.
TIMELINE_FORMATS = frozenset({"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"})

_LEVEL = re.compile(r"^(?:\[[^\]]* @ 0x[0-9a-fA-F]+\] )?\[(panic|fatal|error|warning|info)\] ?(.*)$")
_INPUT = re.compile(r"^Input #0, (.+?), from '")
_DURATION = re.compile(r"^  Duration: (N/A|(\d+):(\d\d):(\d\d(?:\.\d+)?))(?:, start: (-?\d+(?:\.\d+)?))?")
#: The kinds ffmpeg names (``avcodec_string``): the language before the last ``): <kind>: `` is the tag, whatever it
#: holds (greedy, across a joined newline).
_KINDS = "Video|Audio|Subtitle|Data|Attachment|Unknown"
_STREAM = re.compile(rf"^  Stream #0:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\((.*)\))?: ({_KINDS}): (.*)$", re.DOTALL)
#: A stream's metadata (the container's is indented less); a title with newlines has been joined back.
_STREAM_TITLE = re.compile(r"^      title\s*: (.*)$", re.DOTALL)
_MAPPING = re.compile(r"^  Stream #0:(\d+) -> #0:0\b")
_CODEC = re.compile(r"^([0-9A-Za-z_]+)")
_RATE = re.compile(r", (\d+) Hz\b")
_BITRATE = re.compile(r", (\d+) kb/s\b")
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "downmix": 2, "binaural": 2, "quad": 4, "hexagonal": 6, "cube": 8}
_LAYOUT_CHANNELS |= {"octagonal": 8, "hexadecagonal": 16}


@dataclass(frozen=True, slots=True)
class Line:
    level: str  # panic, fatal, error, warning, info; or CONTINUED (no prefix: the rest of the line before)
    text: str


#: The level of a line ffmpeg printed without a prefix: the rest of the line before it (a newline inside a value).
CONTINUED = "continued"


def split_level(raw: str) -> Line:
    """One line of ``-loglevel level+info`` output: its level and text (an unprefixed line is :data:`CONTINUED`)."""
    match = _LEVEL.match(raw)
    if match is None:
        return Line(CONTINUED, raw)
    return Line(match.group(1), match.group(2))


def is_problem(line: Line) -> bool:
    return line.level in ("panic", "fatal", "error")


def is_mapping(text: str) -> bool:
    """True for the line that says which input stream became the output's (the last line of the report)."""
    return _MAPPING.match(text) is not None


@dataclass(frozen=True, slots=True)
class Report:
    """What ffmpeg reported: the media facts, and the index (among all streams) of the audio stream it took."""

    info: MediaInfo
    mapped: int | None

    @property
    def timeline_known(self) -> bool:
        return timeline_known(self.info)


def timeline_known(info: MediaInfo) -> bool:
    """True when a late audio stream can be found without ffprobe: a container whose timeline ffmpeg keeps, or a
    file with one audio stream and nothing else (its audio starts where the container does)."""
    return info.format_name in TIMELINE_FORMATS or (len(info.audio) == 1 and info.streams == 1)


def channels(layout: str) -> int:
    """``stereo`` → 2, ``5.1(side)`` → 6, ``22.2`` → 24, ``3 channels`` → 3; 0 when unknown."""
    layout = layout.strip()
    if layout in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[layout]
    if m := re.match(r"^(\d+) channels\b", layout):
        return int(m.group(1))
    if m := re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", layout):
        return sum(int(g) for g in m.groups() if g)
    name = layout.split("(")[0]
    return _LAYOUT_CHANNELS.get(name, 0)


def _seconds_ms(hours: str, minutes: str, seconds: str) -> int:
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def _audio(position: int, index: int, language: str, details: str) -> AudioStream:
    codec = _CODEC.match(details)
    rate = _RATE.search(details)
    bitrate = _BITRATE.search(details)
    layout = details[rate.end() + 2 :].split(",")[0] if rate else ""
    return AudioStream(
        position=position,
        index=index,
        codec=codec.group(1) if codec else "unknown",
        channels=channels(layout),
        sample_rate=int(rate.group(1)) if rate else 0,
        language=language,
        start_ms=0,  # not reported: see the module docstring
        default="(default)" in details,
        bit_rate=int(bitrate.group(1)) * 1000 if bitrate else 0,
    )


def parse_report(path: Path, lines: Iterable[str]) -> Report | None:
    """The ``[info]`` lines of one ffmpeg run (level tags removed) → Report; None when there is no input dump."""
    format_name: str | None = None
    duration_ms = 0
    start_ms = 0
    audio: list[AudioStream] = []
    subtitles: list[str] = []
    subtitle_kinds: list[frozenset[str]] = []
    last_kind = ""
    streams = 0
    mapped: int | None = None
    in_input = False
    seen: set[int] = set()
    for line in lines:
        if format_name is None:
            if m := _INPUT.match(line):
                format_name, in_input = m.group(1), True
            continue
        if m := _MAPPING.match(line):
            if mapped is None:  # the one output stream's line (what follows the report is not read for it)
                mapped = int(m.group(1))
            in_input = False
            continue
        if not in_input:
            continue
        if line.startswith(("Output #", "Stream mapping:")):
            in_input = False
        elif m := _DURATION.match(line):
            if m.group(2) is not None:
                duration_ms = _seconds_ms(m.group(2), m.group(3), m.group(4))
            if m.group(5) is not None:
                start_ms = round(float(m.group(5)) * 1000)
        elif m := _STREAM.match(line):
            index, language, kind, details = int(m.group(1)), (m.group(2) or "").lower(), m.group(3), m.group(4)
            if index in seen:
                return None  # named twice: not read (see the module docstring)
            seen.add(index)
            streams += "(attached pic)" not in details  # a cover picture has no timeline of its own
            if kind == "Audio":
                audio.append(_audio(len(audio), index, language, details))
            elif kind == "Subtitle":
                subtitles.append(language)
                subtitle_kinds.append(report_kinds(details))
            last_kind = kind
        elif (m := _STREAM_TITLE.match(line)) and last_kind == "Subtitle":
            subtitle_kinds[-1] |= title_kinds(m.group(1))
    if format_name is None:
        return None
    info = MediaInfo(
        path=path,
        format_name=format_name,
        duration_ms=duration_ms,
        start_ms=start_ms,
        audio=tuple(audio),
        subtitles=tuple(subtitles),
        subtitle_kinds=tuple(subtitle_kinds),
        streams=streams,
    )
    return Report(info, mapped)

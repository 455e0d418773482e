"""Speech activity, the pure core: per-frame speech decisions in, speech intervals (int ms) out; and their sidecar form.

A detector (:mod:`funasr_subs.media.vad`) decides for every frame (10-30 ms) whether it holds speech. Single decisions
flicker: a stop consonant or a breath between words reads as silence, a click as speech. :class:`Smoother` turns
the stream of decisions into intervals, as they arrive and in constant memory: runs of speech separated by less
than ``merge_gap_ms`` are one interval, and an interval shorter than ``min_speech_ms`` is dropped.

In the sidecar the intervals are a compact list, ``{"format": 1, "detector": ..., "frame_ms": 30, "intervals":
[[start_ms, end_ms], ...]}``, read back by :func:`speech_from_json` as hostile input (types, order, ranges, size).
The speech band's level per frame (:mod:`funasr_subs.media.level`), when kept, rides along as ``"level":
{"at_ms": ..., "zlib": base64}`` (one byte a frame, compressed; a reader that does not know it ignores it).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

log = logging.getLogger(__name__)

Interval = tuple[int, int]  # (start_ms, end_ms), end exclusive

#: The sidecar's ``speech.format`` this code writes and reads.
SPEECH_FORMAT = 1
#: Bounds for intervals read from a sidecar: a week of audio, a speech change every 100 ms of it at most.
MAX_MS = 7 * 86_400_000
MAX_INTERVALS = MAX_MS // 100
#: The frames a level may be kept in (ms): WebRTC's detector's (the level is measured on its frames).
LEVEL_FRAME_MS = (10, 20, 30)
_SPEECH_RUN = re.compile(rb"[^\x00]+")  # a run of frames heard as speech, in a string of one byte per decision


@dataclass(frozen=True)
class Rules:
    """How frame decisions become intervals."""

    frame_ms: int = 30
    min_speech_ms: int = 150  # shorter runs (after merging) are dropped: clicks, a knock, a note's attack
    merge_gap_ms: int = 90  # shorter gaps are bridged: closures and breaths inside a phrase


@dataclass(frozen=True)
class Level:
    """The speech band's level (:func:`funasr_subs.media.level.band_levels`): one byte per ``frame_ms``, the first
    frame starting at ``at_ms``."""

    values: bytes
    frame_ms: int
    at_ms: int = 0


@dataclass(frozen=True)
class Speech:
    """Where speech was heard, in ms of the audio's own timeline (the sidecar stores it in the media's)."""

    intervals: tuple[Interval, ...]
    detector: str
    frame_ms: int
    level: Level | None = None

    def shifted(self, offset_ms: int) -> Speech:
        """The same intervals ``offset_ms`` later (negative: earlier; a start before 0 becomes 0)."""
        moved = ((max(0, s + offset_ms), e + offset_ms) for s, e in self.intervals)
        level = self.level
        if level is not None:
            level = Level(level.values, level.frame_ms, level.at_ms + offset_ms)
        return Speech(tuple((s, e) for s, e in moved if e > s), self.detector, self.frame_ms, level)

    @property
    def speech_ms(self) -> int:
        return sum(e - s for s, e in self.intervals)


class Smoother:
    """Frame decisions in (``push``), intervals out (``finish``); memory grows only with the intervals kept."""

    def __init__(self, rules: Rules = Rules()) -> None:
        self.rules = rules
        self._frame = 0  # frames seen
        self._run_start: int | None = None  # first frame of the speech run in progress
        self._pending: tuple[int, int] | None = None  # the last closed run (frames), which the next may join
        self._out: list[Interval] = []
        self._gap_frames = -(-rules.merge_gap_ms // rules.frame_ms)  # a gap this long or longer separates
        self._min_frames = -(-rules.min_speech_ms // rules.frame_ms)

    def push(self, speech: bool) -> None:
        """One frame's decision."""
        if speech:
            if self._run_start is None:
                self._run_start = self._frame
        elif self._run_start is not None:
            self._close(self._run_start, self._frame)
            self._run_start = None
        self._frame += 1

    def extend(self, decisions: Iterable[bool]) -> None:
        for speech in decisions:
            self.push(speech)

    def push_frames(self, decisions: bytes) -> None:
        """Many frames' decisions at once, a byte each (0: no speech): the same as ``push`` for each, but the runs
        are found by the regex engine, not a Python loop (120,000 frames an hour)."""
        base, count = self._frame, len(decisions)
        if count == 0:
            return
        left_open, self._run_start = self._run_start, None
        for run in _SPEECH_RUN.finditer(decisions):
            start = base + run.start()
            if left_open is not None:  # the run the last call left open: continued here, or ended at its first frame
                if run.start() == 0:
                    start = left_open
                else:
                    self._close(left_open, base)
                left_open = None
            if run.end() == count:
                self._run_start = start  # still open: the next call may continue it
            else:
                self._close(start, base + run.end())
        if left_open is not None:  # no speech at all in this call
            self._close(left_open, base)
        self._frame += count

    def _close(self, start: int, end: int) -> None:
        pending = self._pending
        if pending is not None and start - pending[1] < self._gap_frames:
            self._pending = (pending[0], end)
            return
        self._emit()
        self._pending = (start, end)

    def _emit(self) -> None:
        pending = self._pending
        if pending is not None and pending[1] - pending[0] >= self._min_frames:
            step = self.rules.frame_ms
            self._out.append((pending[0] * step, pending[1] * step))
        self._pending = None

    def finish(self) -> tuple[Interval, ...]:
        """The intervals of everything pushed (a run still open ends with the last frame)."""
        if self._run_start is not None:
            self._close(self._run_start, self._frame)
            self._run_start = None
        self._emit()
        return tuple(self._out)


def intervals_of(decisions: Iterable[bool], rules: Rules = Rules()) -> tuple[Interval, ...]:
    """The speech intervals of a whole sequence of frame decisions."""
    smoother = Smoother(rules)
    smoother.extend(decisions)
    return smoother.finish()


def without_words(
    speech: Iterable[Interval], tokens: Iterable[Interval], *, reach_ms: int = 1000, min_ms: int = 5000
) -> list[Interval]:
    """Stretches of heard speech that no token covers: speech the recogniser returned no words for (FunASR loses
    parts of long files silently). A token covers ``reach_ms`` on either side of its own times (its times hide
    pauses and words run on); what is left of the speech, joined across gaps under ``reach_ms``, counts when it
    holds at least ``min_ms`` of speech. Both inputs sorted by start; pure, linear in their length."""
    covered: list[Interval] = []
    for start, end in tokens:
        lo, hi = start - reach_ms, end + reach_ms
        if covered and lo <= covered[-1][1]:
            covered[-1] = (covered[-1][0], max(covered[-1][1], hi))
        else:
            covered.append((lo, hi))
    bare: list[Interval] = []  # speech minus the covered time
    at = 0
    for start, end in speech:
        while at < len(covered) and covered[at][1] <= start:
            at += 1
        cursor, k = start, at
        while k < len(covered) and covered[k][0] < end:
            if covered[k][0] > cursor:
                bare.append((cursor, covered[k][0]))
            cursor = max(cursor, covered[k][1])
            k += 1
        if cursor < end:
            bare.append((cursor, end))
    out: list[Interval] = []
    heard: list[int] = []
    for start, end in bare:
        if out and start - out[-1][1] < reach_ms:
            out[-1] = (out[-1][0], end)
            heard[-1] += end - start
        else:
            out.append((start, end))
            heard.append(end - start)
    return [stretch for stretch, ms in zip(out, heard, strict=True) if ms >= min_ms]


def speech_to_json(speech: Speech) -> dict[str, Any]:
    """The sidecar form (compact: a list of [start_ms, end_ms] integer pairs)."""
    out: dict[str, Any] = {
        "format": SPEECH_FORMAT,
        "detector": speech.detector,
        "frame_ms": speech.frame_ms,
        "intervals": [[s, e] for s, e in speech.intervals],
    }
    if speech.level is not None:
        packed = base64.b64encode(zlib.compress(speech.level.values, 9)).decode("ascii")
        out["level"] = {"at_ms": speech.level.at_ms, "zlib": packed}
    return out


def speech_from_json(value: Any) -> Speech | None:
    """The speech intervals recorded in a sidecar, checked as hostile input: ValueError says what is wrong. None
    for a format this version does not know (a newer funasr-subs wrote it; logged)."""
    if not isinstance(value, Mapping):
        raise ValueError("speech is not an object")
    if value.get("format") != SPEECH_FORMAT:
        log.warning("warning: the sidecar's speech activity is in format %r, which this version does not read; "
                    "it is ignored", value.get("format"))  # fmt: skip
        return None
    frame_ms, detector, raw = value.get("frame_ms"), value.get("detector", ""), value.get("intervals")
    if not _is_int(frame_ms) or not 1 <= frame_ms <= 1000:
        raise ValueError(f"speech frame_ms {frame_ms!r} is not a whole number of 1-1000 ms")
    if not isinstance(detector, str) or len(detector) > 200:
        raise ValueError("speech detector is not a short text")
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS:
        raise ValueError("speech intervals are not a list of at most one a 100 ms")
    intervals: list[Interval] = []
    previous_end = 0
    for pair in raw:
        if not (isinstance(pair, list) and len(pair) == 2 and _is_int(pair[0]) and _is_int(pair[1])):
            raise ValueError(f"speech interval {_short(pair)} is not a [start_ms, end_ms] pair of integers")
        start, end = pair
        if not (previous_end <= start < end <= MAX_MS):
            raise ValueError(f"speech interval {_short(pair)} is out of order or out of range")
        intervals.append((start, end))
        previous_end = end
    level = _level_from_json(value["level"], frame_ms) if value.get("level") is not None else None
    return Speech(tuple(intervals), detector, frame_ms, level)


def _level_from_json(value: Any, frame_ms: int) -> Level:
    """The level recorded beside the intervals, checked as hostile input (at most a week of frames unpacked)."""
    if not isinstance(value, Mapping) or not _is_int(value.get("at_ms")) or not isinstance(value.get("zlib"), str):
        raise ValueError("speech level is not an object with at_ms and zlib")
    at_ms, packed = value["at_ms"], value["zlib"]
    if frame_ms not in LEVEL_FRAME_MS:  # (a 1 ms "frame" let 0.8 MB of zlib unpack to 600 MB, and sync take 17 GB)
        raise ValueError(f"speech level frames of {frame_ms} ms, not a detector's ({LEVEL_FRAME_MS})")
    most = MAX_MS // frame_ms
    if not -MAX_MS <= at_ms <= MAX_MS or len(packed) > 2 * most:
        raise ValueError("speech level is out of range or too long")
    try:
        unpacker = zlib.decompressobj()
        values = unpacker.decompress(base64.b64decode(packed, validate=True), most + 1)
    except (binascii.Error, zlib.error) as e:
        raise ValueError(f"speech level is not base64 of zlib data: {e}") from None
    if len(values) > most or unpacker.unconsumed_tail or not unpacker.eof:
        raise ValueError("speech level is longer than a week of frames, or cut short")
    return Level(values, frame_ms, at_ms)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

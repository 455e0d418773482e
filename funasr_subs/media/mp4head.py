"""The head of the fragmented mp4 we send (``--send mp4``): its encoder delay read and taken out of the edit list.

A lossy encoder starts with priming samples (AAC: usually 1024, MP3: 1105 with LAME's padding). A regular mp4 hides
them with an edit list whose ``media_time`` skips them, and every player honours it. In a *fragmented* mp4 (all we can
stream through a pipe) FFmpeg's reader keeps the edit list's shift but no longer discards the samples, so a server
that decodes our upload hears the priming as audio and every time it reports is late by it (AAC at 22.05 kHz: 46 ms).

So the stream goes out with ``media_time`` 0 (every decoder then decodes the priming, whatever its FFmpeg version
does with fragmented edit lists) and the caller moves the reply's times back by the priming read here. Pure functions
on bytes; only the ``moov`` box at the start of the stream is read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"edts"})


@dataclass(frozen=True, slots=True)
class Priming:
    """The encoder delay found (and zeroed) in a stream's edit list: ``samples`` in ``timescale`` units per second."""

    samples: int = 0
    timescale: int = 0
    delay_ms: int = 0  # an empty edit before the media: the audio starts this late on the container's timeline

    @property
    def ms(self) -> int:
        return round(self.samples * 1000 / self.timescale) if self.timescale > 0 else 0


def _boxes(data: bytearray, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in ``data[start:end]``; stops at a box that does not fit."""
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def _timescale(data: bytearray, start: int, end: int) -> int:
    if end - start < 4:
        return 0
    version = data[start]
    at = start + (20 if version == 1 else 12)
    return int(struct.unpack_from(">I", data, at)[0]) if at + 4 <= end else 0


def _edits(data: bytearray, start: int, end: int, zero: bool) -> tuple[int, int]:
    """(empty edits' duration in the movie's timescale, the first real entry's media_time); the media_time zeroed
    when ``zero``. An empty edit (media_time -1) is a start delay; the first real one holds the priming."""
    if end - start < 8:
        return 0, 0
    version = data[start]
    count = struct.unpack_from(">I", data, start + 4)[0]
    entry, dur_fmt, time_fmt, offset = (20, ">Q", ">q", 8) if version == 1 else (12, ">I", ">i", 4)
    pos = start + 8
    delay = 0
    for _ in range(count):
        if pos + entry > end:
            return delay, 0
        media_time = int(struct.unpack_from(time_fmt, data, pos + offset)[0])
        if media_time >= 0:
            if media_time > 0 and zero:
                struct.pack_into(time_fmt, data, pos + offset, 0)
            return delay, media_time
        delay += int(struct.unpack_from(dur_fmt, data, pos)[0])
        pos += entry
    return delay, 0


def strip_priming(head: bytes, *, zero: bool = True) -> tuple[bytes, Priming]:
    """``head`` (the stream's first chunk, holding ``ftyp`` and ``moov``) with the edit list's skip set to 0 (unless
    not ``zero``: Opus, whose decoder skips its pre-roll itself), the priming it held and the start delay. A head
    without a ``moov`` or an edit list comes back unchanged with ``Priming()``."""
    data = bytearray(head)
    movie_scale = 0
    timescale = 0
    skipped = 0
    delay = 0
    seen_elst = False

    def walk(start: int, end: int) -> None:
        nonlocal movie_scale, timescale, skipped, delay, seen_elst
        for kind, payload, box_end in _boxes(data, start, end):
            if kind in _CONTAINERS:
                walk(payload, box_end)
            elif kind == b"mvhd" and not movie_scale:
                movie_scale = _timescale(data, payload, box_end)
            elif kind == b"mdhd" and not timescale:
                timescale = _timescale(data, payload, box_end)
            elif kind == b"elst" and not seen_elst:
                seen_elst = True
                delay, skipped = _edits(data, payload, box_end, zero)
            if kind == b"moov":
                return  # one track; everything after the moov is media

    walk(0, len(data))
    delay_ms = round(delay * 1000 / movie_scale) if movie_scale > 0 else 0
    if skipped <= 0 or timescale <= 0:
        return head, Priming(delay_ms=delay_ms)
    if not zero:
        return head, Priming(delay_ms=delay_ms)
    return bytes(data), Priming(skipped, timescale, delay_ms)

"""When each cue shows: speech start, linger, minimum duration, reading speed, gaps, chaining, frame snapping."""

from __future__ import annotations

import math
from collections.abc import Sequence

from funasr_subs.cues.settings import CueSettings

#: Gaps shorter than this (after lingering) are closed to exactly ``min_gap`` ("chaining", Netflix: 3-11 frames).
CHAIN_MS = 500
#: A cue never stays longer than this after its speech ends, whatever the reading speed asks for.
MAX_STAY_MS = 1500


def assign_times(
    speech: Sequence[tuple[int, int]],
    reading: Sequence[float],
    lone: Sequence[bool],
    settings: CueSettings,
) -> list[tuple[int, int]]:
    """Display times for cues whose speech spans ``speech`` (sorted by start, each start <= end).

    ``reading`` is each cue's reading length in characters, ``lone`` whether the cue holds a single token (the only
    case allowed to exceed ``max_duration``). The result never overlaps and keeps at least ``min_gap`` between cues.
    """
    n = len(speech)
    if n == 0:
        return []
    min_gap = max(settings.min_gap, 0)
    max_dur = max(settings.max_duration, 1)
    stay = max(MAX_STAY_MS, settings.linger)
    starts = [max(s, 0) for s, _ in speech]
    out: list[tuple[int, int]] = []
    for k in range(n):
        start = starts[k]
        speech_end = max(speech[k][1], start)
        want = speech_end + max(settings.linger, 0)
        need = start + max(settings.min_duration, _reading_ms(reading[k], settings.max_cps))
        if need > want:
            want = min(need, speech_end + stay)
        cap = start + max_dur
        if speech_end - start > max_dur and lone[k]:
            cap = speech_end
        want = max(min(want, cap), start + 1)
        end = want
        if k + 1 < n:
            nxt = starts[k + 1]
            limit = nxt - min_gap
            if end > limit:
                end = limit  # speech runs into the next cue: keep the gap
            elif nxt - end < CHAIN_MS:
                end = min(limit, cap, max(end, speech_end + stay))  # chain: close the gap to exactly min_gap
            if end <= start:  # the next cue starts (almost) with this one: push it back a little
                end = start + 1
                starts[k + 1] = end + min_gap
        out.append((start, end))
    if settings.fps:
        out = snap_to_frames(out, settings, [lone[k] and speech[k][1] - speech[k][0] > max_dur for k in range(n)])
    return out


def _reading_ms(chars: float, cps: float) -> int:
    if cps <= 0:
        return 0
    return math.ceil(chars * 1000 / cps)


def _frame_ms(frame: int, fps: float) -> int:
    return math.floor(frame * 1000 / fps + 0.5)


def snap_to_frames(
    times: list[tuple[int, int]], settings: CueSettings, long_ok: Sequence[bool]
) -> list[tuple[int, int]]:
    """Move every time to the nearest frame boundary, keeping gaps of at least ``min_gap`` and no overlaps."""
    fps = float(settings.fps or 0)
    if fps <= 0:
        return times
    gap_frames = math.ceil(max(settings.min_gap, 0) * fps / 1000 - 1e-9)
    max_frames = max(1, math.floor(settings.max_duration * fps / 1000 + 1e-9))
    frames = [(math.floor(s * fps / 1000 + 0.5), math.floor(e * fps / 1000 + 0.5)) for s, e in times]
    out: list[tuple[int, int]] = []
    prev_end: int | None = None
    for k, (fs, fe) in enumerate(frames):
        if prev_end is not None:
            fs = max(fs, prev_end + gap_frames)
        fe = max(fe, fs + 1)
        if not long_ok[k]:
            fe = min(fe, fs + max_frames)
        if k + 1 < len(frames):
            limit = frames[k + 1][0] - gap_frames
            if fe > limit:
                fe = max(limit, fs + 1)
        out.append((fs, fe))
        prev_end = fe
    return [(_frame_ms(fs, fps), _frame_ms(fe, fps)) for fs, fe in out]

"""Cue edges on the speech heard in the audio: starts at the speech onset, ends at the offset (pure code).

FunASR's token times hide pauses (docs/speech-activity.md): a token runs on into a pause up to 600 ms, the last
token of a speech segment ends halfway into the silence after it, and the first token after a pause can start where
the one before it ended. A cue timed from its tokens then starts before the speaker does and stays on in silence.
Given the speech intervals a voice-activity detector heard (:mod:`funasr_subs.media.activity`), each cue's *speech
span* is moved to the speech before the display rules (linger, minimum duration, reading speed, gaps, chaining,
frames: :mod:`.timing`) are applied to it, so those rules hold exactly as they do without the audio.

Bounded, so that a detector's mistake (a pause it bridged in music, a word it missed) costs little:

- a **start** in silence moves later to the next onset, at most :data:`WINDOW_MS` away and inside the cue's first
  token (that token's sound is in its time span); a start inside speech moves earlier to where that speech began,
  at most :data:`WINDOW_MS` back and never before the previous cue's speech ends (speech that began longer ago is the
  previous sentence running on, a pause the detector bridged: the start stays);
- an **end** in silence moves earlier to the last offset, but not before the cue's last token starts (its sound
  ends after that: the halfway-into-silence run-on is undone however long it is); an end inside speech stays;
- a move of :data:`TOLERANCE_MS` or less is not made (it is within the detector's own resolution);
- a cue's speech is not made longer than the longest cue (``max_duration``) unless its tokens' span is already;
- a start moved later leaves the cue the room its tokens gave it before the next cue's tokens, one moved earlier
  the room the cue before it had (``room_ms``: the shortest cue and the gap after it): no cue is cut below the
  shortest duration because a start moved.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

Interval = tuple[int, int]  # (start_ms, end_ms), end exclusive, sorted and not overlapping

#: FunASR caps a token at 600 ms: a start drawn from a token is at most one token's run-on from its sound, so an
#: onset further away than that is other speech.
WINDOW_MS = 600
#: Two of the detector's 30 ms frames: differences this small are its resolution, not a mistake of the tokens.
TOLERANCE_MS = 60


@dataclass(frozen=True, slots=True)
class Spoken:
    """One cue's speech as its tokens tell it: its first token's times and its last token's."""

    start: int
    first_end: int
    last_start: int
    end: int


def on_speech(
    spans: Sequence[Spoken],
    speech: Sequence[Interval],
    *,
    longest_ms: int = 7000,
    window_ms: int = WINDOW_MS,
    tolerance_ms: int = TOLERANCE_MS,
    room_ms: int = 0,
) -> list[Interval]:
    """Each cue's (start, end) of speech, moved to the heard speech where the tokens say otherwise (see the module
    docstring). ``spans`` in order; the result keeps that order, and every end stays after its start. A span is
    never made longer than ``longest_ms`` (the cues' ``max_duration``) unless its tokens' span is already; a start
    moved later keeps ``room_ms`` before the next span's start, one moved earlier after the previous span's, where
    the tokens' start had it. With no
    ``speech`` the spans' own times come back. Linear in the two lengths (with a binary search per cue)."""
    if not speech:
        return [(s.start, s.end) for s in spans]
    onsets = [a for a, _ in speech]
    out: list[Interval] = []
    floor = -1  # the previous cue's speech end: a start never moves before it
    for k, span in enumerate(spans):
        start = _start(span, speech, onsets, floor, window_ms)
        if abs(start - span.start) <= tolerance_ms:
            start = span.start
        if start > span.start and k + 1 < len(spans):  # (a cue after it: its room before that one is kept)
            start = max(span.start, min(start, spans[k + 1].start - room_ms))
        elif start < span.start and out:  # (a cue before it: the room that one had is kept)
            start = min(span.start, max(start, out[-1][0] + room_ms))
        end = _end(span, speech, onsets, start)
        if abs(end - span.end) <= tolerance_ms:
            end = span.end
        if end <= start:  # only when nothing moved: a token span of zero length
            end = max(span.end, start)
        start = max(start, end - max(longest_ms, span.end - span.start))  # never before the tokens' start then
        out.append((start, end))
        floor = end
    return out


def _start(span: Spoken, speech: Sequence[Interval], onsets: list[int], floor: int, window_ms: int) -> int:
    at = span.start
    k = bisect_right(onsets, at) - 1  # the last interval that begins at or before the start
    if k >= 0 and speech[k][1] > at:  # inside speech: where it began, when that is near and after the last cue
        onset = speech[k][0]
        return onset if at - onset <= window_ms and onset >= floor else at
    if k + 1 < len(speech):  # in silence: the next onset, when it is near and inside the first token
        onset = speech[k + 1][0]
        if onset - at <= window_ms and onset < span.first_end:
            return onset
    return at


def _end(span: Spoken, speech: Sequence[Interval], onsets: list[int], start: int) -> int:
    at = span.end
    k = bisect_left(onsets, at) - 1  # the last interval that begins before the end
    if k < 0 or speech[k][1] >= at:  # no speech before it (the detector missed it), or the end is in speech
        return at
    offset = speech[k][1]
    return offset if offset > max(start, span.last_start) else at

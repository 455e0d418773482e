"""Cue building: tokens with times in, readable subtitles out (pure code: no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from funasr_subs.cues.layout import break_lines, prepare
from funasr_subs.cues.segment import segment
from funasr_subs.cues.settings import PROFILES, CueSettings
from funasr_subs.cues.text import reading_length
from funasr_subs.cues.timing import assign_times
from funasr_subs.model import Cue, Token

__all__ = ["PROFILES", "CueSettings", "build_cues"]


def build_cues(tokens: Sequence[Token], settings: CueSettings) -> list[Cue]:
    """Group tokens into timed cues of at most ``settings.max_lines`` lines of ``settings.max_width``.

    Every token appears in exactly one cue, in order. Breaks go at sentence ends, then at pauses longer than
    ``settings.pause``, then at clause marks, then at the best word boundary; lines are balanced (bottom-heavy).
    Times start at the first token, linger into free time, are extended for reading, keep ``min_gap`` between
    cues and never overlap. Linear in the number of tokens.
    """
    tokens = [t for t in tokens if t.text.strip()]
    if not tokens:
        return []
    prep = prepare(tokens, settings)
    spans = segment(prep, settings)
    lines = [break_lines(prep, i, j, settings.max_lines) for i, j in spans]
    speech = [(prep.starts[i], prep.ends[j]) for i, j in spans]
    reading = [reading_length("".join(ls), settings.profile) for ls in lines]
    lone = [i == j for i, j in spans]
    times = assign_times(speech, reading, lone, settings)
    return [Cue(start, end, ls) for (start, end), ls in zip(times, lines, strict=True)]

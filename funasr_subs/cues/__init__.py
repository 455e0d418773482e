"""Cue building: tokens with times in, readable subtitles out (pure code: no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from funasr_subs.cues.edges import Spoken, on_speech
from funasr_subs.cues.karaoke import line_words
from funasr_subs.cues.layout import break_lines, prepare
from funasr_subs.cues.script import SCRIPTS
from funasr_subs.cues.segment import segment
from funasr_subs.cues.settings import LAYOUTS, PROFILES, CueSettings
from funasr_subs.cues.text import reading_length
from funasr_subs.cues.timing import assign_times
from funasr_subs.cues.words import words_and_bonds
from funasr_subs.errors import ConfigError
from funasr_subs.model import Cue, Token

__all__ = ["LAYOUTS", "PROFILES", "CueSettings", "build_cues", "validate"]


def validate(settings: CueSettings) -> None:
    """ConfigError naming the option when a number makes no sense (the engine itself tolerates anything else)."""
    problems = [
        ("--max-width", settings.max_width > 0, "must be more than 0"),
        ("--max-lines", settings.max_lines >= 1, "must be at least 1"),
        ("--min-duration", settings.min_duration >= 0, "must not be negative"),
        ("--max-duration", settings.max_duration > 0, "must be more than 0"),
        ("--min-gap", settings.min_gap >= 0, "must not be negative"),
        ("--max-cps", settings.max_cps >= 0, "must not be negative (0 turns the reading-speed rule off)"),
        ("--pause", settings.pause >= 0, "must not be negative"),
        ("--linger", settings.linger >= 0, "must not be negative"),
        ("--fps", settings.fps is None or 10 <= settings.fps <= 1000, "must be a frame rate of 10-1000 (23.976, 25)"),
        ("--punctuation", settings.punctuation in ("keep", "space"), "must be keep or space"),
        ("--verbatim", isinstance(settings.verbatim, bool), "must be true or false"),
        ("--profile", settings.profile in PROFILES, f"must be one of {', '.join(PROFILES)}"),
        ("--latin-spacing", settings.latin_spacing in ("none", "space"), "must be none or space"),
        ("--script", settings.script in SCRIPTS, f"must be one of {', '.join(SCRIPTS)}"),
    ]
    for flag, ok, what in problems:
        if not ok:
            raise ConfigError(f"{flag} {what}")


def build_cues(
    tokens: Sequence[Token],
    settings: CueSettings,
    *,
    words: bool = False,
    speech: Sequence[tuple[int, int]] = (),
) -> list[Cue]:
    """Group tokens into timed cues of at most ``settings.max_lines`` lines of ``settings.max_width``.

    Tokens are first grouped into display words (:func:`.words.to_words`: Chinese word segmentation, numbers,
    spelled letters, the user's spelling, the display script); every break falls between words. Breaks go at
    sentence ends, then at pauses longer than ``settings.pause``, then at clause marks, then at the best word
    boundary; lines are balanced (bottom-heavy).
    Times start at the first token, linger into free time, are extended for reading, keep ``min_gap`` between
    cues and never overlap. Linear in the number of tokens. ``words``: each cue also keeps the words of its lines
    with their speech times (``Cue.words``, for karaoke). ``speech``: where speech was heard in the audio (sorted
    (start_ms, end_ms) intervals in the tokens' timeline); each cue's speech then starts at the onset and ends at
    the offset where its tokens say otherwise (:mod:`.edges`), before the display rules time it.
    """
    validate(settings)
    tokens, bonds = words_and_bonds([t for t in tokens if t.text.strip()], settings)
    if not tokens:
        return []
    prep = prepare(tokens, settings, bonds)
    spans = segment(prep, settings)
    lines = [break_lines(prep, i, j, settings.max_lines) for i, j in spans]
    spoken = [Spoken(prep.starts[i], prep.ends[i], prep.starts[j], prep.ends[j]) for i, j in spans]
    room = max(settings.min_duration, 0) + max(settings.min_gap, 0)
    heard = on_speech(spoken, speech, longest_ms=settings.max_duration, room_ms=room)
    reading = [reading_length("".join(ls), settings.profile) for ls in lines]
    lone = [i == j for i, j in spans]
    times = assign_times(heard, reading, lone, settings)
    if words:
        return [
            Cue(start, end, ls, line_words(prep, i, j, ls))
            for (start, end), ls, (i, j) in zip(times, lines, spans, strict=True)
        ]
    return [Cue(start, end, ls) for (start, end), ls in zip(times, lines, strict=True)]

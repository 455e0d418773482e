"""The cue engine's timing rules: start at speech, linger, minimum duration, reading speed, chaining, frames."""

from __future__ import annotations

from itertools import pairwise

import pytest

from funasr_subs.cues import CueSettings, build_cues
from funasr_subs.cues.timing import CHAIN_MS, MAX_STAY_MS, assign_times
from funasr_subs.model import Token

#: The engine's mechanics in the two-line form with the recogniser's punctuation (the form before 2026-12); the
#: default one-line form is tested in tests/test_cues_form.py.
ZH = CueSettings.for_profile("zh", "asr")


def sentence(text: str, start: int, step: int = 250) -> list[Token]:
    """One token per character, back to back, the last one closing the sentence with 。."""
    toks = [Token(ch, start + i * step, start + (i + 1) * step) for i, ch in enumerate(text)]
    last = toks[-1]
    toks[-1] = Token(last.text, last.start_ms, last.end_ms, "。")
    return toks


def times(
    speech: list[tuple[int, int]], chars: list[float] | None = None, settings: CueSettings = ZH
) -> list[tuple[int, int]]:
    return assign_times(speech, chars or [0.0] * len(speech), [False] * len(speech), settings)


def test_cue_starts_at_its_first_token_and_lingers_into_free_time() -> None:
    cues = build_cues(sentence("今天天气很好", 1000) + sentence("我们出去走走吧", 6000), ZH)
    assert [(c.start_ms, c.end_ms) for c in cues] == [(1000, 2500 + 500), (6000, 7750 + 500)]


def test_linger_stops_min_gap_before_the_next_cue_and_small_gaps_chain() -> None:
    # 700 ms of silence: lingering 500 ms leaves 200 ms < CHAIN_MS, so the gap closes to exactly min_gap
    assert times([(0, 2000), (2700, 4000)]) == [(0, 2700 - 83), (2700, 4500)]
    # 1200 ms of silence: after lingering, 700 ms remain, more than CHAIN_MS: left alone
    assert times([(0, 2000), (3200, 4000)]) == [(0, 2500), (3200, 4500)]
    assert CHAIN_MS == 500


def test_short_cues_reach_the_minimum_duration_when_there_is_room() -> None:
    no_linger = CueSettings.for_profile("zh", "asr", linger=0)
    assert times([(0, 300)], settings=no_linger) == [(0, 833)]
    assert times([(0, 300), (600, 2000)], settings=no_linger) == [(0, 600 - 83), (600, 2000)]


def test_reading_speed_extends_a_fast_cue_up_to_the_stay_limit() -> None:
    # 18 characters at 9 cps need 2000 ms; the speech took 1000 ms
    assert times([(0, 1000)], [18.0]) == [(0, 2000)]
    # 36 characters need 4000 ms, but a cue stays at most MAX_STAY_MS after its speech
    assert times([(0, 1000)], [36.0]) == [(0, 1000 + MAX_STAY_MS)]
    # the next cue comes first
    assert times([(0, 1000), (1600, 3000)], [18.0, 4.0]) == [(0, 1600 - 83), (1600, 3500)]


def test_lingering_never_passes_the_maximum_duration() -> None:
    assert times([(0, 6900)], [10.0]) == [(0, 7000)]


def test_touching_speech_is_cut_to_keep_the_gap_never_overlapping() -> None:
    assert times([(0, 2000), (2000, 3000)]) == [(0, 2000 - 83), (2000, 3500)]
    squeezed = times([(0, 0), (0, 0), (0, 10), (5, 5)])
    for (s1, e1), (s2, _) in pairwise(squeezed):
        assert s1 < e1 and s2 - e1 >= 83


@pytest.mark.parametrize("fps", [23.976, 25.0, 29.97, 60.0])
def test_frame_snapping_puts_every_time_on_a_frame_and_keeps_gaps(fps: float) -> None:
    toks = sentence("第一句话在这里", 1013) + sentence("第二句紧跟着", 2790) + sentence("第三句", 9000, step=90)
    cues = build_cues(toks, CueSettings.for_profile("zh", "asr", fps=fps))
    frame = 1000 / fps
    for cue in cues:
        for t in (cue.start_ms, cue.end_ms):
            assert abs(t / frame - round(t / frame)) * frame <= 0.5 + 1e-6, (t, fps)
        assert cue.end_ms - cue.start_ms <= 7000
    for a, b in pairwise(cues):
        assert b.start_ms - a.end_ms >= 83
    assert abs(cues[0].start_ms - 1013) <= frame / 2 + 1


def test_a_pause_absorbed_into_the_first_token_does_not_start_the_cue_early() -> None:
    """FunASR #2091: the silence before a sentence ends up inside its first token ([1000, 4000] for one character)."""
    toks = [Token("好", 1000, 4000), Token("的", 4000, 4250, "。")]
    toks += [Token(ch, 4250 + i * 250, 4500 + i * 250) for i, ch in enumerate("我们开始吧")]
    cues = build_cues(toks, ZH)
    assert cues[0].start_ms == 3000  # at most 1 s before the first token ends


def test_long_silences_keep_cues_short_and_on_their_speech() -> None:
    toks: list[Token] = []
    t = 0
    for i in range(50):
        toks += sentence("这句话后面是长时间的静音", t)
        t += 3000 + 60_000 * (i % 3)  # up to two minutes of silence
    cues = build_cues(toks, ZH)
    assert len(cues) == 50
    for cue, first in zip(cues, toks[::12], strict=True):
        assert cue.start_ms == first.start_ms
        assert cue.end_ms - cue.start_ms <= 7000
        assert cue.end_ms <= first.start_ms + 12 * 250 + MAX_STAY_MS

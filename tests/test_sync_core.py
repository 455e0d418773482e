"""The sync core on films of generated subtitles: a synthesised reply, distorted times, synced back (no I/O)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from funasr_subs.commands.check import load_cues
from funasr_subs.cues import PROFILES, build_cues
from funasr_subs.cues.script import convert
from funasr_subs.model import Cue, Token, Transcript
from funasr_subs.protocol import parse_reply
from funasr_subs.sync import sync
from funasr_subs.sync.normalise import normalise, timed_units
from funasr_subs.sync.timemap import fit_anchors, viterbi
from tests.replies import read_reply
from tests.sync_data import (
    PAL,
    Distorted,
    cut,
    errors,
    film,
    frame_rate,
    insert,
    offset,
    share_within,
    speech_of,
    speech_tokens,
    translation,
    write_subtitle,
)

#: The styles of people-made Chinese subtitles, each read back from the file format it comes in.
SAME_LANGUAGE = {
    "one line per cue, no punctuation, Latin words, no gaps": (
        film("mixed", gaps="none", punctuation=False),
        ".srt",
    ),
    "gaps between cues": (film("news", seed=2), ".srt"),
    "Traditional script, Simplified speech": (film("talk", seed=3, script="tw"), ".srt"),
    "WebVTT, speaker labels and sound tags": (film("news", seed=4, script="tw", labels=True), ".vtt"),
}
#: A translation timed like the film (the cues' times) against the film's speech.
CROSS_LANGUAGE = {
    "talk, no gaps": film("talk", seed=5, gaps="none", punctuation=False),
    "news, no gaps": film("news", seed=6, gaps="none"),
    "mixed, gaps": film("mixed", seed=7),
}
REPLIES = Path(__file__).parent / "data" / "funasr-responses"
#: Timing-pattern speech is untidier than its cues: late starts, pauses inside cues, speech running on.
UNTIDY = {"lead_ms": 150, "pause": 0.3, "run_on": 0.3}


def read_back(cues: list[Cue], suffix: str, folder: Path) -> list[Cue]:
    """The cues as a user's file of that format gives them (times rounded as the format stores them)."""
    read, _ = load_cues(write_subtitle(folder / f"film{suffix}", cues))
    return [c for c in read if c.text.strip()]


def distortions(cues: list[Cue], tokens: list[Token]) -> list[Distorted]:
    length = cues[-1].end_ms
    return [
        offset(cues, tokens, 60_000),
        offset(cues, tokens, -60_000),
        offset(cues, tokens, 2_345),
        frame_rate(cues, tokens, 1 / PAL, "25 -> 23.976 fps"),
        frame_rate(cues, tokens, PAL, "23.976 -> 25 fps"),
        cut(cues, tokens, length // 2),
        insert(cues, tokens, length // 3),
    ]


def starts_after(case: Distorted, method: str = "auto") -> tuple[list[int], str, int, float]:
    result = sync(case.cues, Transcript("", tuple(case.tokens)), method)  # type: ignore[arg-type]
    assert result.trusted, f"{case.name}: {result.reason}"
    assert result.time_map is not None
    return [p.start_ms for p in result.placements], result.method, len(result.time_map.pieces), result.by_text


@pytest.mark.parametrize("style", SAME_LANGUAGE)
def test_same_language_meets_the_targets(style: str, tmp_path: Path) -> None:
    made, suffix = SAME_LANGUAGE[style]
    cues = read_back(made, suffix, tmp_path)
    assert len(cues) > 100 and cues[-1].end_ms > 7 * 60_000
    tokens = speech_tokens(speech_of(cues), seed=len(style))
    for case in distortions(cues, tokens):
        starts, method, pieces, by_text = starts_after(case)
        assert method == "text", case.name
        # script, numerals, labels and tags normalised away: nearly every cue is found by its words
        assert by_text >= (0.85 if case.edits else 0.9), f"{style}, {case.name}: {by_text:.0%} placed by text"
        within = share_within(errors(starts, case), 100)
        assert within >= 0.97, f"{style}, {case.name}: {within:.1%} of cues within 100 ms"
        away = errors(starts, case, away_ms=5_000)
        assert max(away) <= 500, f"{style}, {case.name}: a cue {max(away)} ms off, away from the edits"
        assert pieces == (2 if case.edits else 1), f"{case.name}: {pieces} pieces"


@pytest.mark.parametrize("name", CROSS_LANGUAGE)
def test_other_language_by_timing_pattern(name: str) -> None:
    said = CROSS_LANGUAGE[name]
    cues = translation(said, seed=len(name))
    tokens = speech_tokens(said, seed=3, **UNTIDY)  # type: ignore[arg-type]
    for case in distortions(cues, tokens):
        starts, method, pieces, _ = starts_after(case)
        assert method == "pattern", case.name
        within = share_within(errors(starts, case), 300)
        assert within >= 0.90, f"{name}, {case.name}: {within:.1%} of cues within 300 ms"
        if case.edits:
            assert pieces == 2, f"{name}, {case.name}: the split was not found"


def test_untrusted_when_the_speech_belongs_to_another_film() -> None:
    cues = translation(film("talk", seed=5, gaps="none"))
    other = speech_tokens(film("news", seed=6, gaps="none"), seed=5, **UNTIDY)  # type: ignore[arg-type]
    result = sync(cues, Transcript("", tuple(other)))
    assert not result.trusted and not result.placements
    assert "is this the right media?" in result.reason
    chinese = film("news", seed=2)
    another = speech_tokens(film("news", seed=8), seed=5)  # the same words, said in another film
    assert not sync(chinese, Transcript("", tuple(another))).trusted


def test_cue_text_and_count_never_change_and_ends_keep_their_length() -> None:
    cues = film("mixed", gaps="none", punctuation=False)
    case = offset(cues, speech_tokens(cues, seed=9), 7_000)
    result = sync(case.cues, Transcript("", tuple(case.tokens)))
    synced = result.cues(case.cues)
    assert [c.lines for c in synced] == [c.lines for c in case.cues]
    for before, after in zip(case.cues[:-1], synced[:-1], strict=True):
        assert after.end_ms - after.start_ms <= before.end_ms - before.start_ms + 100


def test_placed_by_text_share_and_least_sure() -> None:
    cues = film("news", seed=2)
    case = cut(cues, speech_tokens(cues, seed=4), cues[-1].end_ms // 2)
    result = sync(case.cues, Transcript("", tuple(case.tokens)))
    gone = [i for i, t in enumerate(case.truth) if t is None]
    assert gone and 0.8 < result.by_text < 1.0
    assert not any(result.placements[i].by_text for i in gone)  # their speech was cut: nothing to match
    assert set(result.least_sure(3)) <= set(gone)  # the cues of the cut are the least sure
    starts = [p.start_ms for p in result.placements]
    assert starts == sorted(starts)  # squeezed in at the cut, not laid over the cues after it


def test_normalise_script_numerals_and_brackets() -> None:
    assert normalise("這是一百個數據，對吧？") == normalise("这是100个数据对吧")
    assert normalise("[笑] (郭) 百分之五十") == ["5", "0", "%"]
    assert normalise("Excel 文件") == ["excel", "文", "件"]
    units = timed_units(["一", "百", "个"], [0, 100, 200], [100, 200, 300])
    assert units.units == ("1", "0", "0", "个") and units.starts[0] == 0 and units.starts[-1] == 200


def test_viterbi_splits_only_for_enough_evidence() -> None:
    cost = np.array([[0, 9]] * 4 + [[9, 0], [0, 20]] + [[9, 0]] * 3, dtype=np.float64)
    assert viterbi(cost, 100.0).tolist() == [0] * 9  # 3 rows cannot pay for a switch of 100
    assert viterbi(cost, 10.0).tolist() == [0] * 6 + [1] * 3  # one row alone is an outlier, three are a piece
    xs = [float(x) for x in range(0, 600_000, 3000)]
    ys = [x + (20_000 if x >= 300_000 else 0) + (5_000 if i % 17 == 0 else 0) for i, x in enumerate(xs)]
    fit = fit_anchors(xs, ys)
    assert fit is not None and fit.ratio == 1.0
    assert [(at, jump) for at, jump in fit.time_map.splits()] == [(298_500, 20_000)]
    assert sum(not ok for ok in fit.inliers) == len(range(0, len(xs), 17))  # the outliers are found


@pytest.mark.parametrize(
    "name",
    [
        "11_offline_cpp_2025_long_talk_121s.json",
        "13_offline_cpp_2025_news_179s_LOG_TRUNCATED.json",
        "15_offline_cpp_2025_mixed_zh_en_LOG_TRUNCATED.json",
    ],
)
def test_real_reply_against_a_traditional_copy_of_its_own_subtitles(name: str) -> None:
    """Real FunASR token shapes (ITN digits, English words): our own cues, written in Traditional script and 3.3 s
    late, sync back onto the reply they came from."""
    transcript = parse_reply(read_reply(REPLIES / name))
    made = build_cues(transcript.tokens, PROFILES["zh"])
    late = [Cue(c.start_ms + 3_300, c.end_ms + 3_300, tuple(convert(line, "tw") for line in c.lines)) for c in made]
    assert any(c.lines != d.lines for c, d in zip(late, made, strict=True))  # the script really differs
    result = sync(late, transcript)
    assert result.method == "text" and result.by_text >= 0.9
    errs = [abs(p.start_ms - c.start_ms) for p, c in zip(result.placements, made, strict=True)]
    assert share_within(errs, 100) >= 0.97 and max(errs) <= 500


def test_cues_in_any_order_come_back_in_their_order() -> None:
    """ASS files are often sorted by style, not time: the sync must not depend on the order of the events."""
    cues = film("talk", seed=3)
    case = cut(cues, speech_tokens(cues, seed=6), cues[-1].end_ms // 2)
    shuffled = list(range(len(cues)))
    random.Random(1).shuffle(shuffled)
    in_order = sync(case.cues, Transcript("", tuple(case.tokens)))
    mixed = sync([case.cues[i] for i in shuffled], Transcript("", tuple(case.tokens)))
    assert mixed.trusted and [mixed.placements[k] for k in range(len(cues))] == [
        in_order.placements[i] for i in shuffled
    ]

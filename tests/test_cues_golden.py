"""Golden tests: each real FunASR reply → the exact SRT and ASS we ship (tests/data/golden/).

After an intended change, regenerate with ``UPDATE_GOLDEN=1 pytest tests/test_cues_golden.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from funasr_subs.check import check_cues
from funasr_subs.cues import PROFILES, CueSettings, build_cues
from funasr_subs.errors import NoTimestampsError
from funasr_subs.model import Transcript
from funasr_subs.protocol import parse_reply, parse_session
from funasr_subs.writers import render
from tests.replies import LONG_REPLIES, read_reply

DATA = Path(__file__).parent / "data"
REPLIES = DATA / "funasr-responses"
GOLDEN = DATA / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

#: (reply file, variant name, cue settings)
CASES: list[tuple[str, str, CueSettings]] = [
    ("01_offline_cpp_asr_example_single_sentence.json", "", PROFILES["zh"]),
    ("05_2pass_offline_h5_two_clauses.json", "", PROFILES["zh"]),
    ("06_2pass_offline_h5_leading_punctuation_empty_segment.json", "", PROFILES["zh"]),
    ("10_2pass_full_session_h5.jsonl", "", PROFILES["zh"]),
    # the long real replies (issue #9): a talk, a talk sent as mp4, a news report (PCM and mp4), mixed zh/en
    *((name, "", PROFILES["zh"]) for name in LONG_REPLIES),
    ("15_offline_cpp_2025_mixed_zh_en_LOG_TRUNCATED.json", "tw", CueSettings.for_profile("zh", script="tw")),
    # the options: Chinese punctuation style, frame snapping, a narrow screen, the English profile
    ("01_offline_cpp_asr_example_single_sentence.json", "fps25", CueSettings.for_profile("zh", fps=25.0)),
    ("05_2pass_offline_h5_two_clauses.json", "keep", CueSettings.for_profile("zh", punctuation="keep")),
    # the form before 2026-12, one option away: two lines, the recogniser's punctuation, every filler
    ("11_offline_cpp_2025_long_talk_121s.json", "asr", CueSettings.for_profile("zh", "asr")),
    ("01_offline_cpp_asr_example_single_sentence.json", "width8", CueSettings.for_profile("zh", max_width=8.0)),
    ("01_offline_cpp_asr_example_single_sentence.json", "en", PROFILES["en"]),
]


def transcript(name: str) -> Transcript:
    path = REPLIES / name
    if path.suffix == ".jsonl":
        replies: list[Any] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        return parse_session(replies)
    return parse_reply(read_reply(path))


def golden_name(name: str, variant: str, fmt: str) -> str:
    stem = name.rsplit(".", 1)[0]
    return f"{stem}{'.' + variant if variant else ''}.{fmt}"


@pytest.mark.parametrize(
    ("name", "variant", "settings"), CASES, ids=[f"{n[:2]}{'-' + v if v else ''}" for n, v, _ in CASES]
)
@pytest.mark.parametrize("fmt", ["srt", "ass"])
def test_real_reply_gives_the_golden_subtitles(name: str, variant: str, settings: CueSettings, fmt: str) -> None:
    cues = build_cues(transcript(name).tokens, settings)
    text = render(cues, fmt, settings.script)
    path = GOLDEN / golden_name(name, variant, fmt)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs (UPDATE_GOLDEN=1 regenerates it)"


@pytest.mark.parametrize(("name", "variant", "settings"), CASES[:4], ids=[n[:2] for n, _, _ in CASES[:4]])
def test_real_replies_meet_the_quality_bar(name: str, variant: str, settings: CueSettings) -> None:
    """Every cue within width and line limits, durations within limits, no scraps under 4 characters."""
    cues = build_cues(transcript(name).tokens, settings)
    report = check_cues(cues, settings)
    assert report.counts()["width"] == report.counts()["lines"] == 0
    assert report.share_ok("short", "long") >= 0.95
    assert report.ok
    for cue in cues:
        assert sum(ch.isalnum() for ch in "".join(cue.lines)) >= 4


def test_replies_without_speech_or_times_give_no_cues() -> None:
    assert build_cues(transcript("08_2pass_final_marker_empty_text.json").tokens, PROFILES["zh"]) == []
    with pytest.raises(NoTimestampsError):
        transcript("09_offline_cpp_2023_log_issue792_no_timestamp_model.json")


def test_our_srt_is_what_pysubs2_writes() -> None:
    """render() writes SRT itself (fast for 10-hour files): the same text pysubs2 gives for the same cues."""
    from funasr_subs.model import Cue
    from funasr_subs.writers import render_srt, to_ssafile

    cases = [build_cues(transcript(name).tokens, settings) for name, _, settings in CASES]
    cases.append([Cue(0, 10, ("a{b}c", "中文")), Cue(43_200_005, 43_200_999, ("  spaced  ",)), Cue(5, 6, ("",))])
    for cues in cases:
        assert render_srt(cues) == str(to_ssafile(cues).to_string("srt"))
    assert render_srt([Cue(0, 10, ("C:\\path",))]).splitlines()[2] == "C:\\path"  # one backslash, as written

"""The rule checker and ``funasr-subs check``: every rule caught with its cue number, exit codes, unreadable files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from funasr_subs.check import check_cues, cues_from_events, format_report, summary_line
from funasr_subs.cli import main
from funasr_subs.cues import PROFILES, CueSettings
from funasr_subs.model import Cue
from funasr_subs.writers import render

ZH = CueSettings.for_profile("zh", max_lines=2)  # the standard's limit, as the check command holds a file
EN = PROFILES["en"]

GOOD = [
    Cue(1000, 3000, ("欢迎大家来体验",)),
    Cue(3083, 5500, ("达摩院推出的", "语音识别模型。")),
]


def srt(cues: list[Cue]) -> str:
    return render(cues, "srt")


def test_clean_cues_pass() -> None:
    report = check_cues(GOOD, ZH)
    assert report.ok and report.cues == 2 and report.bad_cues == 0
    assert summary_line(report, "a.srt").startswith("a.srt: 2 cues, all within the rules (zh: 2 lines of 16")


@pytest.mark.parametrize(
    ("cue", "rule", "words"),
    [
        (Cue(0, 3000, ("一二三四五六七八九十一二三四五六七",)), "width", "line 1 is 17 wide (max 16)"),
        (Cue(0, 3000, ("abcdefghijklmnopqrstuvwxyzabcdefg",)), "width", "line 1 is 16.5 wide"),  # half-width 0.5
        (Cue(0, 3000, ("一", "二", "三")), "lines", "3 lines (max 2)"),
        (Cue(0, 500, ("你好",)), "short", "shown 500 ms (min 833)"),
        (Cue(0, 7001, ("你好世界",)), "long", "shown 7001 ms (max 7000)"),
        (Cue(0, 1000, ("一二三四五六七八九十",)), "cps", "10.0 characters/s (max 9)"),
        (Cue(0, 1000, ("", "")), "empty", "no text"),
    ],
)
def test_each_rule_is_caught(cue: Cue, rule: str, words: str) -> None:
    cues = [GOOD[0].__class__(-10_000, -8000, ("前面的字幕",)), cue]
    report = check_cues(cues, ZH)
    hits = [v for v in report.violations if v.rule == rule]
    assert len(hits) == 1 and hits[0].cue == 2
    assert words in hits[0].message
    assert not report.ok


def test_gaps_and_overlaps_name_both_cues_even_out_of_order() -> None:
    cues = [
        Cue(5000, 7000, ("第三句话在这里",)),
        Cue(1000, 3000, ("第一句话在这里",)),
        Cue(3040, 4000, ("第二句话在这里",)),  # 40 ms after cue 2
        Cue(6500, 8000, ("第四句话在这里",)),  # overlaps cue 1
    ]
    report = check_cues(cues, ZH)
    found = {(v.cue, v.rule) for v in report.violations}
    assert (3, "gap") in found and (4, "overlap") in found
    messages = {v.rule: v.message for v in report.violations}
    assert messages["gap"] == "40 ms after cue 2 (min 83)"
    assert messages["overlap"] == "starts 500 ms before cue 1 ends"


def test_english_profile_counts_one_per_character_and_20_cps() -> None:
    line = "This line is exactly forty-three characters"
    assert len(line) == 43
    report = check_cues([Cue(0, 3000, (line,))], EN)
    assert [v.rule for v in report.violations] == ["width"]
    assert check_cues([Cue(0, 3000, (line[:42],))], EN).ok


def test_report_lists_cue_numbers_times_and_a_summary() -> None:
    cues = [*GOOD, Cue(6000, 6400, ("好",))]
    text = format_report(check_cues(cues, ZH), "x.srt")
    lines = text.splitlines()
    assert lines[0] == "  cue 3 (00:00:06,000): too short: shown 400 ms (min 833)"
    assert lines[-1].startswith("x.srt: 3 cues, 1 break the rules (66.7% ok): 1 too short (zh:")
    limited = format_report(check_cues([Cue(0, 100, ("好",)), Cue(200, 300, ("好",))], ZH), limit=1)
    assert "... and 3 more" in limited


def test_cues_from_pysubs2_events_strip_tags_and_skip_comments() -> None:
    import pysubs2

    subs = pysubs2.SSAFile()
    subs.events.append(pysubs2.SSAEvent(start=0, end=1000, text=r"{\i1}你好{\i0}\N世界"))
    subs.events.append(pysubs2.SSAEvent(start=0, end=1000, text="note", type="Comment"))
    assert cues_from_events(subs.events) == [Cue(0, 1000, ("你好", "世界"))]


# --- the command ------------------------------------------------------------------------------------------
def test_command_exit_0_for_clean_and_1_with_cue_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.srt"
    good.write_text(srt(GOOD), encoding="utf-8")
    bad = tmp_path / "bad.srt"
    bad.write_text(srt([*GOOD, Cue(5530, 6000, ("一二三四五六七八九十一二三四五六七",))]), encoding="utf-8")
    assert main(["check", str(good)]) == 0
    assert "good.srt: 2 cues, all within the rules" in capsys.readouterr().out
    assert main(["check", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "  cue 3 (00:00:05,530): too wide: line 1 is 17 wide (max 16)" in out
    assert "  cue 3 (00:00:05,530): gap too small: 30 ms after cue 2 (min 83)" in out
    assert f"{bad}: 3 cues, 1 break the rules" in out


def test_command_overrides_and_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wide.srt"
    path.write_text(srt([Cue(0, 3000, ("一二三四五六七八九十一二三四五六七",))]), encoding="utf-8")
    assert main(["check", "--max-width", "18", str(path)]) == 0
    assert main(["check", "--profile", "en", "-q", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(en: 2 lines of 42" in out and "cue 1" not in out


def test_ass_times_get_centisecond_tolerance(tmp_path: Path) -> None:
    cues = [Cue(1000, 2833, ("第一句话",)), Cue(2916, 4000, ("第二句话",))]  # 83 ms gap, stored as 80 or 90
    path = tmp_path / "x.ass"
    path.write_text(render(cues, "ass"), encoding="utf-8")
    assert main(["check", "-q", str(path)]) == 0


def test_gbk_and_vtt_files_are_read(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.srt"
    gbk.write_bytes(srt(GOOD).encode("gb18030"))
    vtt = tmp_path / "x.vtt"
    vtt.write_text(render(GOOD, "vtt"), encoding="utf-8")
    assert main(["check", "-q", str(gbk), str(vtt)]) == 0


def test_unreadable_files_exit_2_with_one_line_and_the_others_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.srt"
    junk.write_bytes(b"\x00\x01binary\xff\xfe\x00garbage" * 10)
    missing = tmp_path / "missing.srt"
    good = tmp_path / "good.srt"
    good.write_text(srt(GOOD), encoding="utf-8")
    assert main(["check", str(junk), str(missing), str(good)]) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert str(missing) in errors[1] and "file not found" in errors[1]
    assert str(junk) in errors[0]
    assert "good.srt: 2 cues, all within the rules" in captured.out


def test_text_that_is_not_subtitles_is_an_error_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.srt"
    notes.write_text("shopping list\nmilk\n", encoding="utf-8")
    empty_ass = tmp_path / "empty.ass"  # a real subtitle file with no cues yet: checked, not refused
    empty_ass.write_text("[Script Info]\n; hand-made\n", encoding="utf-8")
    assert main(["check", str(notes), str(empty_ass)]) == 2
    captured = capsys.readouterr()
    assert f"error: {notes}: holds no subtitle cues" in captured.err
    assert "notes.srt" not in captured.out and "empty.ass: 0 cues, all within the rules" in captured.out


def test_installed_command_runs_as_a_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "bad.srt"
    bad.write_text(srt([Cue(0, 300, ("好",))]), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "funasr_subs", "check", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "cue 1 (00:00:00,000): too short: shown 300 ms (min 833)" in proc.stdout

"""Attacks from outside on this session's work (odd but legal replies through ``retime``, layouts, names no file
system holds), each pinned where it broke."""

from __future__ import annotations

import json
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.check import check_cues, cues_from_events
from funasr_subs.cli import main
from funasr_subs.config import LAYOUT_KEYS, load_settings
from funasr_subs.cues import LAYOUTS, CueSettings
from funasr_subs.model import Cue

ZH = CueSettings.for_profile("zh")


def write_reply(path: Path, sentences: list[tuple[list[tuple[str, int, int]], str]]) -> Path:
    """A FunASR offline reply: each sentence is its (character, start, end) units and its closing mark."""
    stamp = []
    for units, punc in sentences:
        pairs = [[s, e] for _, s, e in units]
        text = "".join(u for u, _, _ in units)
        stamp.append(
            {"start": pairs[0][0], "end": pairs[-1][1], "punc": punc, "text_seg": " ".join(text), "ts_list": pairs}
        )
    text = "".join("".join(u for u, _, _ in units) + punc for units, punc in sentences)
    pairs = [[s, e] for units, _ in sentences for _, s, e in units]
    reply = {
        "is_final": False,
        "mode": "offline",
        "stamp_sents": stamp,
        "text": text,
        "timestamp": json.dumps(pairs),
        "wav_name": "x",
    }
    path.write_text(json.dumps(reply, ensure_ascii=False), encoding="utf-8")
    return path


def retime(tmp_path: Path, reply: Path, *flags: str) -> list[Cue]:
    out = tmp_path / "out.srt"
    assert main(["retime", str(reply), "-o", str(out), "--overwrite", *flags]) == 0
    return cues_from_events(pysubs2.load(str(out)).events)


def test_fillers_apart_in_silence_do_not_stretch_the_next_cue_over_it(tmp_path: Path) -> None:
    """嗯 … 嗯 … 嗯 … 好的: each 嗯 alone between silences; 好的 is shown from its own speech (was: from the first
    嗯, 15 s up for two characters, over the 7 s maximum)."""
    units = [("嗯", 5000 * k, 5000 * k + 200) for k in range(4)] + [("好", 15300, 15500), ("的", 15500, 15700)]
    cues = retime(tmp_path, write_reply(tmp_path / "r.json", [(units, "。")]))
    assert [c.lines for c in cues] == [("好的",)]
    assert cues[0].start_ms == 15000  # the last 嗯 is right before it: the cue covers that speech
    assert check_cues(cues, ZH).ok


@pytest.mark.parametrize("suffix", [".srt", ".vtt", ".ass"])
def test_a_reply_past_99_hours_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """Times past 99:59:59.999 fit no subtitle format (was: SRT with a 6-digit hour, WebVTT and ASS every cue
    clamped to 99:59:59.999 with Python's RuntimeWarning on stderr, exit 0)."""
    t = 10**12
    reply = write_reply(tmp_path / "r.json", [([("好", t, t + 200), ("的", t + 200, t + 400)], "。")])
    out = tmp_path / f"out{suffix}"
    assert main(["retime", str(reply), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "past 99:59:59.999" in err and "Warning" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no subtitle, no sidecar


def test_max_cps_0_turns_the_reading_speed_rule_off_as_documented(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/configuration.md: ``--max-cps`` 0 = off (the engine takes it; the flag refused it: 'more than 0')."""
    units = [(ch, 1000 + 100 * k, 1100 + 100 * k) for k, ch in enumerate("我们今天讨论成本问题")]
    reply = write_reply(tmp_path / "r.json", [(units, "。")])
    assert main(["retime", str(reply), "-o", str(tmp_path / "out.srt"), "--max-cps", "0", "--check"]) == 0
    assert "any reading speed" in capsys.readouterr().out


def test_this_and_that_as_objects_are_words_not_fillers(tmp_path: Path) -> None:
    """那个/这个 before a comma after a verb is its object: kept (was: ``我要 不要这个``, and in real reply 15
    ``我先干 然后干完这个`` for 我先干这个，然后…); a hesitation before the noun it points at still goes."""
    said = [("我要那个", "，"), ("不要这个", "。"), ("我们讨论那个", "，"), ("成本问题", "。")]
    t = 1000
    sentences = []
    for text, mark in said:
        sentences.append(([(ch, t + 250 * k, t + 250 * (k + 1)) for k, ch in enumerate(text)], mark))
        t += 250 * len(text) + 100
    cues = retime(tmp_path, write_reply(tmp_path / "r.json", sentences))
    shown = " ".join(" ".join(c.lines) for c in cues)
    assert "我要那个 不要这个" in shown and "我们讨论 成本问题" in shown, shown


def test_a_layout_given_now_is_not_undone_by_settings_a_sidecar_recorded(tmp_path: Path) -> None:
    """``retime --punctuation keep --max-lines 2`` then ``retime --layout one-line``: one line, the Chinese marks
    (was: the recorded two lines and marks won over the layout given now, and the next plain retime kept them)."""
    first = [(ch, 1000 + 400 * k, 1400 + 400 * k) for k, ch in enumerate("我们今天讨论成本问题")]
    second = [(ch, 5100 + 400 * k, 5500 + 400 * k) for k, ch in enumerate("明天讨论收入问题")]
    reply = write_reply(tmp_path / "r.json", [(first, "，"), (second, "。")])
    out = tmp_path / "r.zh.srt"

    def shown() -> list[tuple[str, ...]]:
        return [c.lines for c in cues_from_events(pysubs2.load(str(out)).events)]

    assert main(["retime", str(reply), "--punctuation", "keep", "--max-lines", "2"]) == 0
    assert shown() == [("我们今天讨论成本问题，",), ("明天讨论收入问题。",)]
    assert main(["retime", str(reply), "--layout", "one-line"]) == 0
    assert shown() == [("我们今天讨论成本问题",), ("明天讨论收入问题",)]
    assert main(["retime", str(reply)]) == 0  # the sidecar now records what was used
    assert shown() == [("我们今天讨论成本问题",), ("明天讨论收入问题",)]


def test_a_layout_flag_sets_what_it_governs_over_the_config_file(tmp_path: Path) -> None:
    """``--layout one-line`` on the command line beats a config file's ``max_lines = 2`` and ``punctuation =
    "keep"`` (was: the file's values won over the flag; a later source's layout now replaces an earlier source's
    lines, punctuation and fillers, as a later ``server`` replaces an earlier pool)."""
    config = tmp_path / "config.toml"
    config.write_text('max_lines = 2\npunctuation = "keep"\n', encoding="utf-8")
    assert set(LAYOUT_KEYS) == set(LAYOUTS["one-line"])
    flagged = load_settings({"layout": "one-line"}, config_path=config, environ={}).cue_settings()
    assert (flagged.max_lines, flagged.punctuation) == (1, "space")
    both = load_settings({"layout": "one-line", "max_lines": 2}, config_path=config, environ={}).cue_settings()
    assert (both.max_lines, both.punctuation) == (2, "space")  # a flag given beside the layout still wins
    plain = load_settings({}, config_path=config, environ={}).cue_settings()
    assert (plain.max_lines, plain.punctuation) == (2, "keep")
    env = load_settings({}, config_path=config, environ={"FUNASR_SUBS_LAYOUT": "asr"}).cue_settings()
    assert (env.max_lines, env.punctuation, env.verbatim) == (2, "keep", True)


@pytest.mark.parametrize("name", ["a" * 300 + ".json", "b/" * 2100 + "x.json"], ids=["name-300", "path-4205"])
def test_a_name_no_file_system_holds_is_one_line_and_the_other_inputs_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """retime, check and sync given such a name (was: a traceback, OSError ENAMETOOLONG, and the other inputs
    never done)."""
    units = [(ch, 1000 + 300 * k, 1300 + 300 * k) for k, ch in enumerate("我们今天讨论成本问题")]
    good = write_reply(tmp_path / "good.json", [(units, "。")])
    bad = str(tmp_path / name)
    assert main(["retime", bad, str(good)]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "too long" in errors[0] and "Traceback" not in err
    assert (tmp_path / "good.zh.srt").exists()  # the other input was done
    assert main(["check", bad[:-5] + ".srt", str(tmp_path / "good.zh.srt")]) == 2  # could not be read
    captured = capsys.readouterr()
    assert "too long" in captured.err and "good.zh.srt: 1 cue" in captured.out
    assert main(["sync", str(tmp_path / "good.zh.srt"), bad]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "too long" in err
    assert main(["sync", str(tmp_path / "good.zh.srt"), bad[:-5] + ".mkv"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "too long" in err and "Traceback" not in err

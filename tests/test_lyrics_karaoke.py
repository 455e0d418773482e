"""``--format lrc`` (lyrics for audio) and ``--format ass-karaoke`` (``\\k`` word highlighting): the real CLI on
media the tests make and the real FunASR test server, the real replies in tests/data for the cue engine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from funasr_subs.config import Settings
from funasr_subs.cues import build_cues
from funasr_subs.protocol import parse_reply
from funasr_subs.sidecar import read_sidecar
from funasr_subs.writers import digest, lrc_time, render
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.replies import LONG_REPLIES, REPLIES, read_reply

LRC_LINE = re.compile(r"\[(\d{2,}):(\d{2})\.(\d{2})\](.*)")
K_TAG = re.compile(r"\{\\k(\d+)\}([^{]*)")


def _srt(path: Path) -> list[pysubs2.SSAEvent]:
    return list(pysubs2.load(str(path)))


def test_lrc_is_one_timed_line_per_cue_named_by_language_and_recorded_as_ours(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    song = make_media(tmp_path / "song.mp3", [(1000, 2400), (4500, 3000), (9000, 1600)], 12000)
    assert main(["transcribe", "--server", funasr_server.url, "--format", "srt,lrc", str(song)]) == 0
    lrc = tmp_path / "song.zh.lrc"
    lines = lrc.read_text(encoding="utf-8").splitlines()
    cues = _srt(tmp_path / "song.zh.srt")
    assert len(lines) == len(cues) == 3
    for line, cue in zip(lines, cues, strict=True):
        match = LRC_LINE.fullmatch(line)
        assert match is not None, line
        minutes, seconds, hundredths, text = match.groups()
        assert int(minutes) * 60_000 + int(seconds) * 1000 + int(hundredths) * 10 == cue.start
        assert text == cue.plaintext.replace("\n", " ")
    side = read_sidecar(tmp_path / "song.funasr.json")
    assert digest(lrc.read_text(encoding="utf-8")) in side.outputs["song.zh.lrc"]
    # the sidecar marks it as ours: a changed recording replaces it without --overwrite
    make_media(song, [(2000, 2400)], 12000)
    assert main(["transcribe", "--server", funasr_server.url, "--format", "lrc", str(song)]) == 0
    assert lrc.read_text(encoding="utf-8").startswith("[00:02.00]")


def test_lrc_times_round_to_hundredths_and_pass_an_hour() -> None:
    assert lrc_time(0) == "00:00.00"
    assert lrc_time(59_996) == "01:00.00"
    assert lrc_time(7_384_506) == "123:04.51"


def test_karaoke_highlights_each_word_when_it_is_spoken(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    talk = make_media(tmp_path / "talk.mp4", [(1000, 2400), (4500, 3000)], 8000)
    assert main(["transcribe", "--server", funasr_server.url, "--format", "srt,ass-karaoke", str(talk)]) == 0
    ass = pysubs2.load(str(tmp_path / "talk.zh.ass"))
    srt = _srt(tmp_path / "talk.zh.srt")
    side = read_sidecar(tmp_path / "talk.funasr.json")
    token_starts = {t.start_ms + side.offset_ms for t in parse_reply(side.reply).tokens}
    assert len(ass.events) == len(srt) == 2
    for event, cue in zip(ass.events, srt, strict=True):
        assert (event.start, event.end, event.plaintext) == (cue.start, cue.end, cue.plaintext)
        at = event.start
        starts = []
        for centiseconds, text in K_TAG.findall(event.text):
            if text:
                starts.append(at)
            at += int(centiseconds) * 10
        assert len(starts) >= 3  # word by word, not one tag for the cue
        assert all(min(abs(s - t) for t in token_starts) <= 10 for s in starts)  # at a spoken token's start
        assert at <= event.end
    assert ass.styles["Default"].secondarycolor != ass.styles["Default"].primarycolor


@pytest.mark.parametrize("name", ["01_offline_cpp_asr_example_single_sentence.json", *LONG_REPLIES])
@pytest.mark.parametrize("layout", ["one-line", "two-line", "asr"])
def test_the_words_kept_for_karaoke_spell_each_line_and_change_no_cue(name: str, layout: str) -> None:
    tokens = parse_reply(read_reply(REPLIES / name)).tokens
    settings = Settings(layout=layout).cue_settings()  # type: ignore[arg-type]
    plain = build_cues(tokens, settings)
    with_words = build_cues(tokens, settings, words=True)
    assert plain == with_words and all(c.words == () for c in plain)
    for cue in with_words:
        assert tuple("".join(w.text for w in line) for line in cue.words) == cue.lines
        starts = [w.start_ms for line in cue.words for w in line]
        assert (starts == sorted(starts) and len(starts) > 1) or len("".join(cue.lines)) <= 4
    text = render(with_words, "ass-karaoke")
    assert text.count("\\k") >= sum(len(line) for c in with_words for line in c.words)


def test_ass_and_ass_karaoke_together_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    talk = make_media(tmp_path / "talk.mp4", [(1000, 900)], 2000)
    assert main(["transcribe", "--format", "ass,ass-karaoke", str(talk)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ass and ass-karaoke both write .ass" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]


def test_retime_writes_lrc_and_karaoke_from_a_sidecar_or_a_reply(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    talk = make_media(tmp_path / "talk.mp4", [(1000, 2400)], 4000)
    assert main(["transcribe", "--server", funasr_server.url, str(talk)]) == 0
    assert main(["retime", str(talk), "--format", "lrc,ass-karaoke"]) == 0
    assert LRC_LINE.fullmatch((tmp_path / "talk.zh.lrc").read_text(encoding="utf-8").splitlines()[0])
    assert "{\\k" in (tmp_path / "talk.zh.ass").read_text(encoding="utf-8")
    outputs = read_sidecar(tmp_path / "talk.funasr.json").outputs
    assert {"talk.zh.srt", "talk.zh.lrc", "talk.zh.ass"} <= set(outputs)
    reply = tmp_path / "reply.json"
    shutil.copy(REPLIES / "01_offline_cpp_asr_example_single_sentence.json", reply)
    assert main(["retime", str(reply), "-o", str(tmp_path / "out.lrc")]) == 0
    assert main(["retime", str(reply), "--format", "ass-karaoke", "-o", str(tmp_path / "k.ass")]) == 0
    assert len((tmp_path / "out.lrc").read_text(encoding="utf-8").splitlines()) == 2
    assert "{\\k" in (tmp_path / "k.ass").read_text(encoding="utf-8")


def test_check_refuses_lrc_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lyrics = tmp_path / "song.zh.lrc"
    lyrics.write_text("[00:01.00]锄禾日当午\n", encoding="utf-8")
    assert main(["check", str(lyrics)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "LRC lyrics, which have no end times" in err

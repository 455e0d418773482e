"""``funasr-subs sync`` on subtitle files as they come from outside: legacy encodings and the structure of SRT, WebVTT
and ASS files are kept, only the times change (real replies from tests/data, the engine's own cues)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from funasr_subs.cli import main
from funasr_subs.cues import PROFILES, build_cues
from funasr_subs.cues.script import convert
from funasr_subs.model import Cue, Transcript
from funasr_subs.protocol import parse_reply
from tests.replies import REPLIES, read_reply

REPLY = "11_offline_cpp_2025_long_talk_121s.json"
LATE_MS = 3_300
#: Cantonese characters that are in Big5-HKSCS but not in Big5.
HKSCS_ONLY = "嘅哋"


def transcript() -> Transcript:
    return parse_reply(read_reply(REPLIES / REPLY))


def engine_cues() -> list[Cue]:
    """The engine's own cues for the real reply: the truth a late copy is synced back to."""
    return build_cues(transcript().tokens, PROFILES["zh"])


def reply_path(folder: Path) -> Path:
    path = folder / "reply.json"
    path.write_text(json.dumps(read_reply(REPLIES / REPLY)), encoding="utf-8")
    return path


def _stamp(ms: int, sep: str = ",", hours: bool = True) -> str:
    h, m, s, f = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000
    return (f"{h:02d}:" if hours else "") + f"{m:02d}:{s:02d}{sep}{f:03d}"


def srt_text(texts: list[str], cues: list[Cue], newline: str = "\n") -> str:
    blocks = [
        f"{k + 1}{newline}{_stamp(c.start_ms + LATE_MS)} --> {_stamp(c.end_ms + LATE_MS)}{newline}{t}{newline}"
        for k, (t, c) in enumerate(zip(texts, cues, strict=True))
    ]
    return newline.join(blocks)


def without_stamps(text: str) -> str:
    return re.sub(r"\d+:\d\d(:\d\d)?[.,]\d+", "T", text)


def starts_in(text: str) -> list[int]:
    found = re.findall(r"(?:(\d+):)?(\d\d):(\d\d)[.,](\d+) -->", text)
    return [int(h or 0) * 3_600_000 + int(m) * 60_000 + int(s) * 1000 + int(f.ljust(3, "0")) for h, m, s, f in found]


def near_truth(starts: list[int], truth: list[Cue], ms: int = 100) -> float:
    return sum(abs(a - c.start_ms) <= ms for a, c in zip(starts, truth, strict=True)) / len(truth)


@pytest.mark.parametrize("codec", ["big5", "big5hkscs", "utf_16_le", "utf_16_be", "gb18030"])
def test_traditional_text_in_its_encoding_is_synced_by_text_and_written_back_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str
) -> None:
    """Big5 bytes decode as GB18030 without an error (mojibake): the encoding is detected, the cues are found by their
    text, and the file is written back in its own encoding with every byte but the times unchanged."""
    cues = engine_cues()
    texts = [convert(c.text.replace("\n", " "), "tw") for c in cues]
    if codec == "big5hkscs":
        texts[3] += HKSCS_ONLY
    bom = {"utf_16_le": b"", "utf_16_be": b"\xfe\xff"}.get(codec, b"")
    original = bom + srt_text(texts, cues).encode(codec)
    sub = tmp_path / "talk.zh-TW.srt"
    sub.write_bytes(original)
    assert main(["sync", str(sub), str(reply_path(tmp_path)), "--in-place"]) == 0
    out = capsys.readouterr().out
    assert "synced by text" in out, out
    data = sub.read_bytes()
    assert data.startswith(bom) and (tmp_path / "talk.zh-TW.orig.srt").read_bytes() == original
    text = data[len(bom) :].decode(codec)
    assert without_stamps(text) == without_stamps(original[len(bom) :].decode(codec))
    assert near_truth(starts_in(text), cues) >= 0.9


def _in_shift_jis(text: str) -> str:
    return "".join(ch for ch in text if ch.encode("shift_jis", "ignore"))


def test_traditional_text_in_shift_jis_keeps_its_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Shift-JIS holds most Traditional characters (95 % of this talk's; the others are left out of the file)."""
    cues = engine_cues()
    texts = [_in_shift_jis(convert(c.text.replace("\n", " "), "tw")) for c in cues]
    original = srt_text(texts, cues, "\r\n").encode("shift_jis")
    sub = tmp_path / "talk.ja.srt"
    sub.write_bytes(original)
    out_path = tmp_path / "out.srt"
    assert main(["sync", str(sub), str(reply_path(tmp_path)), "-o", str(out_path)]) == 0
    assert "Shift-JIS, as it came" in capsys.readouterr().out
    text = out_path.read_bytes().decode("shift_jis")
    assert without_stamps(text) == without_stamps(original.decode("shift_jis")) and "\r\n" in text
    assert near_truth(starts_in(text), cues) >= 0.9


VTT_HEAD = """WEBVTT - made by hand
Kind: captions

STYLE
::cue { color: yellow }

NOTE a note of the translator
over two lines

REGION
id:bottom
width:40%

"""


def test_webvtt_keeps_identifiers_blocks_and_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cues = engine_cues()
    blocks = []
    for k, c in enumerate(cues):
        start, end = _stamp(c.start_ms + LATE_MS, ".", k % 2 == 0), _stamp(c.end_ms + LATE_MS, ".", k % 2 == 0)
        settings = " align:start position:10%" if k % 3 == 0 else ""
        note = f"NOTE after cue {k}\n\n" if k % 7 == 0 else ""
        blocks.append(f"cue-{k + 1}\n{start} --> {end}{settings}\n<v Lin>{convert(c.text, 'tw')}</v>\n\n{note}")
    original = VTT_HEAD + "".join(blocks)
    sub = tmp_path / "talk.vtt"
    sub.write_text(original, encoding="utf-8")
    out_path = tmp_path / "out.vtt"
    assert main(["sync", str(sub), str(reply_path(tmp_path)), "-o", str(out_path)]) == 0
    report = capsys.readouterr().out
    assert re.search(rf"placed by their own text: (\d+) of {len(cues)} cues", report), report
    text = out_path.read_text(encoding="utf-8")
    assert without_stamps(text) == without_stamps(original)  # header, STYLE, NOTE, REGION, ids, settings, tags
    assert near_truth(starts_in(text), cues) >= 0.9
    assert "cue-2" not in report and "NOTE" not in report  # never taken for cue text (least sure lines)


ASS_HEAD = """[Script Info]
; Script generated by hand
Title: talk
ScriptType: v4.00+
PlayResX: 1920

[Aegisub Project Garbage]
Last Style Storage: Default

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Noto Sans CJK TC,72,&H00FFFFFF,&H000000FF,&H00000000,&H64000000,0,0,0,0,100,100,0,0,1,3,1,2,20,20,40,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def test_ass_keeps_every_line_but_the_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cues = engine_cues()
    lines = []
    for k, c in enumerate(cues):
        start, end = (c.start_ms + LATE_MS) // 10, (c.end_ms + LATE_MS) // 10
        stamp = [f"{v // 360000}:{v // 6000 % 60:02d}:{v // 100 % 60:02d}.{v % 100:02d}" for v in (start, end)]
        said = "\\N".join(c.lines)
        if k % 5 == 0:
            lines.append(f"Comment: 0,{stamp[0]},{stamp[1]},Default,,0,0,0,,original: {said}\n")
        lines.append(f"Dialogue: 0,{stamp[0]},{stamp[1]},Default,Lin,0,0,0,,{{\\pos(960,1000)}}{said}\n")
    original = ASS_HEAD + "".join(lines)
    sub = tmp_path / "talk.ass"
    sub.write_bytes(original.encode("utf-8-sig"))
    assert main(["sync", str(sub), str(reply_path(tmp_path)), "--in-place"]) == 0
    assert "UTF-8 with BOM, as it came" in capsys.readouterr().out
    data = sub.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert without_stamps(text) == without_stamps(original)
    comments = [line for line in text.splitlines() if line.startswith("Comment:")]
    assert comments == [line.rstrip("\n") for line in lines if line.startswith("Comment:")]  # their times too
    dialogue = [line for line in text.splitlines() if line.startswith("Dialogue:")]
    starts = [
        int(h) * 3_600_000 + int(m) * 60_000 + int(s) * 1000 + int(cs) * 10
        for h, m, s, cs in (re.match(r"Dialogue: 0,(\d+):(\d\d):(\d\d)\.(\d\d)", line).groups() for line in dialogue)
    ]  # type: ignore[union-attr]
    assert near_truth(starts, cues, 110) >= 0.9


def test_another_format_is_written_in_the_encoding_it_came_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o x.ass`` for a Big5 SRT: converted, every cue's text kept, still Big5 (on main: UTF-8)."""
    cues = engine_cues()
    texts = [convert(c.text.replace("\n", " "), "tw") for c in cues]
    sub = tmp_path / "talk.zh-TW.srt"
    sub.write_bytes(srt_text(texts, cues).encode("big5"))
    out = tmp_path / "talk.ass"
    assert main(["sync", str(sub), str(reply_path(tmp_path)), "-o", str(out)]) == 0
    assert "(Big5, as it came)" in capsys.readouterr().out
    text = out.read_bytes().decode("big5")
    assert "[Events]" in text and all(t in text for t in texts)


def test_check_reads_the_same_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``check`` reads a Big5 WebVTT like sync does: identifiers and NOTE blocks are not cue lines, the characters are
    the right ones (on main the NOTE lines made every cue three lines long, in GB18030 mojibake)."""
    body = "".join(
        f"c{k}\n00:00:{2 * k:02d}.000 --> 00:00:{2 * k + 1:02d}.800\n我們今天去山裡看看\n\nNOTE 譯者的話\n第二行\n\n"
        for k in range(1, 5)
    )
    sub = tmp_path / "talk.zh-TW.vtt"
    sub.write_bytes(("WEBVTT\n\n" + body).encode("big5"))
    assert main(["check", "--profile", "zh", str(sub)]) == 0, capsys.readouterr().out

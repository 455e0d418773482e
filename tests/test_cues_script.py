"""Traditional Chinese converted word by word (issue #18): OpenCC never matches a phrase across two of the engine's
words (``出来了|然后`` is not ``出來瞭然後``), Taiwan and Hong Kong phrases for ``tw`` and ``hk``, Traditional text
that survives the way back to Simplified and forward again, and the ASS font of the script."""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from funasr_subs.cues import CueSettings, build_cues
from funasr_subs.cues.script import Script, convert, convert_clauses, to_simplified
from funasr_subs.cues.words import to_words
from funasr_subs.model import Token
from funasr_subs.protocol import parse_reply
from funasr_subs.writers import render
from tests.replies import LONG_REPLIES, REPLIES, read_reply
from tests.test_cues_rules import tokens

HUMAN_HANT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "human-subtitles" / "zh-Hant"
_HAN = re.compile(r"[\u4e00-\u9fff]+")


def _shown(text: str, script: Script) -> str:
    """What viewers read of ``text`` (Simplified, one token a character) in ``script``, lines joined."""
    cues = build_cues(tokens(text), CueSettings.for_profile("zh", script=script))
    return "".join("".join(cue.lines) for cue in cues).replace(" ", "")


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum()).lower()


@pytest.mark.parametrize("script", ["hant", "tw", "hk"])
def test_traditional_is_converted_word_by_word(script: Script) -> None:
    # the traps from the real replies: 了然 across 出来了|然后 (reply 11 without punctuation), 人参 across 负责人|参加
    # (reply 13): OpenCC given the whole clause wrote 出來瞭然後 and 負責人蔘加
    shown = _shown("定理就无形当中产生分出来了然后在观音那修学负责人参加会议", script)
    assert "分出來了然後" in shown and "負責人參加會議" in shown, shown
    # a phrase inside one engine word still converts as a phrase; two whole words OpenCC knows as one phrase too
    # (jieba cuts 比特|币 and 这|只: alone, Taiwan's 比特 is 位元 and 只 stays 只)
    shown = _shown("程序员说一个比特币就是这只猫", script)
    assert "比特幣" in shown and "這隻貓" in shown, shown
    assert ("程式設計師" if script == "tw" else "程序員") in shown


def test_words_go_to_opencc_together_and_come_back_in_place() -> None:
    """Every distinct word, and every clause, goes to OpenCC in one call (joined by line feeds): a word holding a
    line feed of its own (hostile input) must not shift the words after it."""
    clauses = [["这个", "软件"], ["视\n频", "营销"], ["出来了", "然后"]]
    assert convert_clauses(clauses, "tw") == [["這個", "軟體"], ["視\n頻", "行銷"], ["出來了", "然後"]]
    assert convert_clauses(clauses, "hans") == clauses


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("tw", ["我們做行銷", "影片", "軟體", "程式", "分出來了然後", "硬碟", "滑鼠"]),  # s2twp, and 营销 -> 行銷
        ("hk", ["我們做營銷", "視頻", "軟件", "程序", "分出來了然後", "硬碟", "滑鼠"]),  # s2hkp: Hong Kong phrases
        ("hant", ["我們做營銷", "視頻", "軟件", "程序", "分出來了然後", "硬盤", "鼠標"]),  # s2t: no regional words
    ],
)
def test_regional_phrases_in_context(script: Script, expected: list[str]) -> None:
    shown = _shown("我们做营销的视频讲这个软件的程序怎么分出来了然后硬盘和鼠标都坏了", script)
    missing = [word for word in expected if word not in shown]
    assert not missing, shown


def test_real_replies_in_traditional_survive_simplified_and_back() -> None:
    """Traditional as a person writes it, word by word, made from every real reply (with and without punctuation):
    taken back to Simplified (OpenCC t2s, as sync reads a Traditional file) and through the engine again, every word
    comes back as it was. Clause-at-a-time conversion wrote 出來瞭然後 (reply 11) and 負責人蔘加 (hk, replies 13-14)."""
    differences: list[str] = []
    for name in LONG_REPLIES:
        toks = list(parse_reply(read_reply(REPLIES / name)).tokens)
        bare = [Token(t.text, t.start_ms, t.end_ms) for t in toks]  # the no-punctuation-model case
        for variant, stream in (("", toks), ("no punctuation", bare)):
            words = to_words(stream, CueSettings.for_profile("zh"))
            for script in ("tw", "hk"):
                written = "".join(convert(w.text, script) + w.punct for w in words)
                again = _shown(to_simplified(written), script)
                a, b = _letters(written), _letters(again)
                ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
                differences += [
                    f"{name[:2]} {variant} {script}: {a[i1 - 3 : i2 + 3]} -> {b[j1 - 3 : j2 + 3]}"
                    for op, i1, i2, j1, j2 in ops
                    if op != "equal"
                ]
    assert not differences, differences[:10]


@pytest.mark.skipif(not HUMAN_HANT.is_dir(), reason="people's zh-Hant subtitles are in ../shared (absent here)")
def test_peoples_taiwan_subtitles_back_to_simplified_and_forward_keep_their_words() -> None:
    """The 9 zh-Hant files people made (Taiwan talks and 3b1b's Taiwan community, ../shared/data/human-subtitles):
    each run of Chinese taken to Simplified and converted forward again with ``tw``, word by word as the engine cuts
    it. What OpenCC's Taiwan dictionary writes otherwise than those people (函式 for 函數 ...) is OpenCC's choice; a
    word made wrong by its neighbour is ours: clause-at-a-time conversion made 25 (只有 -> 隻有, 了如果 -> 瞭如果,
    发现 -> 髮現, 一个中 -> 一箇中 ...), word by word makes 3."""
    runs: list[str] = []  # each run of Chinese as those people wrote it
    for path in sorted(HUMAN_HANT.iterdir()):
        runs += [run for event in pysubs2.load(str(path)) for run in _HAN.findall(event.plaintext)]
    runs = [run for run in runs if len(to_simplified(run)) == len(run)]
    cuts: list[list[str]] = []  # each run back in Simplified, cut into the engine's words
    for run in runs:
        toks = [Token(ch, 200 * k, 200 * k + 200) for k, ch in enumerate(to_simplified(run))]
        cuts.append([w.text for w in to_words(toks, CueSettings.for_profile("zh", verbatim=True))])
    words = kept = by_neighbour = 0
    for run, cut, converted in zip(runs, cuts, convert_clauses(cuts, "tw"), strict=True):
        pos = 0
        for word, ours in zip(cut, converted, strict=True):
            theirs = run[pos : pos + len(word)]
            pos += len(word)
            words += 1
            kept += ours == theirs
            by_neighbour += ours != theirs and convert(word, "tw") == theirs
    assert words > 30_000
    assert kept / words >= 0.98, kept / words  # 98.3 %
    assert by_neighbour <= 5


@pytest.mark.parametrize(
    ("script", "font"),
    [
        ("hans", "Noto Sans CJK SC"),
        ("hant", "Noto Sans CJK TC"),
        ("tw", "Noto Sans CJK TC"),
        ("hk", "Noto Sans CJK HK"),
    ],
)
def test_ass_names_the_font_of_the_script(script: Script, font: str) -> None:
    cues = build_cues(tokens("这个软件很好用。"), CueSettings.for_profile("zh", script=script))
    for fmt in ("ass", "ass-karaoke"):
        styles = pysubs2.SSAFile.from_string(render(cues, fmt, script)).styles
        assert styles["Default"].fontname == font, fmt


def test_retime_writes_traditional_ass_with_a_traditional_font(tmp_path: Path) -> None:
    reply = tmp_path / "talk.json"
    shutil.copy(REPLIES / "12_offline_cpp_2025_talk_35s_sent_as_mp4.json", reply)
    assert main(["retime", str(reply), "--script", "hk", "--format", "ass"]) == 0
    subs = pysubs2.load(str(tmp_path / "talk.zh-HK.ass"))
    assert subs.styles["Default"].fontname == "Noto Sans CJK HK"
    assert "CJK SC" not in (tmp_path / "talk.zh-HK.ass").read_text(encoding="utf-8")

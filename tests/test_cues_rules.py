"""The cue engine's breaking and line rules on hand-made token streams (what a subtitler would check by eye)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from funasr_subs.cues import PROFILES, CueSettings, build_cues
from funasr_subs.cues.text import apply_punctuation_style, is_cjk, separator, text_width, token_kind
from funasr_subs.errors import ConfigError
from funasr_subs.model import Cue, Token

#: The engine's mechanics in the two-line form with the recogniser's punctuation (the form before 2026-12); the
#: default one-line form is tested in tests/test_cues_form.py.
ZH = CueSettings.for_profile("zh", "asr")
EN = PROFILES["en"]
_UNIT = re.compile(r"[\u4e00-\u9fff]|[A-Za-z][A-Za-z'-]*|\d+(?:\.\d+)?%?|\||[^\w\s|]+")


def tokens(text: str, *, start: int = 0, step: int = 250, pause: int = 1000) -> list[Token]:
    """Tokens for ``text``: CJK characters, words and digit groups, each ``step`` ms long and back to back; the
    punctuation after a unit goes to its token; ``|`` marks a silence of ``pause`` ms."""
    out: list[Token] = []
    t = start
    for unit in _UNIT.findall(text):
        if unit == "|":
            t += pause
        elif not unit[0].isalnum():
            last = out[-1]
            out[-1] = Token(last.text, last.start_ms, last.end_ms, last.punct + unit)
        else:
            out.append(Token(unit, t, t + step))
            t += step
    return out


def texts(cues: list[Cue]) -> list[str]:
    return [" / ".join(c.lines) for c in cues]


# --- text: spacing and widths -----------------------------------------------------------------------------
def test_mixed_text_spaces_english_words_but_not_cjk_or_digits() -> None:
    cues = build_cues(tokens("我用iPhone拍了2024年的照片。"), ZH)
    assert texts(cues) == ["我用 iPhone 拍了2024年的照片。"]
    cues = build_cues(tokens("Hello, world, it's 3 pm"), EN)
    assert texts(cues) == ["Hello, world, it's 3 pm"]


def test_character_classes_and_widths() -> None:
    assert is_cjk("中") and is_cjk("カ") and is_cjk("한") and not is_cjk("，") and not is_cjk("a")
    assert [token_kind(t) for t in ("中", "word", "2024", "3.5", "…")] == ["cjk", "latin", "digit", "digit", "other"]
    assert text_width("中文abc，", "zh") == 4.5 and text_width("中文abc，", "en") == 6
    assert separator("cjk", "", "digit") == "" and separator("latin", "", "cjk") == " "
    assert separator("latin", ",", "latin") == " " and separator("cjk", "，", "latin") == ""


# --- where cues break ---------------------------------------------------------------------------------------
def test_funasr_comma_fragments_are_merged_back_into_one_cue() -> None:
    cues = build_cues(tokens("锄禾日当午，汗滴禾下土，谁知盘中餐，粒粒皆辛苦。"), ZH)
    assert texts(cues) == ["锄禾日当午，汗滴禾下土，/ 谁知盘中餐，粒粒皆辛苦。".replace("，/", "， /")]


def test_sentence_ends_break_before_clause_marks() -> None:
    text = "今天我们来讨论一个重要的问题。这个问题关系到每一个人，也关系到我们的未来。"
    cues = build_cues(tokens(text), ZH)
    assert texts(cues) == [
        "今天我们来讨论一个重要的问题。",
        "这个问题关系到每一个人，/ 也关系到我们的未来。".replace("，/", "， /"),
    ]


def test_a_pause_breaks_a_cue_even_without_punctuation() -> None:
    cues = build_cues(tokens("我们先看第一部分|然后再看第二部分"), ZH)
    assert texts(cues) == ["我们先看第一部分", "然后再看第二部分"]
    cues = build_cues(tokens("我们先看第一部分|然后再看第二部分", pause=400), ZH)  # 400 ms < pause: no break
    assert texts(cues) == ["我们先看第一部分然后再看第二部分"]


def test_a_long_sentence_splits_at_the_clause_mark_nearest_the_middle() -> None:
    text = "人工智能技术的快速发展正在深刻地改变着我们的生活方式，同时也给社会治理和经济发展带来了全新的挑战和机遇。"
    cues = build_cues(tokens(text), ZH)
    assert texts(cues) == [
        "人工智能技术的快速发展正在 / 深刻地改变着我们的生活方式，",
        "同时也给社会治理和经济发展 / 带来了全新的挑战和机遇。",  # not between 经济 and 发展: a compound
    ]


def test_a_long_sentence_splits_where_each_cue_can_break_its_lines_at_a_comma() -> None:
    text = "他小时候家里很穷，每天要走很远的路去上学，冬天冷得手都冻僵了，可是从来没有迟到过。"
    cues = build_cues(tokens(text, step=200), ZH)
    # not "他小时候家里很穷，每天要走很远的 / 路去上学，冬天冷得手都冻僵了，" + "可是从来没有迟到过。"
    assert texts(cues) == [
        "他小时候家里很穷， / 每天要走很远的路去上学，",
        "冬天冷得手都冻僵了， / 可是从来没有迟到过。",
    ]


def test_no_punctuation_one_huge_segment_becomes_balanced_full_cues() -> None:
    text = "这是一段没有标点的很长的语音识别结果" * 30  # 540 characters, no pauses: FunASR without a punctuation model
    cues = build_cues(tokens(text, step=200), ZH)
    assert "".join("".join(c.lines) for c in cues) == text
    for cue in cues:
        assert len(cue.lines) <= 2 and all(text_width(line, "zh") <= 16 for line in cue.lines)
        assert cue.end_ms - cue.start_ms <= 7000
    sizes = [len("".join(c.lines)) for c in cues]
    assert min(sizes) >= 20  # balanced: no scraps at the end of the run
    assert len(cues) == -(-540 // 32) or len(cues) == -(-540 // 32) + 1


def test_never_breaks_inside_a_word_or_number_or_before_punctuation() -> None:
    text = "version 2.5 of FunASR ships today, and it handles 100% of the timestamps correctly for everyone here."
    cues = build_cues(tokens(text), CueSettings.for_profile("en", max_width=20))
    words = [w for c in cues for line in c.lines for w in line.split(" ")]
    assert words == text.split(" ")
    assert all(not line.startswith((",", ".", "%")) for c in cues for line in c.lines)


def test_scraps_join_a_neighbour_unless_they_stand_alone_between_pauses() -> None:
    cues = build_cues(tokens("好。我们现在开始今天的会议。"), ZH)
    assert texts(cues) == ["好。我们现在开始今天的会议。"]
    cues = build_cues(tokens("我们现在开始今天的会议。|好。|接下来请大家看屏幕。"), ZH)
    assert texts(cues) == ["我们现在开始今天的会议。", "好。", "接下来请大家看屏幕。"]
    cues = build_cues(tokens("我们现在开始今天的会议|那个|接下来请大家看屏幕。"), ZH)  # not a sentence: joined
    assert all(sum(ch.isalnum() for ch in "".join(c.lines)) >= 4 for c in cues)


def test_an_over_long_duration_splits_even_when_the_text_fits() -> None:
    cues = build_cues(tokens("慢慢地说这句话，一个字一个字地说。", step=700), ZH)
    assert len(cues) == 2 and all(c.end_ms - c.start_ms <= 7000 for c in cues)
    assert texts(cues) == ["慢慢地说这句话，", "一个字一个字地说。"]


def test_a_lone_token_wider_than_a_line_gets_its_own_line() -> None:
    url = "https://example.com/a/very/long/address/for/testing"
    cues = build_cues(tokens(f"请访问 {url} 了解更多。").copy(), ZH)
    shown = [line for c in cues for line in c.lines]
    assert any(url.split(":")[0] in line for line in shown)
    assert all(text_width(line, "zh") <= 16 or " " not in line for line in shown)


# --- lines ---------------------------------------------------------------------------------------------------
def test_two_lines_are_balanced_and_bottom_heavy() -> None:
    cues = build_cues(tokens("欢迎大家来体验达摩院推出的语音识别模型"), ZH)  # 19 characters
    # the most balanced split (9 | 10) would cut 达摩院 in two: the nearest break between words wins, bottom-heavy
    # loses to balance only by one character
    assert cues[0].lines == ("欢迎大家来体验达摩院", "推出的语音识别模型")


def test_line_break_prefers_punctuation_and_conjunctions() -> None:
    cues = build_cues(tokens("我今天很累，但是我还要继续工作到很晚。"), ZH)
    assert cues[0].lines == ("我今天很累，", "但是我还要继续工作到很晚。")
    cues = build_cues(tokens("The weather was cold and windy all day, because the storm was coming."), EN)
    assert cues[0].lines == ("The weather was cold and windy all day,", "because the storm was coming.")


def test_english_lines_keep_articles_with_their_nouns() -> None:
    line = "I saw the man with the telescope yesterday at the old observatory near the lake"
    cues = build_cues(tokens(line), EN)
    assert len(cues) == 1 and len(cues[0].lines) == 2
    assert not cues[0].lines[0].endswith((" the", " a", " at"))


def test_max_lines_three_and_one() -> None:
    text = "这是一个需要三行才能放下的很长很长的字幕句子，我们来看看效果。"
    three = build_cues(tokens(text, step=200), CueSettings.for_profile("zh", "asr", max_width=12, max_lines=3))
    assert [len(c.lines) for c in three] == [3]
    one = build_cues(tokens(text, step=200), CueSettings.for_profile("zh", "asr", max_lines=1))
    assert all(len(c.lines) == 1 and text_width(c.lines[0], "zh") <= 16 for c in one) and len(one) == 2


def test_space_punctuation_style_drops_final_marks_and_spaces_inline_ones() -> None:
    style = CueSettings.for_profile("zh", "asr", punctuation="space")
    cues = build_cues(tokens("锄禾日当午，汗滴禾下土。谁知盘中餐？"), style)
    assert texts(cues) == ["锄禾日当午 汗滴禾下土", "谁知盘中餐？"]
    cues = build_cues(tokens("我们先讨论第一个问题，然后再看第二个问题，最后总结一下。"), style)
    assert all(not line.endswith(("，", "。", "\u3000")) for c in cues for line in c.lines)


def test_space_style_puts_the_space_outside_quotes() -> None:
    assert apply_punctuation_style("。”", "space", line_end=False) == "” "
    assert apply_punctuation_style("，“", "space", line_end=False) == " “"
    assert apply_punctuation_style("、", "space", line_end=False) == "、"  # an enumeration stays inside a line
    assert apply_punctuation_style("、", "space", line_end=True) == ""
    assert apply_punctuation_style("：", "space", line_end=False) == " "
    assert apply_punctuation_style("。”", "space", line_end=True) == "”"
    assert apply_punctuation_style("？", "space", line_end=True) == "？"
    assert apply_punctuation_style("，", "keep", line_end=True) == "，"


def test_abbreviations_do_not_end_sentences() -> None:
    # 350 ms a word: each sentence can be read in its own time (20 characters a second)
    cues = build_cues(tokens("Mr. Smith went to Washington. Dr. Jones stayed home, as usual.", step=350), EN)
    assert texts(cues) == ["Mr. Smith went to Washington.", "Dr. Jones stayed home, as usual."]


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"max_lines": 0}, "--max-lines"),
        ({"max_width": 0.0}, "--max-width"),
        ({"min_gap": -1}, "--min-gap"),
        ({"fps": 0.0}, "--fps"),
        ({"max_duration": 0}, "--max-duration"),
    ],
)
def test_nonsense_settings_are_refused_naming_the_flag(change: dict[str, object], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        build_cues(tokens("你好世界。"), replace(ZH, **change))  # type: ignore[arg-type]


def test_empty_input_and_blank_tokens_give_no_cues() -> None:
    assert build_cues([], ZH) == []
    assert build_cues([Token(" ", 0, 100), Token("", 100, 200)], ZH) == []


def test_a_cue_too_cramped_for_the_minimum_duration_joins_a_neighbour() -> None:
    fast = tokens("我们走吧。他们也会来的。", step=100)  # the first sentence is over after 400 ms
    assert texts(build_cues(fast, ZH)) == ["我们走吧。他们也会来的。"]
    slow = tokens("我们走吧。他们也会来的。", step=250)  # 1000 ms: room enough for a cue of its own
    assert texts(build_cues(slow, ZH)) == ["我们走吧。", "他们也会来的。"]

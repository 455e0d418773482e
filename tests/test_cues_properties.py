"""Property tests of the cue engine over generated token streams: the invariants every output must keep."""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funasr_subs.cues import PROFILES, CueSettings, build_cues, lexicon
from funasr_subs.cues.layout import Prepared, prepare
from funasr_subs.cues.segment import (
    _BREAK_WEIGHT,
    _LINE_BREAK,
    _PER_CUE,
    _SCRAP,
    MIN_LETTERS,
    Span,
    _split,
    segment,
)
from funasr_subs.cues.text import is_cjk, text_width
from funasr_subs.cues.words import give_back_pauses, words_and_bonds
from funasr_subs.model import Cue, Token

CJK = "我你他的了是在有这个们来到说要就会和对也大家欢迎体验语音识别模型锄禾日当午汗滴下土谁知盘中餐但因为所以然后"
WORDS = ["a", "I", "the", "hello", "world", "FunASR", "and", "subtitle", "OK", "because", "x"]
NUMBERS = ["1", "15", "2024", "3.5", "100%"]
#: The engine's mechanics in the two-line form with the recogniser's punctuation (the form before 2026-12); the
#: default one-line form is tested in tests/test_cues_form.py.
ZH = CueSettings.for_profile("zh", "asr")
MARKS = ["，", "。", "？", "！", "、", "；", "：", "…", ",", ".", "?", "!", ";", "”"]

# CUE_PROPERTY_EXAMPLES=5000 for a deeper run; the default keeps the suite quick.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("CUE_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Stream:
    tokens: list[Token]
    cue_settings: CueSettings


@st.composite
def token_texts(draw: st.DrawFn, mix: str) -> str:
    if mix == "zh":
        return draw(st.sampled_from(CJK))
    if mix == "en":
        return draw(st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMBERS)))
    kind = draw(st.sampled_from(["cjk", "cjk", "cjk", "word", "number", "long"]))
    if kind == "cjk":
        return draw(st.sampled_from(CJK))
    if kind == "word":
        return draw(st.sampled_from(WORDS))
    if kind == "number":
        return draw(st.sampled_from(NUMBERS))
    return draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=20, max_size=60))  # wider than a line


GAPS = {
    "dense": st.sampled_from([0, 0, 0, 10, 40]),
    "normal": st.integers(min_value=0, max_value=700),
    "sparse": st.sampled_from([0, 100, 499, 500, 501, 900, 3000, 60_000]),
}
DURATIONS = st.one_of(st.integers(min_value=0, max_value=600), st.sampled_from([0, 1, 9000, 20_000]))


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    mix = draw(st.sampled_from(["zh", "en", "mixed"]))
    punct_rate = draw(st.sampled_from([0.0, 0.05, 0.2, 0.5]))
    density = draw(st.sampled_from(["dense", "normal", "sparse"]))
    marks = st.sampled_from(MARKS) if punct_rate else st.just("")
    raw = draw(
        st.lists(
            st.tuples(token_texts(mix), GAPS[density], DURATIONS, marks, st.floats(0, 1)),
            max_size=120,
        )
    )
    tokens: list[Token] = []
    t = draw(st.integers(min_value=0, max_value=5000))
    for text, gap, duration, mark, roll in raw:
        start = t + gap
        tokens.append(Token(text, start, start + duration, mark if roll < punct_rate else ""))
        t = start + duration
    profile = draw(st.sampled_from(["zh", "en"]))
    cs = CueSettings.for_profile(
        profile,
        max_width=draw(st.sampled_from([None, 8.0, 12.0, 20.5, 42.0])),
        max_lines=draw(st.sampled_from([None, 1, 2, 3])),
        min_duration=draw(st.sampled_from([None, 0, 500, 2000])),
        max_duration=draw(st.sampled_from([None, 1000, 3000, 7000])),
        min_gap=draw(st.sampled_from([None, 0, 40, 83, 200])),
        max_cps=draw(st.sampled_from([None, 0.0, 5.0, 20.0])),
        pause=draw(st.sampled_from([None, 100, 500, 1500])),
        linger=draw(st.sampled_from([None, 0, 500, 2000])),
        fps=draw(st.sampled_from([None, None, 23.976, 25.0, 30.0])),
        punctuation=draw(st.sampled_from(["keep", "space"])),
    )
    return Stream(tokens, cs)


def _display_forms(tokens: list[Token]) -> set[str]:
    forms = set()
    for tok in tokens:
        forms.add(tok.text)
        forms.add(tok.text + tok.punct)
        forms.add(tok.text + tok.punct.rstrip("，。"))
    return forms


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _lone_token_cue(cue: Cue, forms: set[str]) -> bool:
    return len(cue.lines) == 1 and cue.lines[0] in forms


@PROPERTY_SETTINGS
@given(streams())
def test_every_token_once_in_order(stream: Stream) -> None:
    words, bonds = words_and_bonds(stream.tokens, stream.cue_settings)  # as build_cues makes them (phrase costs too)
    prep = prepare(words, stream.cue_settings, bonds)
    spans = segment(prep, stream.cue_settings)
    flat = [k for i, j in spans for k in range(i, j + 1)]
    assert flat == list(range(len(words)))
    cues = build_cues(stream.tokens, stream.cue_settings)
    assert len(cues) == len(spans)
    shown = "".join(_letters("".join(c.lines)) for c in cues)
    assert shown.lower() == "".join(_letters(t.text) for t in stream.tokens).lower()  # only letters' case changes


@PROPERTY_SETTINGS
@given(streams())
def test_lines_and_cues_break_only_between_words(stream: Stream) -> None:
    """Every line and cue boundary falls between two of the engine's words (a word wider than a line was already
    cut into line-sized pieces by to_words): counted in letters, as shown."""
    cs = stream.cue_settings
    words, _ = words_and_bonds(stream.tokens, cs)  # the words build_cues shows
    bounds = set()
    pos = 0
    for w in words:
        pos += len(_letters(w.text))
        bounds.add(pos)
    pos = 0
    for cue in build_cues(stream.tokens, cs):
        for line in cue.lines:
            pos += len(_letters(line))
            assert pos in bounds, (line, [w.text for w in words])


@PROPERTY_SETTINGS
@given(streams())
def test_timing_never_overlaps_and_keeps_the_gap(stream: Stream) -> None:
    cs = stream.cue_settings
    cues = build_cues(stream.tokens, cs)
    for cue in cues:
        assert 0 <= cue.start_ms < cue.end_ms
    for a, b in pairwise(cues):
        assert b.start_ms - a.end_ms >= cs.min_gap, (a, b)


@PROPERTY_SETTINGS
@given(streams())
def test_lines_widths_and_durations_within_limits(stream: Stream) -> None:
    cs = stream.cue_settings
    cues = build_cues(stream.tokens, cs)
    words, _ = words_and_bonds(stream.tokens, cs)
    forms = _display_forms(words)
    long_tokens = {t.text + p for t in words if t.end_ms - t.start_ms > cs.max_duration for p in ("", t.punct)}
    for cue in cues:
        # one line may become two only where one line cannot be read in the time the speech gives it
        assert 1 <= len(cue.lines) <= max(cs.max_lines, 2 if cs.max_lines == 1 else 0)
        for line in cue.lines:
            assert line and line == line.strip()
            if text_width(line, cs.profile) > cs.max_width:
                assert line in forms, f"line wider than {cs.max_width}: {line!r}"
        if cue.end_ms - cue.start_ms > cs.max_duration:
            assert _lone_token_cue(cue, forms) and cue.lines[0].rstrip("，。") in {
                f.rstrip("，。") for f in long_tokens
            }, cue


@PROPERTY_SETTINGS
@given(streams())
def test_cue_starts_near_its_first_token(stream: Stream) -> None:
    """A cue never shows before its speech, and (without frame snapping or squeezing) starts right at it."""
    cs = stream.cue_settings
    words, bonds = words_and_bonds(stream.tokens, cs)  # as build_cues makes them (phrase costs too)
    prep = prepare(words, cs, bonds)
    spans = segment(prep, cs)
    cues = build_cues(stream.tokens, cs)
    half_frame = 500 / cs.fps if cs.fps else 0
    for (i, _), cue in zip(spans, cues, strict=True):
        assert cue.start_ms >= prep.starts[i] - half_frame - 1


def line_ok(prep: Prepared, cs: CueSettings, i: int, j: int) -> bool:
    return i == j or prep.width(i, j) <= cs.max_width


def split_reference(prep: Prepared, cs: CueSettings, a: int, b: int) -> list[Span]:
    """The split's dynamic program written plainly (every start scored, lines counted one token at a time, line
    breaks tried one by one): the fast ``_split`` must choose exactly the same cues."""
    capacity = cs.max_width * cs.max_lines
    best = [0.0] * (b - a + 2)
    back = [0] * (b - a + 2)
    for j in range(a, b + 1):
        base = _PER_CUE + (_BREAK_WEIGHT * prep.cost[j] if j < b else 0.0)
        tail = prep.width_prefix[j + 1] - prep.drop_w[j]
        line_tail, lines = tail, 1
        best_c, best_i = float("inf"), j
        for i in range(j, a - 1, -1):
            head = prep.width_prefix[i] + prep.sep_w[i]
            if i < j:
                if prep.ends[j] - prep.starts[i] > cs.max_duration:
                    break
                if line_tail - head > cs.max_width:
                    lines += 1
                    if lines > cs.max_lines:
                        break
                    line_tail = prep.width_prefix[i + 1] - prep.drop_w[i]
            slack = (capacity - (tail - head)) / capacity
            c = best[i - a] + base + slack * slack
            if prep.letters(i, j) < MIN_LETTERS:
                c += _SCRAP
            if cs.max_lines == lines == 2 and any(prep.clause[m] for m in range(i, j)):
                fits_both = [m for m in range(i, j) if line_ok(prep, cs, i, m) and line_ok(prep, cs, m + 1, j)]
                if not any(prep.clause[m] for m in fits_both):
                    c += _LINE_BREAK
            if c < best_c:
                best_c, best_i = c, i
        best[j - a + 1], back[j - a + 1] = best_c, best_i - a
    out: list[Span] = []
    k = b - a + 1
    while k > 0:
        out.append((a + back[k], a + k - 1))
        k = back[k]
    return out[::-1]


@PROPERTY_SETTINGS
@given(streams())
def test_fast_split_matches_the_plain_dynamic_program(stream: Stream) -> None:
    cs = stream.cue_settings
    prep = prepare(stream.tokens, cs)
    n = len(stream.tokens)
    for a in sorted({0, n // 3}):
        if a < n:
            assert _split(prep, cs, a, n - 1) == split_reference(prep, cs, a, n - 1)


@pytest.mark.parametrize(
    "cs",
    [
        ZH,
        PROFILES["en"],
        CueSettings.for_profile("zh", "asr", max_width=8.0),
        CueSettings.for_profile("zh", "asr", max_width=12.0, max_lines=3),
    ],
    ids=["zh", "en", "width8", "lines3"],
)
def test_fast_split_matches_the_plain_dynamic_program_on_long_runs(cs: CueSettings) -> None:
    """Long runs without sentence ends (clause marks, conjunctions and words wider than a line, or nothing at all),
    periodic ones full of exact ties included (ties go to the later start)."""
    rng = random.Random(7)
    mixed: list[Token] = []
    t = 0
    for _ in range(3000):
        roll = rng.random()
        text = (
            rng.choice(CJK)
            if roll < 0.85
            else rng.choice(WORDS + NUMBERS)
            if roll < 0.98
            else "x" * rng.randint(10, 40)
        )
        duration = rng.randint(100, 400)
        mark = rng.choice("，，，、,;") if rng.random() < 0.12 else ""
        mixed.append(Token(text, t, t + duration, mark))
        t += duration + rng.choice((0, 0, 0, 30, 200))
    periodic = [Token(ch, 200 * k, 200 * k + 200) for k, ch in enumerate("这是一段没有标点的很长的语音识别结果" * 30)]
    same = [Token("我", 200 * k, 200 * k + 200) for k in range(300)]
    for tokens in (mixed, periodic, same):
        prep = prepare(tokens, cs)
        assert _split(prep, cs, 0, len(tokens) - 1) == split_reference(prep, cs, 0, len(tokens) - 1)


def test_profiles_carry_the_standard_numbers() -> None:
    assert PROFILES["zh"].max_width == 16 and PROFILES["zh"].max_cps == 9
    assert PROFILES["en"].max_width == 42 and PROFILES["en"].max_cps == 20


#: Everyday words: streams made of them put many word boundaries where a careless break would fall.
ZH_WORDS = (
    "我们 大家 欢迎 体验 语音 识别 模型 因为 所以 然后 但是 今天 时间 问题 学生 老师 中国 世界 手机 品牌 保护 工作"
)


@st.composite
def word_streams(draw: st.DrawFn) -> Stream:
    """Chinese speech made of real words (one token per character, as FunASR sends it), mixed with the usual."""
    base = draw(streams())
    words = draw(st.lists(st.sampled_from(ZH_WORDS.split()), min_size=5, max_size=60))
    t = base.tokens[-1].end_ms if base.tokens else 0
    toks = list(base.tokens)
    for word in words:
        gap = draw(st.sampled_from([0, 0, 0, 40, 300, 900]))
        mark = draw(st.sampled_from(["", "", "", "", "，", "。"]))
        for k, ch in enumerate(word):
            start = t + (gap if k == 0 else 0)
            toks.append(Token(ch, start, start + 200, mark if k == len(word) - 1 else ""))
            t = start + 200
    return Stream(toks, dataclasses.replace(base.cue_settings, profile="zh"))


@PROPERTY_SETTINGS
@given(word_streams())
def test_no_break_inside_a_word_the_segmenter_keeps_whole(stream: Stream) -> None:
    """Any token stream: a line or cue break between two Chinese characters of one run (no punctuation or pause
    between them) falls where the engine's own segmenter (rjieba, with the user's words) ends a word — unless that
    word is wider than a line."""
    cs = stream.cue_settings
    if cs.profile != "zh":
        return
    toks = [t for t in stream.tokens if t.text.strip()]
    cues = build_cues(toks, cs)
    toks = list(give_back_pauses(toks))  # a pause FunASR absorbed into a token is a pause (FunASR #2091)
    # every break as a token index: the last token before it (letters counted, as shown)
    ends_at: dict[int, int] = {}
    pos = 0
    for k, tok in enumerate(toks):
        pos += len(_letters(tok.text))
        ends_at[pos] = k
    breaks = []
    pos = 0
    for cue in cues:
        for line in cue.lines:
            pos += len(_letters(line))
            breaks.append(ends_at[pos])
    for k in breaks[:-1]:
        a, b = toks[k], toks[k + 1]
        if a.punct or b.start_ms - a.end_ms > cs.pause or not (is_cjk(a.text[0]) and is_cjk(b.text[0])):
            continue
        run_start = k
        while (
            run_start > 0
            and not toks[run_start - 1].punct
            and is_cjk(toks[run_start - 1].text[0])
            and toks[run_start].start_ms - toks[run_start - 1].end_ms <= cs.pause
        ):
            run_start -= 1
        run_end = k + 1
        while (
            run_end + 1 < len(toks)
            and not toks[run_end].punct
            and is_cjk(toks[run_end + 1].text[0])
            and toks[run_end + 1].start_ms - toks[run_end].end_ms <= cs.pause
        ):
            run_end += 1
        run = "".join(t.text for t in toks[run_start : run_end + 1])
        cut_at = sum(len(t.text) for t in toks[run_start : k + 1])
        words = lexicon.cut(run, cs.words)
        edges = {0}
        for w in words:
            edges.add(max(edges) + len(w))
        if cut_at not in edges:
            word = next(w for w, end in zip(words, sorted(edges)[1:], strict=True) if end > cut_at)
            assert text_width(word, "zh") > cs.max_width, (run, cut_at, words, [c.lines for c in cues])

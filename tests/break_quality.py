"""How well subtitles break Chinese text, judged from the outside: by THULAC, a word segmenter the engine does not use.

Used by the tests and by ``benchmarks/bench_cues.py``, on our cues and on subtitles people made, in the same way.
A *break* is every line break inside a cue and every boundary between two cues. For each break:

- it *follows punctuation* when the text before it ends with punctuation or a space, or the text after it starts
  with punctuation (people's files often write a space for a comma);
- otherwise it is *inside a word* when the judge, segmenting the text on both sides of it as one string, puts the
  characters on both sides into one word (``--jieba-too`` in the benchmark counts only those jieba agrees with,
  the measure issue #9 quoted);
- a line or cue *starts with a particle* when, after no punctuation, its first word (for the judge) is one of
  的了吗呢吧啊哦呀啦嘛.

Spelled lower-case letters are runs such as ``f s d`` or ``o k`` left in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

PARTICLES = frozenset("的了吗呢吧啊哦呀啦嘛")
#: Characters on each side of a break given to the judge (enough context for a word, little enough to be fast).
CONTEXT = 8
_SPELLED = re.compile(r"(?<![A-Za-z])[a-z](?: [a-z])+(?![A-Za-z])")
_HAN = re.compile(r"[\u3400-\u9fff]")


@cache
def _thulac() -> Any:
    import thulac  # a test/benchmark dependency only: the engine segments with jieba (rjieba)

    return thulac.thulac(seg_only=True)


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(60)
    return jieba


@cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    """Both segmenters learnt Simplified Chinese: Traditional text is judged in Simplified (same length)."""
    out = str(_t2s().convert(text))
    return out if len(out) == len(text) else text


def judge_words(text: str) -> list[str]:
    """THULAC's words of ``text`` (the judge)."""
    return [w for w, _ in _thulac().cut(text)] if text else []


def jieba_words(text: str) -> list[str]:
    """jieba's words of ``text`` (the Python jieba, for the "both segmenters agree" measure)."""
    return list(_jieba().cut(text, HMM=True)) if text else []


def _is_punct(ch: str) -> bool:
    import unicodedata

    return ch.isspace() or unicodedata.category(ch).startswith(("P", "S"))


def _boundaries(words: Iterable[str]) -> set[int]:
    out = set()
    pos = 0
    for w in words:
        pos += len(w)
        out.add(pos)
    return out


@dataclass
class BreakQuality:
    breaks: int = 0
    after_punctuation: int = 0
    inside_word: int = 0  # the judge (THULAC) sees one word across the break
    inside_word_both: int = 0  # THULAC and jieba both do
    particle_start: int = 0
    spelled_lowercase: int = 0
    examples: list[str] | None = None

    @property
    def inside_share(self) -> float:
        return self.inside_word / self.breaks if self.breaks else 0.0

    @property
    def inside_both_share(self) -> float:
        return self.inside_word_both / self.breaks if self.breaks else 0.0

    def add(self, other: BreakQuality) -> None:
        self.breaks += other.breaks
        self.after_punctuation += other.after_punctuation
        self.inside_word += other.inside_word
        self.inside_word_both += other.inside_word_both
        self.particle_start += other.particle_start
        self.spelled_lowercase += other.spelled_lowercase


def _pairs(cues: Sequence[Sequence[str]]) -> Iterable[tuple[str, str]]:
    """(text before, text after) of every line break and cue boundary, in order."""
    previous: str | None = None
    for lines in cues:
        lines = [ln for ln in lines if ln.strip()]
        for k, line in enumerate(lines):
            if previous is not None:
                yield previous, line
            previous = line
            if k == len(lines) - 1:
                break
    return


def measure(cues: Sequence[Sequence[str]], *, both: bool = True, keep_examples: int = 0) -> BreakQuality:
    """Break quality of cues given as their lines of text (markup already removed)."""
    q = BreakQuality(examples=[] if keep_examples else None)
    for cue in cues:
        q.spelled_lowercase += sum(len(_SPELLED.findall(line)) for line in cue)
    for before, after in _pairs(cues):
        before = before.rstrip("\n")
        q.breaks += 1
        if not before or not after or _is_punct(before[-1]) or _is_punct(after[0]) or before.endswith(" "):
            q.after_punctuation += 1
            continue
        left = _simplified(before[-CONTEXT:].rsplit(" ", 1)[-1])  # a space is a boundary of its own
        right = _simplified(after[:CONTEXT].split(" ", 1)[0])
        cut_at = len(left)
        words = judge_words(left + right)
        if cut_at not in _boundaries(words):
            inside = True
            if both:
                inside_j = cut_at not in _boundaries(jieba_words(left + right))
                q.inside_word_both += inside_j
            q.inside_word += inside
            if q.examples is not None and len(q.examples) < keep_examples:
                q.examples.append(f"{left}|{right}")
        first = next(iter(judge_words(right)), "")
        if first in PARTICLES:
            q.particle_start += 1
    return q


def chinese_share(cues: Sequence[Sequence[str]]) -> float:
    """Share of Han characters among letters: files that are not Chinese are not measured."""
    text = "".join("".join(c) for c in cues)
    letters = sum(1 for ch in text if ch.isalpha())
    return len(_HAN.findall(text)) / letters if letters else 0.0


def read_timed_cues(path: Any) -> list[tuple[int, int, list[str]]]:
    """The cues of a subtitle file made by people (SRT or VTT): times and lines, markup and sound tags kept."""
    import pysubs2

    subs = pysubs2.load(str(path), encoding="utf-8-sig")
    out = []
    for event in subs:
        if event.is_comment:
            continue
        text = event.plaintext.strip()
        if text:
            out.append((event.start, event.end, [ln.strip() for ln in text.split("\n") if ln.strip()]))
    return out


def read_cue_lines(path: Any) -> list[list[str]]:
    """The lines of every cue of a subtitle file made by people (SRT or VTT), markup and sound tags kept."""
    return [lines for _, _, lines in read_timed_cues(path)]

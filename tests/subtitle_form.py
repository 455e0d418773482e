"""Whether Chinese subtitles look like the ones people write, judged from the outside (tests and benchmarks).

Measured the same way on our cues and on subtitles people made:

- the share of cues that are one line, and of lines that end in ``，`` or ``。``;
- the median cue duration;
- filler syllables (呃, 嗯) per 1,000 Chinese characters;
- **phrase cuts**: the share of breaks (line breaks and cue boundaries) that cut a phrase, judged by THULAC's
  part-of-speech tags — a tagger the engine does not use (it tags with jieba). A break cuts a phrase when, with
  no punctuation at it, the word before it is 的/之 (its head follows), an adverb before a verb or adjective, a
  preposition (its object follows), a numeral before a measure word, a verb before its complement (来, 回来, 到,
  完 ...), a conjunction, or an item marker (一是, 首先).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tests.break_quality import CONTEXT, _is_punct, _pairs, _simplified


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_HAN = re.compile(r"[\u3400-\u9fff]")
_FILLERS = re.compile(r"[呃嗯]")
#: Complements as THULAC cuts them (it splits 回来 into 回 + 来).
_COMPLEMENT = _word_set("来 去 回 出 进 上 下 过 起 开 到 完 好 住 掉 走 成 见 懂 回来 出来 起来 下去 过来 回去 进来")
_ITEM_MARKER = re.compile(r"^(?:[一二三四五六七八九十]是|首先|其次|再次|第[一二三四五六七八九十]+)$")
_NUMERALS = frozenset("一二三四五六七八九十")


@cache
def _tagger() -> Any:
    import thulac  # a test/benchmark dependency only

    return thulac.thulac()


def tag(text: str) -> list[tuple[str, str]]:
    """THULAC's (word, tag) pairs of ``text``."""
    return [(w, t) for w, t in _tagger().cut(text)] if text else []


def phrase_cut(before: str, after: str) -> str | None:
    """What phrase a break between ``before`` and ``after`` cuts (a short name), or None."""
    if not before or not after or _is_punct(before[-1]) or _is_punct(after[0]) or before.endswith(" "):
        return None
    left = _simplified(before[-CONTEXT:].rsplit(" ", 1)[-1])
    right = _simplified(after[:CONTEXT].split(" ", 1)[0])
    if not left or not right or not _HAN.search(left[-1:]) or not _HAN.search(right[:1]):
        return None
    pos = 0
    words = tag(left + right)
    for idx, (word, t) in enumerate(words):
        pos += len(word)
        if pos < len(left):
            continue
        if pos > len(left) or idx + 1 >= len(words):
            return None  # inside a word: measured by tests/break_quality.py
        lw, lt = word, t
        rw, rt = words[idx + 1]
        prev = words[idx - 1][0] if idx else ""
        if lt == "u" and lw in ("的", "之"):
            return "的|head"
        if lt == "d" and rt in ("v", "a"):
            return "adverb|predicate"
        if lt == "p":
            return "preposition|object"
        if lt == "m" and rt == "q":
            return "numeral|measure"
        if lt == "v" and rw in _COMPLEMENT:
            return "verb|complement"
        if lt == "c":
            return "conjunction|"
        if _ITEM_MARKER.match(lw) or (lw == "是" and prev in _NUMERALS):
            return "item marker|"
        return None
    return None


@dataclass
class Form:
    """How a set of subtitles looks (see the module docstring)."""

    cues: int = 0
    one_line: int = 0
    lines: int = 0
    comma_end: int = 0
    durations: list[int] = field(default_factory=list)
    han: int = 0
    fillers: int = 0
    breaks: int = 0
    cuts: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def one_line_share(self) -> float:
        return self.one_line / self.cues if self.cues else 0.0

    @property
    def comma_end_share(self) -> float:
        return self.comma_end / self.lines if self.lines else 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.durations) if self.durations else 0.0

    @property
    def fillers_per_1000(self) -> float:
        return 1000 * self.fillers / self.han if self.han else 0.0

    @property
    def cut_share(self) -> float:
        return self.cuts / self.breaks if self.breaks else 0.0


def measure_form(cues: Sequence[tuple[int, int, Sequence[str]]], *, keep_examples: int = 0) -> Form:
    """The form of cues given as (start ms, end ms, lines)."""
    f = Form()
    for start, end, lines in cues:
        shown = [ln.strip() for ln in lines if ln.strip()]
        if not shown:
            continue
        f.cues += 1
        f.one_line += len(shown) == 1
        f.lines += len(shown)
        f.comma_end += sum(ln.endswith(("，", "。")) for ln in shown)
        f.durations.append(end - start)
        text = "".join(shown)
        f.han += len(_HAN.findall(text))
        f.fillers += len(_FILLERS.findall(text))
    for before, after in _pairs([lines for _, _, lines in cues]):
        f.breaks += 1
        kind = phrase_cut(before, after)
        if kind is not None:
            f.cuts += 1
            if len(f.examples) < keep_examples:
                f.examples.append(f"{kind}: {before[-8:]} | {after[:8]}")
    return f

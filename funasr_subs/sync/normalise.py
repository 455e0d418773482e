"""Both sides of a sync as comparable units: punctuation and spaces gone, Simplified script, digits as ITN writes them.

A *unit* is one CJK character, one digit (or ``.``/``%`` inside a number), or one lower-case Latin word. The subtitle
and FunASR's tokens go through the same steps, so whatever a step does, it does to both sides alike:

1. Traditional → Simplified with OpenCC (``t2s``, the converter funasr_subs/cues/script.py keeps for --script):
   FunASR writes Simplified, many subtitles are Traditional.
2. Bracketed sound tags and speaker labels (``[笑]``, ``（音乐）``) dropped: nobody says them.
3. Chinese numerals → digits with ``cn2an.transform`` (一百 → 100, 百分之五十 → 50%, 二零二三年 → 2023年), which is
   how FunASR's inverse text normalisation writes numbers.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from funasr_subs.cues.script import map_pieces, to_simplified

log = logging.getLogger(__name__)

_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_UNIT_RE = re.compile(rf"[{_CJK}]|[0-9]|(?<=[0-9])[.%](?=[0-9])|(?<=[0-9])%|[^\W\d_{_CJK}]+", re.UNICODE)
_BRACKETS = re.compile(r"\[[^\]]{0,40}\]|【[^】]{0,40}】|（[^）]{0,40}）|\([^)]{0,40}\)|♪")
_LATIN_EDGE = re.compile(r"[0-9A-Za-z]")


def digits_like_itn(text: str) -> str:
    """Chinese numerals written as FunASR's ITN writes them (digits), by ``cn2an.transform``."""
    if not text:
        return text
    import cn2an

    try:
        with warnings.catch_warnings():  # cn2an warns (UserWarning) about every numeral it cannot read
            warnings.simplefilter("ignore")
            return str(cn2an.transform(text, "cn2an"))
    except Exception:  # cn2an raises plain ValueError/KeyError on odd input; the text is then compared as is
        log.debug("cn2an could not read %r", text[:40])
        return text


def units(text: str) -> list[str]:
    """The comparable units of an already normalised text (see the module doc)."""
    return [u.lower() for u in _UNIT_RE.findall(text)]


def normalise(text: str) -> list[str]:
    """Every step for one piece of subtitle text: script, brackets, numerals, then units."""
    return units(digits_like_itn(_BRACKETS.sub(" ", to_simplified(text))))


def normalise_all(texts: Sequence[str]) -> list[list[str]]:
    """:func:`normalise` for many texts at once (one OpenCC and one cn2an pass over the joined texts: a film's
    subtitle in a fraction of the time); text by text where joining would change what a text becomes."""
    flat = [t.replace("\n", " ") for t in texts]
    joined = "\n".join(flat)
    done = digits_like_itn(_BRACKETS.sub(" ", to_simplified(joined))).split("\n")
    if len(done) != len(flat):
        return [normalise(t) for t in flat]
    return [units(t) for t in done]


@dataclass(frozen=True, slots=True)
class TimedUnits:
    """The recognised side: units with the time of the token each came from (a token of several units is shared)."""

    units: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]


def _join(texts: Sequence[str]) -> tuple[str, list[int]]:
    """Tokens joined into one text (a space between two Latin/digit edges) and where each token starts."""
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    prev = ""
    for text in texts:
        if prev and text and _LATIN_EDGE.match(prev[-1]) and _LATIN_EDGE.match(text[0]):
            parts.append(" ")
            pos += 1
        starts.append(pos)
        parts.append(text)
        pos += len(text)
        prev = text
    return "".join(parts), starts


def timed_units(texts: Sequence[str], starts: Sequence[int], ends: Sequence[int]) -> TimedUnits:
    """The recognised tokens (text, start, end) as normalised units, each with a time.

    The numeral step may change the number of units (一百 → 100); the raw units and the normalised units are then
    aligned with rapidfuzz's opcodes: equal runs keep their times, a changed run shares the time of what it replaced.
    """
    simple = map_pieces(texts, to_simplified)  # one OpenCC pass when that keeps every text's length
    raw_units: list[str] = []
    raw_start: list[int] = []
    raw_end: list[int] = []
    for text, s, e in zip(simple, starts, ends, strict=True):
        found = units(text)
        n = len(found)
        for k, unit in enumerate(found):
            raw_units.append(unit)
            raw_start.append(s + (e - s) * k // n)
            raw_end.append(s + (e - s) * (k + 1) // n)
    joined, _ = _join(simple)
    norm = units(digits_like_itn(joined))
    if norm == raw_units:
        return TimedUnits(tuple(raw_units), tuple(raw_start), tuple(raw_end))
    out_start: list[int] = []
    out_end: list[int] = []
    for op in Levenshtein.opcodes(raw_units, norm):
        i1, i2, j1, j2 = op.src_start, op.src_end, op.dest_start, op.dest_end
        if op.tag == "equal":
            out_start.extend(raw_start[i1:i2])
            out_end.extend(raw_end[i1:i2])
            continue
        if j2 == j1:
            continue
        if i2 > i1:
            lo, hi = raw_start[i1], raw_end[i2 - 1]
        else:  # pure insertion: a point in time between neighbours
            lo = hi = raw_end[i1 - 1] if i1 > 0 else (raw_start[0] if raw_start else 0)
        n = j2 - j1
        for k in range(n):
            out_start.append(lo + (hi - lo) * k // n)
            out_end.append(lo + (hi - lo) * (k + 1) // n)
    return TimedUnits(tuple(norm), tuple(out_start), tuple(out_end))

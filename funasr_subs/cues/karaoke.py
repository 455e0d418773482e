"""The display words of each cue line with their speech times, for karaoke (pure code; only when asked for)."""

from __future__ import annotations

from collections.abc import Sequence

from funasr_subs.cues.layout import Prepared
from funasr_subs.model import Word


def line_words(prep: Prepared, i: int, j: int, lines: Sequence[str]) -> tuple[tuple[Word, ...], ...]:
    """The words of tokens i..j laid out as ``lines`` (what :func:`.layout.break_lines` made of them): each word's
    text as the line shows it, so that a line's words joined give the line exactly.

    A line that cannot be matched (never expected) makes the whole cue one word per line, timed by the speech."""
    out: list[tuple[Word, ...]] = []
    a = i
    for n, line in enumerate(lines):
        b = _line_end(prep, a, j, line, last=n == len(lines) - 1)
        if b is None:
            return tuple((Word(text, prep.starts[i], prep.ends[j]),) for text in lines)
        words = [Word(prep.final[a] if a == b else prep.inline[a], prep.starts[a], prep.ends[a])]
        for k in range(a + 1, b + 1):
            shown = prep.inline[k] if k < b else prep.final[k]
            words.append(Word(prep.sep[k] + shown, prep.starts[k], prep.ends[k]))
        out.append(tuple(words))
        a = b + 1
    return tuple(out)


def _line_end(prep: Prepared, a: int, j: int, line: str, *, last: bool) -> int | None:
    """The last token of the line that starts at token ``a`` and reads ``line``."""
    if last:
        return j if a <= j and prep.line_text(a, j) == line else None
    head = ""
    for b in range(a, j + 1):
        if len(head) > len(line):
            return None
        ending = prep.final[b] if b == a else prep.sep[b] + prep.final[b]
        if head + ending == line:
            return b
        head += prep.inline[b] if b == a else prep.sep[b] + prep.inline[b]
    return None

"""Token pieces with widths and separators, line-fit checks and line breaking inside one cue (pure code)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from funasr_subs.cues.boundaries import Traits, boundary_costs, cjk_traits, traits
from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import (
    TokenKind,
    apply_punctuation_style,
    char_width,
    edge_kinds,
    letter_count,
    reading_length,
    separator,
    text_width,
    token_kind,
)
from funasr_subs.model import Token

# Line-break scoring: squared imbalance weight, top-heavy penalty, weight of the boundary's own cost.
_BALANCE = 2.0
_TOP_HEAVY = 0.15
_BOUNDARY = 1.0
_SENTENCE_INSIDE = 3.0  # a line that ends a sentence and starts the next one (never needed: see sentences_fit)


@dataclass(slots=True)
class Prepared:
    """Per-token arrays that make every span's width, letter count and break cost O(1) to look up.

    ``sep[k]`` is the text between token k-1 and k; ``inline[k]``/``final[k]`` are token k with its punctuation
    in the middle / at the end of a line; ``width_prefix[k+1] - width_prefix[i] - sep_w[i] - drop_w[k]`` is the
    width of tokens i..k on one line. ``cost[k]`` is how bad a break after token k is (0 = a sentence end).
    """

    tokens: Sequence[Token]
    starts: list[int]
    ends: list[int]
    sep: list[str]
    sep_w: list[float]
    inline: list[str]
    final: list[str]
    drop_w: list[float]
    width_prefix: list[float]
    letter_prefix: list[int]
    reading_prefix: list[float]  # reading length (text.reading_length) of tokens before k
    cost: list[float]
    hard: list[bool]  # a sentence end or a pause longer than ``settings.pause`` after token k
    sentence: list[bool]  # a sentence end after token k
    clause: list[bool]  # a clause mark after token k (inside a sentence): where a line should break
    max_width: float

    def width(self, i: int, j: int) -> float:
        """Width of tokens i..j (inclusive) set on one line."""
        return self.width_prefix[j + 1] - self.width_prefix[i] - self.sep_w[i] - self.drop_w[j]

    def letters(self, i: int, j: int) -> int:
        return self.letter_prefix[j + 1] - self.letter_prefix[i]

    def reading(self, i: int, j: int) -> float:
        """Reading length of tokens i..j (characters without punctuation and spaces, as text.reading_length)."""
        return self.reading_prefix[j + 1] - self.reading_prefix[i]

    def line_text(self, i: int, j: int) -> str:
        if i == j:
            return self.final[i]
        parts = [self.inline[i]]
        for k in range(i + 1, j + 1):
            parts.append(self.sep[k])
            parts.append(self.inline[k] if k < j else self.final[k])
        return "".join(parts)

    def min_lines(self, i: int, j: int) -> int:
        """Fewest lines tokens i..j need (greedy filling is optimal for this); a too-wide token takes a line."""
        wp, sw, dw, max_w = self.width_prefix, self.sep_w, self.drop_w, self.max_width
        lines = 1
        head = wp[i] + sw[i]  # width(start, k) == wp[k + 1] - dw[k] - head, exactly (multiples of 0.5)
        for k in range(i + 1, j + 1):
            if wp[k + 1] - dw[k] - head > max_w:
                lines += 1
                head = wp[k] + sw[k]
        return lines


_CJK2: tuple[TokenKind, TokenKind] = ("cjk", "cjk")
_HAN_ONLY = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]+")
_Piece = tuple[tuple[TokenKind, TokenKind], str, str, float, float, int, Traits, float]


@lru_cache(maxsize=1024)
def _styled(punct: str, style: str, profile: str) -> tuple[str, str, float, float]:
    """Punctuation shown in a line and at its end, with their widths."""
    mid = apply_punctuation_style(punct, style, line_end=False)
    end = apply_punctuation_style(punct, style, line_end=True)
    return mid, end, text_width(mid, profile), text_width(end, profile)


def _piece(text: str, punct: str, settings: CueSettings) -> _Piece:
    """(left and right kinds, in-line text, line-final text, in-line width, width dropped at a line end, letters,
    traits, reading length)."""
    profile = settings.profile
    style = settings.punctuation
    text = text.strip()
    punct = punct.strip()
    if not punct and _HAN_ONLY.fullmatch(text):  # most words: Chinese characters, no punctuation
        w = float(len(text))
        return (_CJK2, text, text, w, 0.0, len(text), cjk_traits(text, settings.script), w)
    if _HAN_ONLY.fullmatch(text):  # Chinese characters only (width 1 each, every one a letter)
        kind: TokenKind = "cjk"
        kinds: tuple[TokenKind, TokenKind] = ("cjk", "cjk")
        letters = len(text)
        width = float(letters)
    else:
        kind = token_kind(text)
        kinds = edge_kinds(text)
        width = text_width(text, profile)
        letters = letter_count(text)
    p_mid, p_end, w_p_mid, w_p_end = _styled(punct, style, profile)
    w_mid = width + w_p_mid
    return (
        kinds,
        text + p_mid,
        text + p_end,
        w_mid,
        w_p_mid - w_p_end,
        letters,
        traits(text, punct, kind, settings.script),
        reading_length(text, profile),
    )


def prepare(tokens: Sequence[Token], settings: CueSettings, bonds: Sequence[float] | None = None) -> Prepared:
    """Compute the per-token arrays once for the whole transcript (linear time; repeated tokens cost a lookup).
    ``bonds``: the extra cost of a break after each token where it would cut a phrase (:mod:`.grammar`)."""
    profile = settings.profile
    latin_space = settings.latin_spacing == "space"
    n = len(tokens)
    starts = [0] * n
    ends = [0] * n
    sep = [""] * n
    sep_w = [0.0] * n
    inline = [""] * n
    final = [""] * n
    drop_w = [0.0] * n
    info: list[Traits] = []
    width_prefix = [0.0] * (n + 1)
    letter_prefix = [0] * (n + 1)
    reading_prefix = [0.0] * (n + 1)
    reading = 0.0
    space_w = char_width(" ", profile)
    cache: dict[tuple[str, str], _Piece] = {}
    seps: dict[tuple[TokenKind, str, TokenKind], str] = {}
    prev_start = 0
    prev_kind: TokenKind = "other"
    prev_punct = ""
    width = 0.0
    letters = 0
    for idx, tok in enumerate(tokens):
        key = (tok.text, tok.punct)
        piece = cache.get(key)
        if piece is None:
            piece = cache[key] = _piece(tok.text, tok.punct, settings)
        (kind, right_kind), mid, end_text, w_mid, drop, count, tr, read = piece
        # times never run backwards (a pause absorbed into a long token was given back already: words.py)
        end = tok.end_ms if tok.end_ms > prev_start else prev_start
        start = tok.start_ms if tok.start_ms > prev_start else prev_start
        if start > end:
            end = start
        prev_start = start
        starts[idx] = start
        ends[idx] = end
        if idx:
            skey = (prev_kind, prev_punct, kind)
            s = seps.get(skey)
            if s is None:
                s = seps[skey] = separator(prev_kind, prev_punct.strip(), kind, latin_space=latin_space)
            if s:
                sep[idx] = s
                sep_w[idx] = space_w
                width += space_w
        inline[idx] = mid
        final[idx] = end_text
        drop_w[idx] = drop
        info.append(tr)
        width += w_mid
        width_prefix[idx + 1] = width
        letters += count
        letter_prefix[idx + 1] = letters
        reading += read
        reading_prefix[idx + 1] = reading
        prev_kind = right_kind
        prev_punct = tok.punct
    cost, hard, sentence, clause = boundary_costs(info, starts, ends, settings, bonds)
    return Prepared(
        tokens=tokens,
        starts=starts,
        ends=ends,
        sep=sep,
        sep_w=sep_w,
        inline=inline,
        final=final,
        drop_w=drop_w,
        width_prefix=width_prefix,
        letter_prefix=letter_prefix,
        reading_prefix=reading_prefix,
        cost=cost,
        hard=hard,
        sentence=sentence,
        clause=clause,
        max_width=settings.max_width,
    )


def _line_ok(prep: Prepared, i: int, j: int) -> bool:
    return i == j or prep.width(i, j) <= prep.max_width


def break_lines(prep: Prepared, i: int, j: int, max_lines: int) -> tuple[str, ...]:
    """The lines of the cue made of tokens i..j: as few as fit, balanced, bottom-heavy, broken at good places."""
    need = prep.min_lines(i, j)
    if need <= 1:
        return (prep.line_text(i, j),)
    if need == 2:
        wp, sw, dw, max_w, cost = prep.width_prefix, prep.sep_w, prep.drop_w, prep.max_width, prep.cost
        head = wp[i] + sw[i]
        tail = wp[j + 1] - dw[j]
        inner = [k for k in range(i, j) if prep.sentence[k]]
        best_m = -1
        best_cost = float("inf")
        for m in range(i, j):
            w1 = wp[m + 1] - dw[m] - head  # == prep.width(i, m); it only grows with m
            if w1 > max_w and m > i:
                break
            w2 = tail - (wp[m + 1] + sw[m + 1])  # == prep.width(m + 1, j)
            if w2 > max_w and m + 1 < j:
                continue
            d = (w1 - w2) / max_w
            c = _BALANCE * d * d + (_TOP_HEAVY if w1 > w2 else 0.0) + _BOUNDARY * cost[m]
            if inner and any(k != m for k in inner):
                c += _SENTENCE_INSIDE
            if c < best_cost:
                best_cost = c
                best_m = m
        if best_m >= 0:
            return (prep.line_text(i, best_m), prep.line_text(best_m + 1, j))
    return _break_many(prep, i, j, need)


def _break_many(prep: Prepared, i: int, j: int, lines: int) -> tuple[str, ...]:
    """Exactly ``lines`` lines by dynamic programming (used for three or more lines; cues are short)."""
    total = prep.width(i, j)
    target = total / lines
    inf = float("inf")
    size = j - i + 2
    # best[l][k]: cost of setting tokens i..i+k-1 on l lines; back[l][k]: where the last line starts
    best = [[inf] * size for _ in range(lines + 1)]
    back = [[-1] * size for _ in range(lines + 1)]
    best[0][0] = 0.0
    for line in range(1, lines + 1):
        for k in range(1, size):
            end = i + k - 1
            for s in range(k - 1, -1, -1):
                start = i + s
                if not _line_ok(prep, start, end):
                    break
                prev = best[line - 1][s]
                if prev == inf:
                    continue
                d = (prep.width(start, end) - target) / prep.max_width
                c = prev + _BALANCE * d * d + (_BOUNDARY * prep.cost[end] if end < j else 0.0)
                if c < best[line][k]:
                    best[line][k] = c
                    back[line][k] = s
    if best[lines][size - 1] == inf:  # cannot happen when the segmenter did its job; never lose text
        return (prep.line_text(i, j),)
    out: list[str] = []
    k = size - 1
    for line in range(lines, 0, -1):
        s = back[line][k]
        out.append(prep.line_text(i + s, i + k - 1))
        k = s
    return tuple(reversed(out))

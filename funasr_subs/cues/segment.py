"""Which tokens go into which cue: sentence and pause breaks, balanced splits of long runs, merges of scraps."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import replace

from funasr_subs.cues.layout import Prepared
from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import reading_length

#: A cue with fewer letters than this is a scrap unless it is a whole sentence standing alone between pauses.
MIN_LETTERS = 4
#: A cue that is not a whole sentence, whose speech lasts less than FLASH_MS beside a silence of at most
#: FLASH_GAP_MS, flashes by: it joins a neighbour when the two fit one cue (``所有的执`` for 0.9 s,
#: ``一套辅助驾驶`` for 1.0 s after a 4.4 s cue).
FLASH_MS = 1500
FLASH_GAP_MS = 1000
# Split scoring (see _split): cost per cue, weight of the break's cost, penalty for a scrap, penalty for a two-line
# cue that holds a clause mark but can break its lines at none. The last one is small: it decides between splits of
# a long sentence into as many cues, and stays far below what moving a cue break off a clause mark costs
# (_BREAK_WEIGHT * (WORD_COST - CLAUSE_COST) = 1.05), so a cue break never leaves a comma to mend a line break.
_PER_CUE = 1.0
_BREAK_WEIGHT = 1.5
_SCRAP = 3.0
_LINE_BREAK = 0.25

Span = tuple[int, int]  # first and last token index, inclusive


def segment(prep: Prepared, settings: CueSettings) -> list[Span]:
    """Group all tokens into cues, in order; every token lands in exactly one cue."""
    n = len(prep.starts)
    if n == 0:
        return []
    spans: list[Span] = []
    first = 0
    for k in range(n):
        if prep.hard[k]:
            if fits(prep, settings, first, k):
                spans.append((first, k))
            else:
                spans.extend(_split(prep, settings, first, k))
            first = k + 1
    return merge_scraps(prep, settings, spans)


def fits(prep: Prepared, settings: CueSettings, i: int, j: int) -> bool:
    """True when tokens i..j make one cue within the line budget and the maximum duration (one token always fits)."""
    if i == j:
        return True
    if prep.ends[j] - prep.starts[i] > settings.max_duration:
        return False
    if prep.width(i, j) <= settings.max_width:
        return True
    return prep.min_lines(i, j) <= settings.max_lines


def sentences_fit(prep: Prepared, settings: CueSettings, i: int, j: int) -> bool:
    """True when the sentences in tokens i..j can each start on a line of their own: the cue is one line, or (two
    lines) it holds one sentence end and the lines can break right there. A new sentence never starts at the end
    of a line it cannot finish on (``…Jackson。这期视频 / 我们一起…``)."""
    inner = [k for k in range(i, j) if prep.sentence[k]]
    if not inner or prep.width(i, j) <= settings.max_width or settings.max_lines != 2:
        return True
    if len(inner) > 1:
        return False
    k = inner[0]
    return prep.width(i, k) <= settings.max_width and (k + 1 == j or prep.width(k + 1, j) <= settings.max_width)


def _split(prep: Prepared, settings: CueSettings, a: int, b: int) -> list[Span]:
    """Best partition of tokens a..b into cues that fit: few cues, filled evenly, broken at good places.

    Dynamic programming over cue ends: ``best[j]`` is the least cost of tokens a..j-1; a cue i..j costs
    ``_PER_CUE + _BREAK_WEIGHT * cost[j] + slack**2``, slack being the share of the cue's line capacity left unused,
    plus ``_SCRAP`` for a scrap and ``_LINE_BREAK`` for a two-line cue with a clause mark inside where no line break
    after a clause mark fits (see _line_penalty_below); ties go to the later start. The starts that fit (line
    budget counted by greedy filling from the right, maximum duration) form a window found in O(1).

    Inside the window only the prefix minima of ``best`` need scoring, on each side of the line penalty's border:
    a later start with a higher ``best`` also has more slack and no smaller scrap penalty, so it costs strictly
    more. Following "next smaller-or-equal" links (kept by a stack, amortised O(1) per token) visits just those
    few, so the whole split is linear in b - a. The strictness holds while slack steps (at least
    ``0.25 / capacity**2``, widths being multiples of 0.5) are far above float rounding of the costs; past that
    bound every start in the window is scored (same result, slower).
    """
    max_w = settings.max_width
    max_dur = settings.max_duration
    capacity = max_w * settings.max_lines
    wp, sw, dw = prep.width_prefix, prep.sep_w, prep.drop_w
    starts, ends = prep.starts, prep.ends
    n = b - a + 1
    # Relative indices from here on (token a + i). width(i, e) == tail[e] - head[i], exactly (multiples of 0.5).
    head = [wp[i] + sw[i] for i in range(a, b + 1)]
    tail = [wp[e + 1] - dw[e] for e in range(a, b + 1)]
    lp = prep.letter_prefix[a : b + 2]
    bases = [_PER_CUE + _BREAK_WEIGHT * c for c in prep.cost[a:b]]
    bases.append(_PER_CUE)  # no break cost after the run's last token
    line_start = _line_starts(head, tail, max_w)
    first = line_start
    for _ in range(settings.max_lines - 1):
        first = [line_start[s - 1] if s else 0 for s in first]
    clause = prep.clause[a : b + 1]
    penalised = _line_penalty_below(clause, line_start, first) if settings.max_lines == 2 and any(clause) else None
    size = n + 1
    best = [0.0] * size  # best[k]: tokens 0..k-1 placed (always finite: a lone token is always a cue)
    back = [0] * size
    nxt = [size] * size  # nxt[k]: the first index after k whose best is <= best[k] (size: none yet)
    stack = [0]  # indices without a nxt yet; their best values rise strictly along the stack
    limit = 2.0**46 / (capacity * capacity) - max(bases) - _SCRAP - _LINE_BREAK - 1.0  # see the docstring
    linked = limit > 0
    if not linked:
        nxt = list(range(1, size + 1))
    for e in range(n):
        lo = first[e]
        end_e = ends[a + e]
        if lo < e and end_e - starts[a + lo] > max_dur:
            lo = bisect_left(starts, end_e - max_dur, a + lo, a + e) - a
        border = penalised[e] if penalised is not None else 0  # starts below the border pay _LINE_BREAK
        base = bases[e]
        tl = tail[e]
        scrap_above = lp[e + 1] - MIN_LETTERS  # starts i with lp[i] above this make a scrap
        best_c = float("inf")
        best_i = e
        i = lo
        while i < e and tl - head[i] > capacity:  # wider than the capacity (a lone wide token): negative slack
            slack = (capacity - (tl - head[i])) / capacity
            c = best[i] + base + slack * slack
            if lp[i] > scrap_above:
                c += _SCRAP
            if i < border:
                c += _LINE_BREAK
            if c <= best_c:
                best_c = c
                best_i = i
            i += 1
        rest = i if i > border else border  # where the starts that pay no line penalty begin
        while i < border:
            slack = (capacity - (tl - head[i])) / capacity
            c = best[i] + base + slack * slack
            if lp[i] > scrap_above:
                c += _SCRAP
            c += _LINE_BREAK
            if c <= best_c:
                best_c = c
                best_i = i
            i = nxt[i]
        i = rest
        while i <= e:
            slack = (capacity - (tl - head[i])) / capacity
            c = best[i] + base + slack * slack
            if lp[i] > scrap_above:
                c += _SCRAP
            if c <= best_c:
                best_c = c
                best_i = i
            i = nxt[i]
        best[e + 1] = best_c
        back[e + 1] = best_i
        if linked:
            while stack and best[stack[-1]] >= best_c:
                nxt[stack.pop()] = e + 1
            stack.append(e + 1)
            if best_c > limit:  # rounding could now blur slack steps: score every start from here on
                linked = False
                nxt = list(range(1, size + 1))
    out: list[Span] = []
    k = size - 1
    while k > 0:
        s = back[k]
        out.append((a + s, a + k - 1))
        k = s
    out.reverse()
    return out


def _line_starts(head: list[float], tail: list[float], max_w: float) -> list[int]:
    """For each last token e, where the line ending at e starts when filled greedily from the right: the first
    token that still fits in ``max_w`` (a token wider than a line takes one on its own)."""
    line_start = [0] * len(tail)
    x = 0
    for e, t in enumerate(tail):  # both ends only move right: head and tail never decrease
        while x < e and t - head[x] > max_w:
            x += 1
        line_start[e] = x
    return line_start


def _line_penalty_below(clause: list[bool], line_start: list[int], first: list[int]) -> list[int]:
    """For each last token e, the border below which a start i makes a two-line cue i..e that pays ``_LINE_BREAK``:
    a clause mark follows some token m inside the cue (i <= m < e), yet no line break after a clause mark fits.

    The bottom line can start no earlier than ``line_start[e]``, and a top line i..m fits when i >= line_start[m];
    so with g the first clause mark at or after ``line_start[e] - 1``, every start from ``line_start[g]`` on can break
    at a clause mark, and the starts that pay are those from ``first[e]`` up to the smallest of
    ``line_start[g] - 1``, the last clause mark before e, and ``line_start[e] - 1`` (the last start of two lines).
    """
    n = len(clause)
    after = [n] * (n + 1)  # after[x]: the first clause mark at or after x
    for x in range(n - 1, -1, -1):
        after[x] = x if clause[x] else after[x + 1]
    border = [0] * n
    last = -1  # the last clause mark before e
    for e in range(n):
        top = line_start[e] - 1  # the last start of a two-line cue ending at e; the earliest top-line end
        if top >= first[e] and last >= first[e]:
            end = min(top, last)
            g = after[top]
            if g < e:
                end = min(end, line_start[g] - 1)
            border[e] = end + 1
        if clause[e]:
            last = e
    return border


def _cramped(prep: Prepared, settings: CueSettings, i: int, j: int) -> bool:
    """True when the next cue starts before tokens i..j could be shown for ``min_duration`` or read at
    ``max_cps``."""
    if j + 1 >= len(prep.starts):
        return False
    room = prep.starts[j + 1] - prep.starts[i] - settings.min_gap
    if room < settings.min_duration:
        return True
    if settings.max_cps <= 0:
        return False
    chars = prep.reading(i, j) if settings.profile == "zh" else reading_length(prep.line_text(i, j), settings.profile)
    need = math.ceil(chars * 1000 / settings.max_cps)
    # the cue may stay past the next start only if that one moves: it does not (its speech starts there)
    return room < need


def _is_scrap(prep: Prepared, settings: CueSettings, spans: list[Span], idx: int) -> bool:
    """A cue too small to stand alone: under MIN_LETTERS letters (unless a whole sentence standing alone between
    pauses), cramped — the next cue starts before this one could be shown for ``min_duration`` or read — or a
    flash (see FLASH_MS)."""
    i, j = spans[idx]
    last = len(prep.starts) - 1
    if _cramped(prep, settings, i, j):
        return True
    whole_sentence = (i == 0 or prep.sentence[i - 1]) and prep.sentence[j]
    if not whole_sentence and prep.ends[j] - prep.starts[i] < FLASH_MS:
        near_before = i > 0 and prep.starts[i] - prep.ends[i - 1] <= FLASH_GAP_MS
        near_after = j < last and prep.starts[j + 1] - prep.ends[j] <= FLASH_GAP_MS
        if near_before or near_after:
            return True
    if prep.letters(i, j) >= MIN_LETTERS:
        return False
    alone_before = i == 0 or prep.starts[i] - prep.ends[i - 1] > settings.pause
    alone_after = j == last or prep.starts[j + 1] - prep.ends[j] > settings.pause
    return not (whole_sentence and alone_before and alone_after)


def _borrow(prep: Prepared, settings: CueSettings, spans: list[Span], idx: int) -> list[Span] | None:
    """A scrap that ends a sentence, followed by a cue it cannot join whole: the scrap's line, then a second line
    that starts the next sentence (a sentence may start a line, never end one), the rest its own cue; the second
    line ends at the best break that leaves the rest no scrap. None when no such split exists."""
    i, j = spans[idx]
    if idx + 1 >= len(spans) or not prep.sentence[j] or settings.max_lines < 2:
        return None
    if prep.width(i, j) > settings.max_width:
        return None
    _, nj = spans[idx + 1]
    best: tuple[float, int] | None = None
    cps = settings.max_cps
    for m in range(j + 1, nj):
        if prep.width(j + 1, m) > settings.max_width:
            break
        if not fits(prep, settings, i, m) or prep.letters(m + 1, nj) < MIN_LETTERS:
            continue
        shown = prep.starts[m + 1] - prep.starts[i] - settings.min_gap  # the most time the cue can have
        if cps > 0 and reading_length(prep.line_text(i, m), settings.profile) * 1000 / cps > shown:
            continue  # too fast to read: timing does not allow it
        cost = prep.cost[m]
        if best is None or cost <= best[0]:
            best = (cost, m)
    if best is None:
        return None
    m = best[1]
    return [(i, m), (m + 1, nj)]


def merge_scraps(prep: Prepared, settings: CueSettings, spans: list[Span]) -> list[Span]:
    """Join scraps (see _is_scrap) to a neighbour, across the weaker boundary, when the result fits."""
    out = list(spans)
    idx = 0
    while idx < len(out):
        if not _is_scrap(prep, settings, out, idx):
            idx += 1
            continue
        i, j = out[idx]
        options: list[tuple[float, int, int]] = []  # (boundary strength, gap, direction)
        if idx > 0:
            pi, _ = out[idx - 1]
            if fits(prep, settings, pi, j) and sentences_fit(prep, settings, pi, j):
                options.append((-prep.cost[i - 1], prep.starts[i] - prep.ends[i - 1], -1))
        if idx + 1 < len(out):
            _, nj = out[idx + 1]
            if fits(prep, settings, i, nj) and sentences_fit(prep, settings, i, nj):
                options.append((-prep.cost[j], prep.starts[j + 1] - prep.ends[j], 1))
        if not options:
            borrowed = _borrow(prep, settings, out, idx)
            if borrowed is not None:
                out[idx : idx + 2] = borrowed
                continue
            # timing does not allow the sentences their own lines: the rules come first; and where one line
            # cannot be read in the time the speech gives it, a second line may hold a neighbour's words
            wider = settings
            if settings.max_lines == 1 and _cramped(prep, settings, i, j):
                wider = replace(settings, max_lines=2)
            if idx > 0 and fits(prep, wider, out[idx - 1][0], j):
                options.append((-prep.cost[i - 1], prep.starts[i] - prep.ends[i - 1], -1))
            if idx + 1 < len(out) and fits(prep, wider, i, out[idx + 1][1]):
                options.append((-prep.cost[j], prep.starts[j + 1] - prep.ends[j], 1))
        if not options:
            idx += 1
            continue
        _, _, direction = min(options)
        if direction < 0:
            pi, _ = out[idx - 1]
            out[idx - 1 : idx + 1] = [(pi, j)]
            idx -= 1
        else:
            _, nj = out[idx + 1]
            out[idx : idx + 2] = [(i, nj)]
    return out

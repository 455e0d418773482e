"""Which tokens go into which cue: sentence and pause breaks, balanced splits of long runs, merges of scraps."""

from __future__ import annotations

from bisect import bisect_left

from funasr_subs.cues.layout import Prepared
from funasr_subs.cues.settings import CueSettings

#: A cue with fewer letters than this is a scrap unless it is a whole sentence standing alone between pauses.
MIN_LETTERS = 4
# Split scoring (see _split): cost per cue, weight of the break's cost, penalty for a scrap.
_PER_CUE = 1.0
_BREAK_WEIGHT = 1.5
_SCRAP = 3.0

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


def _split(prep: Prepared, settings: CueSettings, a: int, b: int) -> list[Span]:
    """Best partition of tokens a..b into cues that fit: few cues, filled evenly, broken at good places.

    Dynamic programming over cue ends: ``best[j]`` is the least cost of tokens a..j-1; a cue i..j costs
    ``_PER_CUE + _BREAK_WEIGHT * cost[j] + slack**2`` (plus ``_SCRAP`` for a scrap), slack being the share of the
    cue's line capacity left unused; ties go to the later start. The starts i that fit (line budget counted by
    greedy filling from the right, maximum duration) form a window whose left end is found in O(1).

    Inside the window only the prefix minima of ``best`` need scoring: a later start with a higher ``best`` also has
    more slack and no smaller scrap penalty, so it costs strictly more. Following "next smaller-or-equal" links
    (kept by a stack, amortised O(1) per token) visits just those few, so the whole split is linear in b - a.
    The strictness holds while slack steps (at least ``0.25 / capacity**2``, widths being multiples of 0.5) are far
    above float rounding of the costs; past that bound every start in the window is scored (same result, slower).
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
    first = _first_starts(head, tail, max_w, settings.max_lines)
    size = n + 1
    best = [0.0] * size  # best[k]: tokens 0..k-1 placed (always finite: a lone token is always a cue)
    back = [0] * size
    nxt = [size] * size  # nxt[k]: the first index after k whose best is <= best[k] (size: none yet)
    stack = [0]  # indices without a nxt yet; their best values rise strictly along the stack
    limit = 2.0**46 / (capacity * capacity) - max(bases) - _SCRAP - 1.0  # see the docstring
    linked = limit > 0
    if not linked:
        nxt = list(range(1, size + 1))
    for e in range(n):
        lo = first[e]
        end_e = ends[a + e]
        if lo < e and end_e - starts[a + lo] > max_dur:
            lo = bisect_left(starts, end_e - max_dur, a + lo, a + e) - a
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
            if c <= best_c:
                best_c = c
                best_i = i
            i += 1
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


def _first_starts(head: list[float], tail: list[float], max_w: float, max_lines: int) -> list[int]:
    """For each last token e, the first token a cue ending at e can start with and keep within ``max_lines`` lines,
    lines filled greedily from the right (which needs the fewest lines; a token wider than a line takes one)."""
    line_start = [0] * len(tail)
    x = 0
    for e, t in enumerate(tail):  # both ends only move right: head and tail never decrease
        while x < e and t - head[x] > max_w:
            x += 1
        line_start[e] = x
    first = line_start
    for _ in range(max_lines - 1):
        first = [line_start[s - 1] if s else 0 for s in first]
    return first


def _is_scrap(prep: Prepared, settings: CueSettings, spans: list[Span], idx: int) -> bool:
    """A cue too small to stand alone: under MIN_LETTERS letters (unless a whole sentence standing alone between
    pauses), or cramped — the next cue starts before this one could be shown for ``min_duration``."""
    i, j = spans[idx]
    last = len(prep.starts) - 1
    if j < last and prep.starts[j + 1] - prep.starts[i] < settings.min_duration + settings.min_gap:
        return True
    if prep.letters(i, j) >= MIN_LETTERS:
        return False
    whole_sentence = (i == 0 or prep.sentence[i - 1]) and prep.sentence[j]
    alone_before = i == 0 or prep.starts[i] - prep.ends[i - 1] > settings.pause
    alone_after = j == last or prep.starts[j + 1] - prep.ends[j] > settings.pause
    return not (whole_sentence and alone_before and alone_after)


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
            if fits(prep, settings, pi, j):
                options.append((-prep.cost[i - 1], prep.starts[i] - prep.ends[i - 1], -1))
        if idx + 1 < len(out):
            _, nj = out[idx + 1]
            if fits(prep, settings, i, nj):
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

"""Which tokens go into which cue: sentence and pause breaks, balanced splits of long runs, merges of scraps."""

from __future__ import annotations

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

    Dynamic programming over cue ends; for each end the candidate starts are scanned right to left while the
    cue still fits (greedy line filling from the right counts the lines), so the cost is linear in the run
    length times the number of tokens one cue can hold.
    """
    max_w = settings.max_width
    max_lines = settings.max_lines
    max_dur = settings.max_duration
    capacity = max_w * max_lines
    # width(i, j) == wp[j + 1] - dw[j] - wp[i] - sw[i]: the loop below inlines it (it runs for every token)
    wp, sw, dw = prep.width_prefix, prep.sep_w, prep.drop_w
    starts, ends, lp, cost = prep.starts, prep.ends, prep.letter_prefix, prep.cost
    size = b - a + 2
    best = [0.0] * size  # best[k]: tokens a..a+k-1 placed (always finite: a lone token is always a cue)
    back = [0] * size
    for j in range(a, b + 1):
        tail = wp[j + 1] - dw[j]
        line_tail = tail  # greedy from the right: the current (top-most) line ends at line_tail
        lines = 1
        base = _PER_CUE + (_BREAK_WEIGHT * cost[j] if j < b else 0.0)
        end_j = ends[j]
        letters_j = lp[j + 1]
        best_c = float("inf")
        best_i = j
        i = j
        while i >= a:
            head = wp[i] + sw[i]
            if i < j:
                if end_j - starts[i] > max_dur:
                    break
                if line_tail - head > max_w:
                    lines += 1
                    if lines > max_lines:
                        break
                    line_tail = wp[i + 1] - dw[i]
            slack = (capacity - (tail - head)) / capacity
            c = best[i - a] + base + slack * slack
            if letters_j - lp[i] < MIN_LETTERS:
                c += _SCRAP
            if c < best_c:
                best_c = c
                best_i = i
            i -= 1
        best[j - a + 1] = best_c
        back[j - a + 1] = best_i - a
    out: list[Span] = []
    k = size - 1
    while k > 0:
        s = back[k]
        out.append((a + s, a + k - 1))
        k = s
    out.reverse()
    return out


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

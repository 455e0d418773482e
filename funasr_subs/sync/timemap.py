"""A piecewise-linear time map (subtitle time → media time) and the dynamic programme that finds its pieces.

Each piece is ``media = ratio * subtitle + offset`` over a range of subtitle time. A constant offset is one piece
with ratio 1; a frame-rate mismatch is one piece with ratio 25/23.976; a cut or an inserted scene starts a new piece
with another offset. Pieces are found by a Viterbi pass over *anchors* (points whose evidence favours one offset or
another) and a small set of candidate offsets: staying on an offset is free, switching costs a fixed penalty, and
each anchor pays its (capped, so outliers cannot dominate) cost for the offset chosen.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Frame-rate ratios people meet: 25 ↔ 23.976 (PAL speed-up), 24 ↔ 23.976, 25 ↔ 24, 30 ↔ 29.97, 29.97 ↔ 25.
COMMON_RATIOS: tuple[float, ...] = tuple(
    sorted(
        {1.0}
        | {a / b for a, b in ((25, 24000 / 1001), (24, 24000 / 1001), (25, 24), (30, 30000 / 1001), (30000 / 1001, 25))}
        | {b / a for a, b in ((25, 24000 / 1001), (24, 24000 / 1001), (25, 24), (30, 30000 / 1001), (30000 / 1001, 25))}
    )
)


@dataclass(frozen=True, slots=True)
class Piece:
    """``media_ms = ratio * subtitle_ms + offset_ms`` for subtitle times from ``from_ms`` on (until the next piece)."""

    from_ms: int
    ratio: float
    offset_ms: float

    def apply(self, ms: float) -> int:
        return round(self.ratio * ms + self.offset_ms)


@dataclass(frozen=True, slots=True)
class TimeMap:
    """Pieces in subtitle-time order; the first one also covers every time before it."""

    pieces: tuple[Piece, ...]

    def piece_at(self, ms: float) -> Piece:
        idx = bisect_right([p.from_ms for p in self.pieces], ms) - 1
        return self.pieces[max(idx, 0)]

    def apply(self, ms: float) -> int:
        return self.piece_at(ms).apply(ms)

    def splits(self) -> list[tuple[int, int]]:
        """Where the offset jumps: (subtitle ms, jump in ms at that point), one per boundary between pieces."""
        out = []
        for a, b in itertools.pairwise(self.pieces):
            out.append((b.from_ms, round(b.apply(b.from_ms) - a.apply(b.from_ms))))
        return out


def viterbi(cost: FloatArray, switch: float) -> npt.NDArray[np.int64]:
    """The state per row minimising the sum of ``cost[row, state]`` plus ``switch`` per change of state."""
    n, k = cost.shape
    return viterbi_blocks([cost], n, k, switch)


def viterbi_blocks(blocks: Iterable[FloatArray], n: int, k: int, switch: float) -> npt.NDArray[np.int64]:
    """:func:`viterbi` over a cost matrix of ``n`` rows and ``k`` states given as blocks of rows, in order: only
    one block and the back-pointers (the smallest integers that hold ``k``) are in memory at once."""
    back = np.zeros((n, k), dtype=np.min_scalar_type(max(k - 1, 0)))
    dp: FloatArray | None = None
    keep = np.arange(k)
    i = 0
    for block in blocks:
        for row in block:
            if dp is None:
                dp = row.copy()
            else:
                best = int(np.argmin(dp))
                moved = dp[best] + switch
                choose = moved < dp
                back[i] = np.where(choose, best, keep)
                dp = np.where(choose, moved, dp) + row
            i += 1
    assert dp is not None and i == n
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(np.argmin(dp))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def path_cost(cost: FloatArray, path: npt.NDArray[np.int64], switch: float) -> float:
    rows = np.arange(len(path))
    return float(cost[rows, path].sum() + switch * np.count_nonzero(np.diff(path)))


def offset_peaks(offsets: FloatArray, *, bin_ms: float = 100.0, min_count: int = 2, limit: int = 40) -> list[float]:
    """Candidate offsets: the densest clusters of ``offsets`` (the median of each peak's neighbourhood)."""
    if offsets.size == 0:
        return []
    lo = float(offsets.min())
    idx = np.floor((offsets - lo) / bin_ms).astype(np.int64)
    counts = np.bincount(idx)
    smooth = counts.astype(np.float64)
    smooth[1:] += counts[:-1] * 0.5
    smooth[:-1] += counts[1:] * 0.5
    order = np.argsort(-smooth, kind="stable")
    peaks: list[float] = []
    taken = np.zeros(len(counts), dtype=bool)
    for b in order:
        if smooth[b] < min_count or len(peaks) >= limit:
            break
        if taken[max(b - 2, 0) : b + 3].any():
            continue
        taken[b] = True
        near = offsets[np.abs(offsets - (lo + (b + 0.5) * bin_ms)) <= 1.5 * bin_ms]
        if near.size:
            peaks.append(float(np.median(near)))
    return peaks


def theil_sen(xs: FloatArray, ys: FloatArray, *, min_dx: float = 20_000.0, pairs: int = 4000) -> float | None:
    """Median slope over random pairs of points at least ``min_dx`` apart (seeded: the same input, the same answer)."""
    n = xs.size
    if n < 4:
        return None
    rng = np.random.default_rng(12345)
    i = rng.integers(0, n, pairs)
    j = rng.integers(0, n, pairs)
    dx = xs[j] - xs[i]
    ok = np.abs(dx) >= min_dx
    if np.count_nonzero(ok) < 10:
        return None
    return float(np.median((ys[j][ok] - ys[i][ok]) / dx[ok]))


def _likely(ratios: Sequence[float], x: FloatArray, y: FloatArray, keep: int = 3) -> list[float]:
    """The ratios worth a Viterbi pass: under the right one most offsets fall into few 400 ms bins.

    Ratio 1 always stays (it wins ties)."""

    def score(ratio: float) -> int:
        d = y - ratio * x
        counts = np.bincount(np.floor((d - d.min()) / 400.0).astype(np.int64))
        return int(np.sort(counts)[-3:].sum())

    scored = sorted(ratios, key=score, reverse=True)
    return [1.0, *[r for r in scored[:keep] if r != 1.0]]


@dataclass(frozen=True, slots=True)
class Fit:
    """A time map with how well its anchors agree: ``inliers[i]`` for anchor i, ``cost`` of the chosen path."""

    time_map: TimeMap
    inliers: tuple[bool, ...]
    cost: float
    ratio: float


def fit_anchors(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    cap: float = 1500.0,
    switch: float = 6000.0,
    inlier_ms: float = 400.0,
    ratios: Sequence[float] = COMMON_RATIOS,
) -> Fit | None:
    """A piecewise map through anchor points (subtitle ms → media ms), robust to outliers; None without anchors.

    Every ratio in ``ratios`` (plus a Theil-Sen estimate) is tried; for each, the offsets ``y - ratio * x`` are cut
    into pieces by :func:`viterbi`; the ratio with the cheapest path wins (ties go to ratio 1). Each piece is then
    refitted on its inliers (least squares when it spans a minute or more, so a slow drift is followed too).
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.size == 0:
        return None
    candidates = _likely(list(ratios), x, y)
    estimate = theil_sen(x, y)
    if estimate is not None and 0.8 < estimate < 1.25 and all(abs(estimate - r) > 1e-5 for r in candidates):
        candidates.append(estimate)  # a drift no frame rate explains (a bad encode): tried, but a named ratio wins ties
    best: tuple[float, float, npt.NDArray[np.int64], list[float]] | None = None
    for ratio in candidates:
        d = y - ratio * x
        states = offset_peaks(d, min_count=2 if x.size >= 6 else 1)
        if not states:
            continue
        cost = np.minimum(np.abs(d[:, None] - np.asarray(states)[None, :]), cap)
        path = viterbi(cost, switch)
        simple = 0.0 if ratio == 1.0 else (1.0 + 0.1 * x.size) * (1 if ratio in ratios else 2)
        total = path_cost(cost, path, switch) + simple
        if best is None or total < best[0]:
            best = (total, ratio, path, states)
    if best is None:
        return None
    total, ratio, path, states = best
    d = y - ratio * x
    inlier = np.abs(d - np.asarray(states)[path]) <= inlier_ms
    pieces: list[Piece] = []
    runs = np.flatnonzero(np.diff(path)) + 1
    bounds = [0, *runs.tolist(), x.size]
    for a, b in itertools.pairwise(bounds):
        sel = np.arange(a, b)[inlier[a:b]]
        if sel.size == 0:
            sel = np.arange(a, b)
        px, py = x[sel], y[sel]
        piece_ratio, piece_offset = ratio, float(np.median(py - ratio * px))
        if sel.size >= 8 and px.max() - px.min() >= 60_000:
            slope, icept = np.polyfit(px, py, 1)
            if abs(slope - ratio) < 0.01:
                piece_ratio, piece_offset = float(slope), float(icept)
        start = 0 if not pieces else round((x[a - 1] + x[a]) / 2)
        pieces.append(Piece(start, piece_ratio, piece_offset))
    return Fit(TimeMap(tuple(pieces)), tuple(bool(v) for v in inlier), total, ratio)

"""Other-language alignment: cue intervals against the speech intervals of the reply (numpy).

The text cannot match (an English subtitle on Chinese speech), so only the *rhythm* is compared: cues start where
speech starts and end where it stops. Three steps:

1. The frame-rate ratio and the global offset: for each ratio (the common ones, then a coarse-to-fine search), the
   cue starts and ends are cross-correlated (FFT) with the speech starts and ends, each blurred by a Gaussian.
2. Candidate offsets: the global peaks plus the best peak of every two-minute window of the subtitle.
3. Pieces: a Viterbi pass over the cues (:func:`funasr_subs.sync.timemap.viterbi`) where each cue pays how far its
   start and end land from the nearest speech start and end under each candidate offset; then each piece's offset is
   refined on a 10 ms grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funasr_subs.model import Token
from funasr_subs.sync.timemap import COMMON_RATIOS, FloatArray, Piece, TimeMap, viterbi

ComplexArray = npt.NDArray[np.complex128]

#: Tokens closer than this belong to one stretch of speech.
SPEECH_GAP_MS = 250
#: A cue "lands" on speech when its start is this close to a speech start.
LAND_MS = 300
#: Capped cost per cue end (ms), and the cost of starting a new piece.
CAP_MS = float(LAND_MS)
SWITCH = 10 * CAP_MS
#: Windows for local offset candidates (subtitle time).
WINDOW_MS = 120_000
#: Trusted when at least this share of cues lands, this far above chance.
TRUST_LANDED = 0.5
TRUST_ABOVE_CHANCE = 0.27
#: Shifts used to measure how often cues land on speech by chance.
CHANCE_SHIFTS = (-7900, -4300, -2700, 2300, 3700, 8100)
#: ... and when the expected number of placements as good as this one, among all the offsets, ratios and pieces the
#: search tried, found by chance on speech that has nothing to do with the cues, is at most this. A film's worth of
#: cues clears it by far; a few cues must nearly all land close (benchmarks/bench_sync.py --short-only).
FALSE_ALARMS = 0.001
#: A cue that lands this close to a speech start is the stronger evidence.
CLOSE_MS = LAND_MS / 2


@dataclass(frozen=True, slots=True)
class PatternFit:
    time_map: TimeMap
    ratio: float
    #: share of cues whose start lands within LAND_MS of a speech start, and the same share by chance
    landed: float
    chance: float
    #: for each cue, how far its mapped start is from the nearest speech start (ms)
    distance: tuple[int, ...]
    #: log10 of the expected number of placements as good found by chance (see :func:`false_alarms`)
    log_false_alarms: float = 0.0

    @property
    def trusted(self) -> bool:
        # Measured on the people-made subtitles (tests/sync_data.py): the right speech lands 58-98 % of cues,
        # 31-67 points above chance; another film's speech at most 47 %, 21 points above chance (the ratio and the
        # pieces are searched, so a wrong film still beats chance a little). That holds for whole films; the fewer
        # the cues, the likelier a chance fit: the bar of ``log_false_alarms`` grows as the evidence shrinks.
        return (
            self.landed >= TRUST_LANDED
            and self.landed - self.chance >= TRUST_ABOVE_CHANCE
            and self.log_false_alarms <= math.log10(FALSE_ALARMS)
        )


def speech_intervals(tokens: Sequence[Token], gap_ms: int = SPEECH_GAP_MS) -> list[tuple[int, int]]:
    """Stretches of speech: tokens merged across gaps shorter than ``gap_ms``."""
    out: list[list[int]] = []
    for t in tokens:
        if out and t.start_ms - out[-1][1] < gap_ms:
            out[-1][1] = max(out[-1][1], t.end_ms)
        else:
            out.append([t.start_ms, t.end_ms])
    return [(a, b) for a, b in out]


def _train(times: FloatArray, dt: float, length: int, sigma: float | None) -> FloatArray:
    """Impulses at ``times`` (ms) on a grid of ``dt`` ms, blurred by a Gaussian of ``sigma`` ms (peak 1)."""
    signal = np.zeros(length, dtype=np.float64)
    idx = np.round(times / dt).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < length)]
    np.add.at(signal, idx, 1.0)
    if sigma:
        half = int(np.ceil(3 * sigma / dt))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * dt / sigma) ** 2)
        signal = np.convolve(signal, kernel, mode="same")
    return signal


class _Correlator:
    """Cross-correlation of cue starts/ends (at a ratio) with the blurred speech starts/ends."""

    def __init__(self, starts: FloatArray, ends: FloatArray, sp_starts: FloatArray, sp_ends: FloatArray) -> None:
        self.starts, self.ends = starts, ends
        self.sp_starts, self.sp_ends = sp_starts, sp_ends
        self.cache: dict[tuple[float, float], tuple[ComplexArray, ComplexArray, int, int]] = {}

    def _speech(self, dt: float, sigma: float) -> tuple[ComplexArray, ComplexArray, int, int]:
        key = (dt, sigma)
        if key not in self.cache:
            span = float(max(self.sp_ends.max(), self.sp_starts.max())) + 4 * sigma
            length = int(span / dt) + 1
            n = 1 << (2 * length).bit_length()  # a power of two: pocketfft is slow on sizes with large primes
            s = np.fft.rfft(_train(self.sp_starts, dt, length, sigma), n=n)
            e = np.fft.rfft(_train(self.sp_ends, dt, length, sigma), n=n)
            self.cache[key] = (s, e, length, n)
        return self.cache[key]

    def scores(self, ratio: float, dt: float, sigma: float, sel: npt.NDArray[np.bool_] | None = None) -> FloatArray:
        """score[lag] for offsets ``lag * dt`` (negative lags wrap to the end), per cue (start + half the end)."""
        s_fft, e_fft, length, n = self._speech(dt, sigma)
        starts = self.starts if sel is None else self.starts[sel]
        ends = self.ends if sel is None else self.ends[sel]
        a = _train(ratio * starts, dt, length, None)
        b = _train(ratio * ends, dt, length, None)
        corr = np.fft.irfft(s_fft * np.conj(np.fft.rfft(a, n=n)) + 0.5 * e_fft * np.conj(np.fft.rfft(b, n=n)), n=n)
        return corr / max(starts.size, 1)

    def best(self, ratio: float, dt: float, sigma: float) -> tuple[float, float]:
        corr = self.scores(ratio, dt, sigma)
        lag = int(np.argmax(corr))
        n = corr.size
        return float(corr[lag]), float((lag if lag <= n // 2 else lag - n) * dt)


def _peaks(corr: FloatArray, dt: float, count: int, min_sep_ms: float) -> list[float]:
    n = corr.size
    top = min(count * 50, n - 1)
    best = np.argpartition(-corr, top)[:top]
    order = best[np.argsort(-corr[best])]
    out: list[float] = []
    for lag in order:
        off = float((lag if lag <= n // 2 else lag - n) * dt)
        if all(abs(off - o) >= min_sep_ms for o in out):
            out.append(off)
            if len(out) >= count:
                break
    return out


def _search_ratio(corr: _Correlator, span_ms: float) -> float:
    """The ratio: the best common one, unless a searched ratio scores clearly better."""
    scored = {r: corr.best(r, 50.0, 150.0)[0] for r in COMMON_RATIOS}
    common = max(scored, key=lambda r: scored[r])
    if scored[1.0] >= 0.9 * scored[common]:  # no frame-rate change unless another ratio is clearly better
        common = 1.0
    common_score = scored[common]
    step = 5e-4
    center, width = 1.0, 0.05
    while True:
        sigma = max(150.0, step * span_ms)
        grid = np.arange(center - width, center + width + step / 2, step)
        center = max(grid.tolist(), key=lambda r: corr.best(r, sigma / 3, sigma)[0])
        if sigma <= 150.0:
            break
        width, step = 3 * step, step / 4
    searched = corr.best(center, 50.0, 150.0)[0]
    return center if searched > 1.1 * common_score else common


def _nearest(points: FloatArray, values: FloatArray) -> FloatArray:
    """Distance from each value to the nearest of the sorted ``points``."""
    idx = np.clip(np.searchsorted(points, values), 1, points.size - 1)
    return np.minimum(np.abs(values - points[idx - 1]), np.abs(values - points[idx]))


def fit_pattern(cues: Sequence[tuple[int, int]], speech: Sequence[tuple[int, int]]) -> PatternFit | None:
    """A time map for cue intervals from speech intervals alone; None when either side is (nearly) empty."""
    if len(cues) < 3 or len(speech) < 3:
        return None
    starts = np.asarray([c[0] for c in cues], dtype=np.float64)
    ends = np.asarray([c[1] for c in cues], dtype=np.float64)
    sp_starts = np.asarray([s[0] for s in speech], dtype=np.float64)
    sp_ends = np.asarray([s[1] for s in speech], dtype=np.float64)
    corr = _Correlator(starts, ends, sp_starts, sp_ends)
    ratio = _search_ratio(corr, float(max(ends.max(), sp_ends.max())))
    candidates = _peaks(corr.scores(ratio, 50.0, 150.0), 50.0, 5, 2000.0)
    for lo in np.arange(float(starts.min()), float(starts.max()), WINDOW_MS / 2):
        sel = (starts >= lo) & (starts < lo + WINDOW_MS)
        if np.count_nonzero(sel) >= 5:
            candidates += _peaks(corr.scores(ratio, 100.0, 150.0, sel), 100.0, 1, 2000.0)
    states: list[float] = []
    for c in sorted(candidates):
        if not states or c - states[-1] > 100:
            states.append(c)
    offs = np.asarray(states)
    x_s, x_e = ratio * starts, ratio * ends
    cost = np.minimum(_nearest(sp_starts, x_s[:, None] + offs[None, :]), CAP_MS)
    cost += 0.5 * np.minimum(_nearest(sp_ends, x_e[:, None] + offs[None, :]), CAP_MS)
    path = viterbi(cost, SWITCH)
    pieces: list[Piece] = []
    runs = np.flatnonzero(np.diff(path)) + 1
    bounds = [0, *runs.tolist(), starts.size]
    grid = np.arange(-300.0, 301.0, 10.0)
    mapped = np.zeros(starts.size)
    for a, b in itertools.pairwise(bounds):
        base = offs[path[a]]
        trial = base + grid
        c = np.minimum(_nearest(sp_starts, x_s[a:b, None] + trial[None, :]), LAND_MS).sum(axis=0)
        c += 0.5 * np.minimum(_nearest(sp_ends, x_e[a:b, None] + trial[None, :]), LAND_MS).sum(axis=0)
        offset = float(trial[int(np.argmin(c))])
        mapped[a:b] = x_s[a:b] + offset
        start = 0 if not pieces else round((starts[a - 1] + starts[a]) / 2)
        pieces.append(Piece(start, ratio, offset))
    distance = _nearest(sp_starts, mapped)
    hits = int(np.count_nonzero(distance <= LAND_MS))
    landed = hits / starts.size
    chance = float(np.mean([np.mean(_nearest(sp_starts, mapped + s) <= LAND_MS) for s in CHANCE_SHIFTS]))
    p = max(chance, _coverage(sp_starts, float(sp_ends.max())))
    tried = _tried(float(sp_ends.max() - sp_starts.min()), float(starts.max() - starts.min()), len(pieces))
    # the landed cues, and those that landed closer still: the right speech lands most cues close, a chance fit does
    # not (two tests: the better one counts, paid for by a factor 2)
    close = int(np.count_nonzero(distance <= CLOSE_MS))
    p_close = _coverage(sp_starts, float(sp_ends.max()), CLOSE_MS)
    evidence = min(log10_binomial_tail(hits, starts.size, p), log10_binomial_tail(close, starts.size, p_close))
    alarms = tried + evidence + math.log10(2)
    return PatternFit(TimeMap(tuple(pieces)), ratio, landed, chance, tuple(int(d) for d in distance), alarms)


def _coverage(sp_starts: FloatArray, end: float, land: float = LAND_MS) -> float:
    """The share of the speech's time within ``land`` ms of a speech start: how often a point dropped anywhere lands."""
    lo = np.maximum(sp_starts - land, 0.0)
    hi = sp_starts + land
    covered = float(np.sum(np.minimum(hi[:-1], lo[1:]) - lo[:-1])) + float(hi[-1] - lo[-1])
    return min(covered / max(end, 1.0), 1.0)


def _tried(speech_ms: float, cues_ms: float, pieces: int) -> float:
    """log10 of how many different placements the search could choose from: offsets a landing apart over the speech,
    frame-rate ratios that move the last cue a landing apart (±5 %), each again for every piece."""
    offsets = max(speech_ms / (2 * LAND_MS), 1.0)
    ratios = 1.0 + 0.1 * cues_ms / (2 * LAND_MS)
    return math.log10(ratios) + pieces * math.log10(offsets)


def log10_binomial_tail(k: int, n: int, p: float) -> float:
    """log10 P(X >= k) for X ~ Binomial(n, p): the chance that ``k`` of ``n`` cues land when each does with ``p``."""
    if k <= 0 or p >= 1.0:
        return 0.0
    if p <= 0.0:
        return -math.inf
    terms = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * math.log(p) + (n - j) * math.log1p(-p)
        for j in range(k, n + 1)
    ]
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / math.log(10)

"""Other-language alignment against the speech *heard* in the audio (numpy; pure).

The speech-activity intervals a detector found in the audio (``media/vad.py``, kept in the sidecar) say where
people speak and where they pause, which FunASR's token times hide (a token before a pause runs on into it). The
cues of a subtitle in any language say the same: speech inside a cue, a pause between two. So the two *occupancy*
patterns are compared, as ffsubsync and alass do, in three steps:

1. The frame-rate ratio and the global offset: for each common ratio the cue signal (+1 inside a cue, -1 between
   cues) is cross-correlated by FFT with the speech signal (+1 speech, -1 not) on a 50 ms grid.
2. Pieces (cuts and inserted scenes): candidate offsets are the global peaks and the best peak of every two-minute
   window; a Viterbi pass over the cues (:func:`funasr_subs.sync.timemap.viterbi`) chooses one per cue, each cue
   paying the disagreement (ms) of its own stretch: silence inside it, speech in the pause before and after it.
   Each piece's offset is then refined on a 10 ms grid by the same exact disagreement (interval arithmetic). This
   runs for ratio 1 and the best two others by correlation; the cheapest map wins (ratio 1 a near tie). With the
   speech band's level kept, each split is then moved (a few cues at most) to where the level agrees best.
3. Trust. When the speech band's level was kept beside the intervals (:mod:`funasr_subs.media.level`), by it alone:
   the map's contrast (the level inside the cues against the pauses around them) must stand far out from the same
   cues rotated to every other place in the audio (:mod:`funasr_subs.sync.loudness`). Without it, two ways (either
   suffices). The same search runs on the heard speech shuffled (its stretches and pauses
   in another order: the same rhythm, nothing to do with the cues), which says how well the search's freedom fits
   speech by chance: the map must beat the best of those clearly. Or the pauses the detector heard fall into the
   gaps between the mapped cues far more often than the gaps' share of the time near the cues allows, even counting
   every offset, ratio and piece the search tried: noise fills pauses (at 5 dB the detector bridges most under
   300 ms, which thins the agreement of any map) but never makes one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funasr_subs.media.activity import Level
from funasr_subs.sync.loudness import bounded, contrast_z, cue_contrast
from funasr_subs.sync.pattern import log10_binomial_tail
from funasr_subs.sync.timemap import COMMON_RATIOS, FloatArray, Piece, TimeMap, viterbi_blocks

BoolArray = npt.NDArray[np.bool_]
ComplexArray = npt.NDArray[np.complex128]

#: The grid of the correlations (ms): the offsets they find are refined to 10 ms afterwards.
GRID_MS = 50.0
#: The most points a correlation has (a longer audio gets a coarser grid: memory and time stay bounded).
MAX_GRID_POINTS = 1 << 20
#: The most windows the subtitle is cut into for local candidates (a longer subtitle gets longer steps).
MAX_WINDOWS = 200
#: ... and of the windows' correlations (candidates only: each is refined on the 10 ms grid).
COARSE_MS = 250.0
#: How much of the pause before and after a cue is looked at (ms): speech there means the cue starts or ends wrong.
PAUSE_MS = 600.0
#: A cue's cost is capped (ms), so cues whose speech is gone (a cut) cannot pull the map.
CAP_MS = 1500.0
#: The cost (ms of disagreement) of starting a new piece.
SWITCH_MS = 4000.0
#: Windows for local offset candidates (subtitle time).
WINDOW_MS = 120_000.0
#: Another frame-rate ratio is taken only when its best agreement beats ratio 1's by this share of the cue span.
RATIO_MARGIN = 0.02
#: Trusted when the map beats the mean of the searches on shuffled speech by this many of their standard deviations
MIN_Z = 5.0
#: ... and agrees on more of the cues' time than the best of them, by this over the square root of the number of
#: cues (the fewer the cues, the likelier a chance fit). Measured on espeak-ng speech in music and noise
#: (tests/heard_data.py), as this margin times the root of the cue count: another recording's speech searched the
#: same way at most 0.116 in 108 trials (20-160 cues, 5-20 dB; z up to 5.4 alone); the right speech 0.2-1.5 with 80
#: cues, except English at 5 dB (0.09-0.13, refused: too close to chance to tell).
MIN_ABOVE_BEST = 0.18
#: Frame-rate ratios whose pieces are worked out (the best by the global correlation, and 1), and what a ratio other
#: than 1 costs per cue (ms): the simpler map wins a near tie.
RATIOS_TRIED = 3
RATIO_COST = 20.0
#: A pause heard this close to a gap between cues is in it (edges of the detector and of the cues are not exact).
PAUSE_TOLERANCE_MS = 50.0
#: Trusted by the pauses when the expected number of placements explaining as many of them, found by chance among
#: all the search tried, is at most this. The search tries an offset every OFFSET_STEP_MS over the audio, for each
#: common frame-rate ratio, again for every piece. Measured: another recording's speech, searched the same way, gave
#: a binomial chance of 10^-4.7 at best in 72 trials (10-80 cues, 5 and 20 dB), far from the bar once the search is
#: counted; the right speech 10^-5.5 (English at 5 dB: refused by this test) to 10^-33.
FALSE_ALARMS = 1e-3
OFFSET_STEP_MS = 200.0
#: Searches on shuffled speech that measure the chance level; not run when the pauses give not even this much
#: (log10 binomial chance, the search not counted): the right speech gave -5.5 at worst.
NULLS = 6
NULLS_HOPELESS = -2.0
#: Too little to compare below this.
MIN_CUES = 5
#: Cues whose costs are worked out at once (memory: this times the offsets tried, times ~10 temporaries of 8 bytes).
BLOCK_CUES = 4096
#: With the level kept, where two pieces meet is looked for again this many cues either side of where the heard
#: intervals put it (at 5 dB they are nearly all speech: any cue "fits" either piece).
SPLIT_REACH = 8
#: Trusted by the level (when kept) when the map's contrast is this many standard deviations above the same cues
#: rotated elsewhere in the audio. Measured on espeak-ng speech in music and noise (``python -m
#: benchmarks.bench_sync --heard-trials``): the right speech at least 16.2 with 80 cues (English at 5 dB the lowest),
#: 10.6 with 40 whose map is right; subtitles of other recordings at most 6.4 in 540 trials (10-160 cues, six other
#: recordings in either language, 5-20 dB, three distortions), 5.8 in 60 against two hours of audio (the search's
#: freedom grows with the audio; the chance level, measured on the same audio, grows with it). The rules below,
#: used without the level, accepted 1 of those 540.
MIN_LEVEL_Z = 10.0


@dataclass(frozen=True, slots=True)
class HeardFit:
    time_map: TimeMap
    ratio: float
    #: share of the cues' time (with the pauses around them) where the cues and the heard speech agree
    agreement: float
    #: the same for searches on shuffled speech (the chance level): their mean and their best
    chance: float
    best_chance: float
    #: how many standard deviations of the shuffled searches' agreement the found map is above their mean
    z: float
    cues: int
    #: for each cue, how much of it disagrees with the speech heard: silence inside it, speech in the pauses around
    #: it (ms, capped at CAP_MS)
    disagreement: tuple[int, ...]
    #: log10 of the chance that as many of the pauses heard fall into gaps between cues (:func:`pause_evidence`) ...
    log_pause_chance: float = 0.0
    #: ... and of the expected number of placements as good found by chance among all the search tried
    log_false_alarms: float = 0.0
    #: with the level kept: how far the map stands out from its rotations (:func:`contrast_z`); None without
    level_z: float | None = None

    @property
    def by_pauses(self) -> bool:
        return self.log_false_alarms <= math.log10(FALSE_ALARMS)

    @property
    def trusted(self) -> bool:
        if self.level_z is not None:
            return self.level_z >= MIN_LEVEL_Z
        if self.by_pauses:
            return True
        above = self.agreement - self.best_chance
        return self.z >= MIN_Z and above >= MIN_ABOVE_BEST / math.sqrt(max(self.cues, 1))


class _Heard:
    """Speech intervals with a prefix sum: speech time inside any span, vectorised."""

    def __init__(self, speech: Sequence[tuple[int, int]]) -> None:
        self.starts = np.asarray([s for s, _ in speech], dtype=np.float64)
        self.ends = np.asarray([e for _, e in speech], dtype=np.float64)
        self.before = np.concatenate([[0.0], np.cumsum(self.ends - self.starts)])

    def upto(self, t: FloatArray) -> FloatArray:
        """Speech time in [0, t)."""
        k = np.searchsorted(self.ends, t, side="right")  # intervals ending at or before t are whole
        inside = np.where(
            k < self.starts.size, np.clip(t - self.starts[np.minimum(k, self.starts.size - 1)], 0, None), 0
        )
        return self.before[k] + inside

    def within(self, a: FloatArray, b: FloatArray) -> FloatArray:
        return self.upto(np.maximum(a, b)) - self.upto(a)


class _Cues:
    """Cue intervals with the pauses before and after each (capped at PAUSE_MS; none at a cue that overlaps)."""

    def __init__(self, cues: Sequence[tuple[int, int]]) -> None:
        self.starts = np.asarray([c[0] for c in cues], dtype=np.float64)
        self.ends = np.maximum(np.asarray([c[1] for c in cues], dtype=np.float64), self.starts)
        gap = np.clip(self.starts[1:] - self.ends[:-1], 0, PAUSE_MS)
        self.lead = np.concatenate([[PAUSE_MS], gap])
        self.trail = np.concatenate([gap, [PAUSE_MS]])

    def cost(self, heard: _Heard, ratio: float, offsets: FloatArray, sel: slice = slice(None)) -> FloatArray:
        """Disagreement (ms) of each cue (rows) under each offset (columns): silence in it, speech around it."""
        a = ratio * self.starts[sel, None] + offsets[None, :]
        b = ratio * self.ends[sel, None] + offsets[None, :]
        lead, trail = ratio * self.lead[sel, None], ratio * self.trail[sel, None]
        silent = (b - a) - heard.within(a, b)
        spoken = heard.within(a - lead, a) + heard.within(b, b + trail)
        return np.asarray(np.minimum(silent + spoken, CAP_MS), dtype=np.float64)

    def cost_blocks(self, heard: _Heard, ratio: float, offsets: FloatArray, a: int, b: int) -> Iterator[FloatArray]:
        """:meth:`cost` of cues ``a`` to ``b``, :data:`BLOCK_CUES` rows at a time: the whole matrix of a subtitle
        of 200,000 cues against 200 offsets, with its temporaries, was 3 GB."""
        for lo in range(a, b, BLOCK_CUES):
            yield self.cost(heard, ratio, offsets, slice(lo, min(lo + BLOCK_CUES, b)))

    def span(self, ratio: float) -> FloatArray:
        """The time each cue's cost is measured over."""
        return np.asarray(ratio * (self.ends - self.starts + self.lead + self.trail), dtype=np.float64)


def _signal(intervals: Sequence[tuple[float, float]], lo: float, length: int, grid_ms: float) -> FloatArray:
    """+1 inside the intervals, -1 elsewhere, on the grid from ``lo`` (vectorised: a difference array)."""
    if not intervals:
        return -np.ones(length, dtype=np.float64)
    bounds = (np.asarray(intervals, dtype=np.float64) - lo) / grid_ms
    idx = np.clip(np.round(bounds), 0, length).astype(np.int64)
    idx = idx[idx[:, 1] > idx[:, 0]]
    steps = np.zeros(length + 1, dtype=np.float64)
    np.add.at(steps, idx[:, 0], 1.0)
    np.add.at(steps, idx[:, 1], -1.0)
    inside = np.cumsum(steps[:-1]) > 0  # overlapping intervals (the cues may overlap) count once
    return np.where(inside, 1.0, -1.0)


class _Grid:
    """The speech signal on a grid of ``ms``, transformed once for every correlation with it."""

    def __init__(self, speech: Sequence[tuple[int, int]], end: float, span_ms: float, ms: float) -> None:
        ms = max(ms, (end + 2.2 * span_ms) / MAX_GRID_POINTS)  # a week of audio: a coarser grid, not 1 GB arrays
        self.ms = ms
        signal = _signal([(float(s), float(e)) for s, e in speech], 0.0, int(end / ms) + 1, ms)
        self.n = 1 << int(np.ceil(np.log2(signal.size + 2 * (span_ms * 1.1) / ms + 2)))
        self.fft = np.fft.rfft(signal, n=self.n)

    def correlation(self, cues: _Cues, sel: BoolArray, ratio: float) -> tuple[FloatArray, float]:
        """Agreement of the (selected) cue signal with the speech signal for every offset on the grid; the cue
        signal starts before its first cue (the returned ms), so lag k means offset ``k * ms - first``."""
        s, e = ratio * cues.starts[sel], ratio * cues.ends[sel]
        first = float(s.min()) - PAUSE_MS
        length = int((float(e.max()) + PAUSE_MS - first) / self.ms) + 1
        sig = _signal(list(zip(s.tolist(), e.tolist(), strict=True)), first, length, self.ms)
        corr = np.fft.irfft(self.fft * np.conj(np.fft.rfft(sig, n=self.n)), n=self.n)
        return corr, first


def _peaks(corr: FloatArray, first: float, count: int, min_sep_ms: float, grid_ms: float) -> list[float]:
    """The best ``count`` offsets (ms) of a correlation, at least ``min_sep_ms`` apart."""
    n = corr.size
    top = min(count * 200, n - 1)
    best = np.argpartition(-corr, top)[:top]
    order = best[np.argsort(-corr[best])]
    out: list[float] = []
    for lag in order.tolist():
        off = (lag if lag <= n // 2 else lag - n) * grid_ms - first
        if all(abs(off - o) >= min_sep_ms for o in out):
            out.append(off)
            if len(out) >= count:
                break
    return out


def fit_heard(
    cues: Sequence[tuple[int, int]], speech: Sequence[tuple[int, int]], end_ms: int, level: Level | None = None
) -> HeardFit | None:
    """A time map for cue intervals (subtitle ms) from heard speech intervals (media ms, sorted, the audio
    ``end_ms`` long) and, when kept, the speech band's level (media timeline); None when either side is (nearly)
    empty."""
    if len(cues) < MIN_CUES or len(speech) < 2:
        return None
    c = _Cues(cues)
    heard = _Heard(speech)
    end = max(float(end_ms), float(heard.ends[-1]))
    level = bounded(level) if level is not None else None
    time_map, ratio, found = _search(c, speech, end)
    if level is not None and len(time_map.pieces) > 1 and len(level.values) > 0:
        time_map = _splits_by_level(c, time_map, level)
    mapped = np.asarray(_piece_offsets(time_map, c.starts))
    disagreement = tuple(int(d) for d in _disagreement(c, heard, ratio, mapped))
    k, pauses, share = pause_evidence(c, heard, ratio, mapped)
    pause_chance = log10_binomial_tail(k, pauses, share)
    tried = math.log10(len(COMMON_RATIOS)) + len(time_map.pieces) * math.log10(max(end / OFFSET_STEP_MS, 1.0))
    fit = HeardFit(time_map, ratio, found, 0.0, 0.0, 0.0, len(cues), disagreement, pause_chance, pause_chance + tried)
    if level is not None:
        a, b = ratio * c.starts + mapped, ratio * c.ends + mapped
        z = contrast_z(level, a, b, ratio * c.lead, ratio * c.trail)
        if z is not None:
            return dataclasses.replace(fit, level_z=z)  # the level settles it (the rules below accepted others)
    if fit.by_pauses:
        return fit  # the pauses alone settle it: the searches on shuffled speech (the costly part) are not needed
    if fit.log_pause_chance > NULLS_HOPELESS:
        return fit  # not even a hint in the pauses (another film's speech): not trusted, and no need to measure how
    # the chance level: the same search on speech of the same rhythm that has nothing to do with the cues (its
    # stretches of speech and its pauses shuffled), so what the search's freedom finds anywhere is not evidence
    rng = np.random.default_rng(20261206)
    chances = np.asarray([_search(c, _shuffled(speech, rng), end)[2] for _ in range(NULLS)])
    mean, std = float(chances.mean()), float(chances.std())
    z = (found - mean) / max(std, 1e-3)
    return dataclasses.replace(fit, chance=mean, best_chance=float(chances.max()), z=z)


def _splits_by_level(c: _Cues, time_map: TimeMap, level: Level) -> TimeMap:
    """Each split between two pieces moved (within SPLIT_REACH cues, never past another split) to where the cues
    before it are loudest at the first piece's offset and those after it at the second's; ties keep it."""
    pieces = list(time_map.pieces)
    first = [int(np.searchsorted(c.starts, p.from_ms, side="left")) if i else 0 for i, p in enumerate(pieces)]
    first.append(c.starts.size)
    for i in range(1, len(pieces)):
        left, right = pieces[i - 1], pieces[i]
        lo, hi = max(first[i - 1] + 1, first[i] - SPLIT_REACH), min(first[i + 1] - 1, first[i] + SPLIT_REACH)
        if hi <= lo:
            continue
        span = slice(lo - 1, hi + 1)  # the cues a split between lo-1|lo ... hi|hi+1 may put on either side
        ratio = left.ratio
        offsets = np.asarray([[left.offset_ms], [right.offset_ms]])
        starts, ends = ratio * c.starts[span] + offsets, ratio * c.ends[span] + offsets
        score = cue_contrast(level, starts, ends, ratio * c.lead[span], ratio * c.trail[span])
        # a split before cue k (lo <= k <= hi): cues lo-1..k-1 at the left offset, k..hi at the right
        gains = [float(score[0, : k - lo + 1].sum() + score[1, k - lo + 1 :].sum()) for k in range(lo, hi + 1)]
        now = gains[first[i] - lo]
        best = int(np.argmax(gains))
        if gains[best] > now + 1e-9:
            k = lo + best
            first[i] = k
            pieces[i] = Piece(round(float(c.starts[k - 1] + c.starts[k]) / 2), right.ratio, right.offset_ms)
    return TimeMap(tuple(pieces))


def _shuffled(speech: Sequence[tuple[int, int]], rng: np.random.Generator) -> list[tuple[int, int]]:
    """Speech with the same stretch lengths and pause lengths, each shuffled."""
    lengths = rng.permutation([e - s for s, e in speech])
    pauses = rng.permutation([b[0] - a[1] for a, b in itertools.pairwise(speech)] + [speech[0][0]])
    out: list[tuple[int, int]] = []
    at = 0
    for length, pause in zip(lengths.tolist(), pauses.tolist(), strict=True):
        at += int(pause)
        out.append((at, at + int(length)))
        at += int(length)
    return out


def _search(c: _Cues, speech: Sequence[tuple[int, int]], end: float) -> tuple[TimeMap, float, float]:
    """The best map for the cues on this speech: the map, its ratio and its agreement."""
    heard = _Heard(speech)
    every = np.ones(c.starts.size, dtype=bool)
    span_ms = float(c.ends.max() - c.starts.min()) + 2 * PAUSE_MS
    fine, coarse = _Grid(speech, end, span_ms, GRID_MS), _Grid(speech, end, span_ms, COARSE_MS)
    scored = {ratio: float(fine.correlation(c, every, ratio)[0].max()) / ratio for ratio in COMMON_RATIOS}
    likely = sorted(scored, key=lambda r: -scored[r])[:RATIOS_TRIED]
    best: tuple[float, TimeMap, float] | None = None
    for ratio in [1.0, *[r for r in likely if r != 1.0]]:
        corr, first = fine.correlation(c, every, ratio)
        time_map, cost = _pieces(c, heard, ratio, _peaks(corr, first, 5, 2000.0, fine.ms), coarse)
        # in subtitle time, so that ratios compare; a ratio other than 1 pays a little per cue
        cost = cost / ratio + (0.0 if ratio == 1.0 else RATIO_COST * c.starts.size)
        if best is None or cost < best[0]:
            best = (cost, time_map, ratio)
    assert best is not None
    _, time_map, ratio = best
    mapped = np.asarray(_piece_offsets(time_map, c.starts))
    return time_map, ratio, _agreement(c, heard, ratio, mapped, 0.0, c.span(ratio))


def _pieces(c: _Cues, heard: _Heard, ratio: float, candidates: list[float], coarse: _Grid) -> tuple[TimeMap, float]:
    """The pieces at one ratio and their total cost (ms of disagreement plus the switches): the candidates are the
    global peaks given and the best peak of every window (on the coarse grid)."""
    first, last = float(c.starts.min()), float(c.starts.max())
    for lo in np.arange(first, last, max(WINDOW_MS / 2, (last - first) / MAX_WINDOWS)):
        sel = (c.starts >= lo) & (c.starts < lo + WINDOW_MS)
        if np.count_nonzero(sel) >= MIN_CUES:
            local, local_first = coarse.correlation(c, sel, ratio)
            candidates += _peaks(local, local_first, 1, 2000.0, coarse.ms)
    states: list[float] = []
    for off in sorted(candidates):
        if not states or off - states[-1] > 100:
            states.append(off)
    offs = np.asarray(states)
    path = viterbi_blocks(c.cost_blocks(heard, ratio, offs, 0, c.starts.size), c.starts.size, offs.size, SWITCH_MS)
    runs = np.flatnonzero(np.diff(path)) + 1
    bounds = [0, *runs.tolist(), c.starts.size]
    grid = np.arange(-400.0, 401.0, 10.0)
    pieces: list[Piece] = []
    total_cost = SWITCH_MS * (len(bounds) - 2)
    for a, b in itertools.pairwise(bounds):
        trial = offs[path[a]] + grid
        total = sum((block.sum(axis=0) for block in c.cost_blocks(heard, ratio, trial, a, b)), np.zeros(trial.size))
        best = float(np.min(total))
        # the middle of the best plateau (a run of equal costs: the edges only say "somewhere in here")
        flat = np.flatnonzero(total <= best + 1e-6)
        offset = float(trial[int(flat[len(flat) // 2])])
        start = 0 if not pieces else round(float(c.starts[a - 1] + c.starts[a]) / 2)
        pieces.append(Piece(start, ratio, offset))
        total_cost += best
    return TimeMap(tuple(pieces)), total_cost


def pause_evidence(
    c: _Cues, heard: _Heard, ratio: float, offsets: FloatArray, tolerance: float = PAUSE_TOLERANCE_MS
) -> tuple[int, int, float]:
    """Pauses heard in the audio against the gaps between the mapped cues: (how many of the pauses near the cues
    fall into a gap, how many pauses are near the cues, the share of that time the gaps cover). Near: within the
    pause looked at around each cue (PAUSE_MS at most), so a long stretch without cues is no free evidence. Noise
    fills pauses but never makes one, so each pause heard is a point the map must explain; by chance one lands in a
    gap as often as the gaps cover the time near the cues. A gap reaches ``tolerance`` into the cues beside it."""
    a = ratio * c.starts + offsets
    b = ratio * c.ends + offsets
    near_lo, near_hi = _union(a - ratio * c.lead, b + ratio * c.trail)
    cue_lo, cue_hi = _union(a + tolerance, b - tolerance)
    middles = (heard.ends[:-1] + heard.starts[1:]) / 2
    middles = middles[_inside(near_lo, near_hi, middles)]
    in_gap = ~_inside(cue_lo, cue_hi, middles)
    near = float(np.sum(near_hi - near_lo))
    share = 1.0 - float(np.sum(cue_hi - cue_lo)) / max(near, 1.0)
    return int(np.count_nonzero(in_gap)), int(middles.size), min(max(share, 0.0), 1.0)


def _union(lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The union of intervals [lo, hi) as sorted, disjoint intervals (empty ones dropped)."""
    keep = hi > lo
    order = np.argsort(lo[keep], kind="stable")
    lo, hi = lo[keep][order], hi[keep][order]
    if lo.size == 0:
        return lo, hi
    reach = np.maximum.accumulate(hi)
    new = np.concatenate([[True], lo[1:] > reach[:-1]])
    starts = np.flatnonzero(new)
    ends = np.concatenate([starts[1:], [lo.size]]) - 1
    return lo[starts], reach[ends]


def _inside(lo: FloatArray, hi: FloatArray, points: FloatArray) -> BoolArray:
    """Which points lie in one of the sorted, disjoint intervals [lo, hi)."""
    if lo.size == 0:
        return np.zeros(points.size, dtype=bool)
    k = np.searchsorted(lo, points, side="right") - 1
    return (k >= 0) & (points < hi[np.clip(k, 0, lo.size - 1)])


def _piece_offsets(time_map: TimeMap, starts: FloatArray) -> FloatArray:
    """Each start's piece's offset (as :meth:`TimeMap.piece_at`, all at once: one lookup per cue was quadratic)."""
    at = np.searchsorted(np.asarray([p.from_ms for p in time_map.pieces], dtype=np.float64), starts, side="right")
    offsets = np.asarray([p.offset_ms for p in time_map.pieces], dtype=np.float64)
    return np.asarray(offsets[np.maximum(at - 1, 0)], dtype=np.float64)


def _disagreement(c: _Cues, heard: _Heard, ratio: float, offsets: FloatArray) -> FloatArray:
    """Per cue, each at its own offset: silence heard inside it plus speech heard in the pauses around it (ms,
    capped at CAP_MS)."""
    a = ratio * c.starts + offsets
    b = ratio * c.ends + offsets
    silent = (b - a) - heard.within(a, b)
    spoken = heard.within(a - ratio * c.lead, a) + heard.within(b, b + ratio * c.trail)
    return np.asarray(np.minimum(silent + spoken, CAP_MS), dtype=np.float64)


def _agreement(c: _Cues, heard: _Heard, ratio: float, offsets: FloatArray, shift: float, span: FloatArray) -> float:
    """1 - the capped disagreement over the time looked at, each cue at its own offset plus ``shift``."""
    return 1.0 - float(_disagreement(c, heard, ratio, offsets + shift).sum()) / max(float(span.sum()), 1.0)

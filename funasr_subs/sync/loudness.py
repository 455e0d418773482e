"""How far a map of the cues stands out against the speech band's level (numpy; pure): the trust of ``sync`` by the
speech heard, when the level was kept (:mod:`funasr_subs.media.level`).

Under the right map the speech band is louder inside the cues than in the pauses around them. How much louder
means nothing alone (noise, music, the voice), so the same contrast is measured with the mapped cues *rotated* to
every other place in the audio (the level taken as a circle: every rotation sees real audio): that is what the
cues give on speech that has nothing to do with them, with this audio's own rhythm and noise. The map is trusted
when its contrast is far out in that distribution (:data:`funasr_subs.sync.heard.MIN_LEVEL_Z` standard deviations).
One FFT of the audio's length: milliseconds for a film.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from funasr_subs.media.activity import Level
from funasr_subs.sync.timemap import FloatArray

#: The level is taken relative to its floor: the 10th percentile of the 3 s around each frame (recomputed every
#: 10 frames), so a loud scene and a quiet one count alike; and capped, so a bang is not a sentence.
FLOOR_FRAMES = 100
FLOOR_RANK = 10
FLOOR_STEP = 10
CAP_DB = 30.0
#: Rotations this close to the map's own place are part of its peak, not of the chance level (ms).
NEAR_MS = 2000.0
#: Too short a level to judge by (frames): a minute.
MIN_FRAMES = 2000
#: The most frames looked at (35 hours of 30 ms frames; a longer level is taken in coarser frames: :func:`bounded`).
MAX_FRAMES = 1 << 22


def bounded(level: Level) -> Level:
    """``level`` in frames coarse enough that there are at most :data:`MAX_FRAMES` of them (each the mean of the
    frames it joins): memory and time stay bounded for days of audio (or a sidecar that claims them)."""
    frames = len(level.values)
    if frames <= MAX_FRAMES:
        return level
    join = -(-frames // MAX_FRAMES)
    raw = np.frombuffer(level.values, dtype=np.uint8)[: frames // join * join].reshape(-1, join)
    means = np.concatenate([raw[k : k + 4096].mean(axis=1) for k in range(0, raw.shape[0], 4096)])
    return Level(bytes(np.round(means).astype(np.uint8)), level.frame_ms * join, level.at_ms)


def above_floor(values: bytes) -> FloatArray:
    """Each frame's level above the quiet around it (dB, 0 to CAP_DB)."""
    level = np.frombuffer(values, dtype=np.uint8).astype(np.float64)
    half = FLOOR_FRAMES // 2
    padded = np.pad(level, (half, FLOOR_FRAMES - half), mode="edge")
    at = np.arange(0, level.size, FLOOR_STEP)
    view = np.lib.stride_tricks.sliding_window_view(padded, FLOOR_FRAMES)
    # (a block of windows at a time: all of them copied at once were 80 bytes a frame, 670 MB for 35 hours)
    floors = np.zeros(at.size)
    for k in range(0, at.size, 8192):
        floors[k : k + 8192] = np.partition(view[at[k : k + 8192]], FLOOR_RANK, axis=1)[:, FLOOR_RANK]
    floor = np.repeat(floors, FLOOR_STEP)[: level.size]
    return np.asarray(np.clip(level - floor, 0.0, CAP_DB), dtype=np.float64)


def contrast_z(level: Level, starts: FloatArray, ends: FloatArray, lead: FloatArray, trail: FloatArray) -> float | None:
    """How many standard deviations the mapped cues' contrast (mean level inside the cues less the mean level in
    the pauses before and after them; media ms) is above the same for every rotation of them more than NEAR_MS
    away. None when the level is too short to judge."""
    frames = len(level.values)
    if frames < MIN_FRAMES or starts.size == 0:
        return None
    ms = float(level.frame_ms)
    size = max(frames, int((float((ends + trail).max()) - level.at_ms) / ms) + 2)  # the grid runs on past the end
    inside = _mask(starts, ends, level, size)
    near = _mask(starts - lead, ends + trail, level, size)
    gap = near & ~inside
    if not inside.any() or not gap.any():
        return None
    weight = inside / np.count_nonzero(inside) - gap / np.count_nonzero(gap)
    # the cues wrapped onto the circle of the audio: its length, no padding (a padded stretch would be a rotation
    # that sees no audio, a contrast of 0 that narrows the chance level); every rotation by one FFT
    at = np.flatnonzero(weight)
    pattern = np.zeros(frames)
    np.add.at(pattern, at % frames, weight[at])
    signal = above_floor(level.values)
    corr = np.fft.irfft(np.fft.rfft(signal) * np.conj(np.fft.rfft(pattern)), frames)
    lag = np.arange(frames)
    others = corr[np.minimum(lag, frames - lag) * ms > NEAR_MS]
    spread = float(others.std())
    if spread <= 0.0:
        return None
    return (float(corr[0]) - float(others.mean())) / spread


def cue_contrast(level: Level, starts: FloatArray, ends: FloatArray, lead: FloatArray, trail: FloatArray) -> FloatArray:
    """Each cue's own contrast (rows: cues, columns: the placements given as equal-shaped 2-D arrays, media ms):
    the mean level above its floor inside the cue less that in the pauses before and after it (dB)."""
    signal = above_floor(level.values)
    summed = np.concatenate([[0.0], np.cumsum(signal)])
    ms = float(level.frame_ms)

    def mean(lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
        i = np.clip(np.round((lo - level.at_ms) / ms).astype(np.int64), 0, signal.size)
        j = np.clip(np.round((hi - level.at_ms) / ms).astype(np.int64), 0, signal.size)
        j = np.maximum(i, j)
        return summed[j] - summed[i], (j - i).astype(np.float64)

    inside, n_in = mean(starts, ends)
    before, n_before = mean(starts - lead, starts)
    after, n_after = mean(ends, ends + trail)
    around = (before + after) / np.maximum(n_before + n_after, 1.0)
    return np.asarray(np.where(n_in > 0, inside / np.maximum(n_in, 1.0) - around, 0.0), dtype=np.float64)


def _mask(lo: FloatArray, hi: FloatArray, level: Level, size: int) -> npt.NDArray[np.bool_]:
    """Which of ``size`` frames (from the level's first) lie inside any of [lo, hi) (ms)."""
    ms = float(level.frame_ms)
    first = np.round((lo - level.at_ms) / ms).astype(np.int64)
    last = np.round((hi - level.at_ms) / ms).astype(np.int64)
    steps = np.zeros(size + 1, dtype=np.int64)
    np.add.at(steps, np.clip(first, 0, size), 1)
    np.add.at(steps, np.clip(last, 0, size), -1)
    return np.cumsum(steps[:-1]) > 0

"""The speech band's level kept beside the speech heard: measured per frame, carried through the sidecar (and
refused there when it cannot be ours), and what sync judges a map by when the detector's pauses are too few."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import pytest

from funasr_subs.media.activity import MAX_MS, Level, Speech, speech_from_json, speech_to_json
from funasr_subs.media.level import LEVEL_ZERO, band_levels
from funasr_subs.sync.heard import fit_heard
from funasr_subs.sync.loudness import contrast_z

RATE = 16_000


def _tone(hz: float, ms: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    return amplitude * np.sin(2 * np.pi * hz * t)


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def test_the_level_is_the_speech_band_only() -> None:
    """A 1 kHz tone is loud in the band; a 100 Hz hum and a 6 kHz whistle as loud are 30 dB and more below it;
    digital silence is the floor byte. One byte per whole frame (a partial last frame left out)."""
    levels = band_levels(_pcm(np.concatenate([_tone(1000, 300), _tone(100, 300), _tone(6000, 300)])), 30)
    assert len(levels) == 30
    band, hum, whistle = levels[2:8], levels[12:18], levels[22:28]
    assert min(band) - LEVEL_ZERO > 30  # about +36 dB
    assert max(hum) < min(band) - 30 and max(whistle) < min(band) - 30
    assert band_levels(bytes(2 * 480 * 3 + 100), 30) == bytes(3)  # silence: 0 (clipped), 3 frames, the rest dropped


def test_the_level_is_the_band_energy_of_each_frame_however_the_frames_come() -> None:
    """Against the plain definition (float64 FFT of each Hann-windowed frame, |X|^2 summed over 300-3400 Hz, in
    dB): the float32 blocks agree within rounding (a frame may land 1 dB apart on a .5), and the same bytes come
    out whether the frames come in one call or in calls of any size (1, 16, 17, 40 frames)."""
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1, RATE * 6) * np.repeat(rng.uniform(0.001, 0.5, 200), RATE * 6 // 200)
    pcm = _pcm(noise)
    step = 480
    frames = np.frombuffer(pcm, "<i2")[: len(pcm) // 2 // step * step].reshape(-1, step) / 32768.0
    power = np.abs(np.fft.rfft(frames * np.hanning(step), axis=1)) ** 2
    freqs = np.fft.rfftfreq(step, 1 / RATE)
    band = power[:, (freqs >= 300) & (freqs <= 3400)].sum(axis=1)
    want = np.clip(np.round(10 * np.log10(band + 1e-10)) + LEVEL_ZERO, 0, 255)
    got = np.frombuffer(band_levels(pcm, 30), np.uint8)
    assert got.size == want.size == 200
    assert np.abs(got - want).max() <= 1 and (got == want).mean() > 0.95
    for size in (1, 16, 17, 40):
        pieces = b"".join(band_levels(pcm[at : at + size * 960], 30) for at in range(0, len(pcm), size * 960))
        assert pieces == got.tobytes()


def test_a_tone_just_below_the_band_stays_out_of_it() -> None:
    """A 200 Hz tone (music's bass) at full scale reads at least 60 dB below a 1 kHz one: the window is the whole
    30 ms frame (a 256-sample window, tried for speed, let it read 45 dB louder)."""
    low, speech = band_levels(_pcm(_tone(200, 300, 1.0)), 30), band_levels(_pcm(_tone(1000, 300, 1.0)), 30)
    assert max(low[1:-1]) < min(speech[1:-1]) - 60


def test_the_level_survives_the_sidecar_and_the_timeline_shift() -> None:
    level = Level(bytes(range(256)) * 40, 30, 0)
    speech = Speech(((0, 900),), "webrtcvad mode 3, 30 ms", 30, level)
    data = json.loads(json.dumps(speech_to_json(speech)))
    assert speech_from_json(data) == speech
    assert len(data["level"]["zlib"]) < len(level.values)  # compressed
    moved = speech.shifted(1500)
    assert moved.level == Level(level.values, 30, 1500)
    assert speech_from_json(json.loads(json.dumps(speech_to_json(moved)))) == moved
    without = {k: v for k, v in data.items() if k != "level"}  # a sidecar written before the level was kept
    assert speech_from_json(without) == Speech(((0, 900),), "webrtcvad mode 3, 30 ms", 30)


@pytest.mark.parametrize(
    "level",
    [
        "AAAA",  # not an object
        {"at_ms": 0},
        {"at_ms": 1.5, "zlib": ""},
        {"at_ms": 0, "zlib": "not base64!"},
        {"at_ms": 0, "zlib": base64.b64encode(b"not zlib").decode()},
        {"at_ms": 0, "zlib": base64.b64encode(zlib.compress(bytes(1000))[:-4]).decode()},  # cut short
        {"at_ms": 0, "zlib": base64.b64encode(zlib.compress(bytes(MAX_MS // 30 + 1), 9)).decode()},  # a bomb
        {"at_ms": 10 * MAX_MS, "zlib": base64.b64encode(zlib.compress(bytes(10))).decode()},
    ],
)
def test_a_level_that_cannot_be_ours_is_refused(level: object) -> None:
    """Hostile input: a clear ValueError (the sidecar reader turns it into one line), never a decompression of
    more than a week of frames."""
    with pytest.raises(ValueError, match="speech level"):
        speech_from_json({"format": 1, "detector": "x", "frame_ms": 30, "intervals": [[0, 900]], "level": level})


def test_a_map_stands_out_only_where_the_cues_are_spoken() -> None:
    """Speech-band bursts under noise at 0 dB, of seeded lengths and pauses: the cues on the bursts stand far out
    from their rotations; the same cues 1.3 s off, or on bursts of another seed, do not."""
    rng = np.random.default_rng(7)

    def bursts(seed: int) -> tuple[bytes, list[tuple[int, int]]]:
        r = np.random.default_rng(seed)
        at, parts, spans = 1000, [np.zeros(RATE)], []
        while at < 170_000:
            length, pause = int(r.integers(1200, 3500)), int(r.choice([200, 300, 600, 1200]))
            parts += [_tone(700 + 400 * r.random(), length, 0.3), np.zeros(RATE * pause // 1000)]
            spans.append((at, at + length))
            at += length + pause
        signal = np.concatenate(parts)
        return _pcm(signal + 0.3 / np.sqrt(2) * rng.standard_normal(signal.size)), spans

    pcm, spans = bursts(1)
    level = Level(band_levels(pcm, 30), 30)

    def z(cues: list[tuple[int, int]], shift: float = 0.0) -> float:
        starts = np.asarray([s for s, _ in cues], dtype=np.float64) + shift
        ends = np.asarray([e for _, e in cues], dtype=np.float64) + shift
        around = np.full(starts.size, 600.0)
        result = contrast_z(level, starts, ends, around, around)
        assert result is not None
        return result

    assert z(spans) > 10
    assert z(spans, 1300.0) < 5
    assert z(bursts(2)[1]) < 5
    assert contrast_z(Level(band_levels(pcm[:64000], 30), 30), np.zeros(1), np.ones(1), np.ones(1), np.ones(1)) is None


@pytest.mark.parametrize("frame_ms", [1, 5, 29, 1000])
def test_a_level_in_frames_no_detector_makes_is_refused(frame_ms: int) -> None:
    """A level's frames are the detector's (10, 20 or 30 ms): "1 ms frames" let a 0.8 MB sidecar hold 600 MB of
    level (a week of them), which sync turned into 17 GB and a MemoryError traceback."""
    level = {"at_ms": 0, "zlib": base64.b64encode(zlib.compress(bytes(3000))).decode()}
    with pytest.raises(ValueError, match="speech level frames"):
        speech_from_json({"format": 1, "detector": "x", "frame_ms": frame_ms, "intervals": [[0, 900]], "level": level})


def test_a_day_of_level_is_judged_in_bounded_memory() -> None:
    """The level of a day in 10 ms frames (a few hundred KB in a sidecar): the floor of every frame was computed from
    a copy of all their windows at once (80 bytes a frame; a week took 11.6 GB and 31 s). It is worked out in blocks
    now, on at most loudness.MAX_FRAMES frames (longer audio in coarser frames)."""
    import tracemalloc

    rng = np.random.default_rng(5)
    level = Level(bytes(rng.integers(0, 60, 8_640_000, dtype=np.uint8)), 10, 0)
    cues = [(start, start + 2000) for start in range(60_000, 600_000, 4000)]
    speech = [(start + 100, start + 1900) for start, _ in cues]
    tracemalloc.start()
    try:
        fit = fit_heard(cues, speech, 86_400_000, level)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fit is not None and fit.level_z is not None
    assert peak < 400 << 20, f"{peak >> 20} MB"

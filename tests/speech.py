"""Real speech for tests, made here: espeak-ng sentences joined by known pauses (the truth), then mixed with
music-like tones and noise at a chosen signal-to-noise ratio. Needs ``espeak-ng`` and ``ffmpeg`` on PATH.

``build_speech(sentences, voice=..., pauses_ms=..., snr_db=...)`` returns the 16 kHz mono PCM and the true speech
intervals (each sentence from its first to its last audible sample, in ms); ``write_speech(path, audio)`` encodes it
to any container ``tests/media.py`` knows from the suffix. From the command line:
``python -m tests.speech talk.wav --voice cmn --snr 10``.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.media import AUDIO_CODECS

RATE = 16_000

ZH_SENTENCES = (
    "今天我们去山里看看",
    "那边的雨下了三天",
    "路上的石头都很滑",
    "我们只好走过去",
    "山顶上有一座很老的房子",
    "它已经在这里两百年了",
    "村里的人每天早上都来打水",
    "孩子们在河边玩得很开心",
    "晚上的风吹得很冷",
    "明天我们再回城里去",
)
EN_SENTENCES = (
    "Today we are going up into the hills",
    "It has been raining there for three days",
    "The stones on the path are very slippery",
    "So we had to walk the rest of the way",
    "There is a very old house on the top of the hill",
    "It has stood there for two hundred years",
    "People from the village come for water every morning",
    "The children were happy playing by the river",
    "The wind at night was cold",
    "Tomorrow we will go back to the city",
)
#: Pauses between sentences, cycled: short ones like the 180 ms that defeat token gaps, and long ones.
PAUSES_MS = (180, 700, 300, 1200, 250, 450, 900, 200, 600, 1500)


@dataclass(frozen=True)
class SpeechAudio:
    """Synthetic speech: s16le mono PCM at 16 kHz and where the speech truly is."""

    pcm: bytes
    truth: tuple[tuple[int, int], ...]  # (start_ms, end_ms) of each sentence's audible sound
    sentences: tuple[str, ...]

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // (2 * RATE)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("ffmpeg") is not None


@functools.lru_cache(maxsize=256)
def _spoken(text: str, voice: str) -> np.ndarray:
    """One sentence as float32 samples at 16 kHz, trimmed to its audible part (espeak-ng pads both ends)."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "--stdout", text], capture_output=True, check=True)
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-ar", str(RATE), "-ac", "1", "-f", "s16le", "pipe:1"],
        input=wav.stdout,
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(samples) > 0.01 * float(np.abs(samples).max()))
    return samples[int(loud[0]) : int(loud[-1]) + 1]


def _background(n: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like tones (three-note chords changing every 0.3-0.8 s, with a soft attack) plus white noise, each
    half of the power, normalised to power 1."""
    t = np.arange(n, dtype=np.float64) / RATE
    music = np.zeros(n)
    at = 0
    while at < n:
        length = min(n - at, int(rng.uniform(0.3, 0.8) * RATE))
        root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        envelope = np.minimum(1.0, np.arange(length) / (0.03 * RATE)) * np.exp(-np.arange(length) / (0.9 * RATE))
        for ratio in (1.0, 1.26, 1.5):  # a major triad
            music[at : at + length] += envelope * np.sin(2 * np.pi * root * ratio * t[at : at + length])
        at += length
    music /= np.sqrt(np.mean(music**2)) or 1.0
    noise = rng.standard_normal(n)
    return ((music + noise) / np.sqrt(2.0)).astype(np.float32)


def build_speech(
    sentences: Sequence[str] = ZH_SENTENCES,
    *,
    voice: str = "cmn",
    pauses_ms: Sequence[int] = PAUSES_MS,
    lead_ms: int = 1000,
    tail_ms: int = 1000,
    snr_db: float | None = None,
    seed: int = 1,
) -> SpeechAudio:
    """The sentences spoken in order, ``pauses_ms[i % len]`` of silence after sentence i, ``lead_ms`` before the
    first and ``tail_ms`` after the last; with ``snr_db`` the background of :func:`_background` is added at that
    ratio of speech power (over the speech only) to background power."""
    parts: list[np.ndarray] = [np.zeros(lead_ms * RATE // 1000, dtype=np.float32)]
    truth: list[tuple[int, int]] = []
    at = len(parts[0])
    for i, text in enumerate(sentences):
        spoken = _spoken(text, voice)
        truth.append((at * 1000 // RATE, (at + len(spoken)) * 1000 // RATE))
        gap = np.zeros((pauses_ms[i % len(pauses_ms)] if i + 1 < len(sentences) else tail_ms) * RATE // 1000)
        parts += [spoken, gap.astype(np.float32)]
        at += len(spoken) + len(gap)
    signal = np.concatenate(parts)
    if snr_db is not None:
        voiced = np.concatenate([signal[s * RATE // 1000 : e * RATE // 1000] for s, e in truth])
        power = float(np.mean(voiced**2))
        rng = np.random.default_rng(seed)
        signal = signal + _background(len(signal), rng) * np.sqrt(power / 10 ** (snr_db / 10))
    peak = float(np.abs(signal).max()) or 1.0
    scaled = signal * (0.7 / peak)  # headroom: no clipping whatever the mix
    pcm = (scaled * 32767).astype("<i2").tobytes()
    return SpeechAudio(pcm, tuple(truth), tuple(sentences))


def write_speech(path: Path, audio: SpeechAudio) -> Path:
    """Encode ``audio`` into ``path`` (codec from the suffix, as in tests/media.py); returns ``path``."""
    codec = AUDIO_CODECS.get(path.suffix.lower(), "aac")
    argv = ["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "pipe:0"]
    argv += ["-c:a", codec, *(["-b:a", "96k"] if codec != "pcm_s16le" and codec != "flac" else []), str(path)]
    subprocess.run(argv, input=audio.pcm, capture_output=True, check=True)
    return path


def frame_f1(truth: Sequence[tuple[int, int]], found: Sequence[tuple[int, int]], duration_ms: int) -> float:
    """F1 of speech frames (10 ms) found against the truth."""
    frames = duration_ms // 10 + 1

    def mask(intervals: Sequence[tuple[int, int]]) -> np.ndarray:
        out = np.zeros(frames, dtype=bool)
        for start, end in intervals:
            out[max(0, start // 10) : max(0, end // 10)] = True
        return out

    t, f = mask(truth), mask(found)
    hits = int(np.sum(t & f))
    if not hits:
        return 0.0
    precision, recall = hits / int(np.sum(f)), hits / int(np.sum(t))
    return 2 * precision * recall / (precision + recall)


def placed_within(truth: Sequence[tuple[int, int]], found: Sequence[tuple[int, int]], within_ms: int) -> float:
    """The share of true sentences that one interval found matches, start and end each within ``within_ms``."""
    hits = sum(any(abs(s - ts) <= within_ms and abs(e - te) <= within_ms for s, e in found) for ts, te in truth)
    return hits / len(truth) if truth else 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--voice", default="cmn", choices=["cmn", "en"])
    parser.add_argument("--snr", type=float, default=None)
    args = parser.parse_args(argv)
    audio = build_speech(ZH_SENTENCES if args.voice == "cmn" else EN_SENTENCES, voice=args.voice, snr_db=args.snr)
    write_speech(args.output, audio)
    for start, end in audio.truth:
        print(f"{start}\t{end}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

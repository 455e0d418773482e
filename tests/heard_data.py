"""Recordings and other-language subtitles for sync by the speech heard in the audio (tests and bench_sync).

A recording is espeak-ng speech (tests/speech.py): sentences in a seeded order with seeded pauses, many of them the
150-200 ms that FunASR's token times hide, mixed with music-like tones and noise at a given SNR. Its subtitle in the
other language has one cue per sentence on the sentence's true times (ZH_SENTENCES and EN_SENTENCES are
translations of each other, line by line), then distorted as a badly timed download is.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from funasr_subs.model import Cue
from tests.speech import EN_SENTENCES, ZH_SENTENCES, SpeechAudio, build_speech

#: A subtitle timed for a 25 fps release on 23.976 fps media: its times are 23.976/25 of the media's.
PAL = 25 / (24000 / 1001)
#: The scene the subtitle's release has and the media lacks.
CUT_MS = 20_000


def recording(voice: str, sentences: int, snr_db: float | None, seed: int = 3) -> tuple[SpeechAudio, list[int]]:
    """The speech and, per sentence, the index of the line it says (in ZH_SENTENCES / EN_SENTENCES)."""
    rng = random.Random(seed)
    lines = [rng.randrange(len(ZH_SENTENCES)) for _ in range(sentences)]
    pauses = [rng.choice([150, 170, 200, rng.randint(300, 1500), rng.randint(250, 900)]) for _ in range(sentences)]
    source = ZH_SENTENCES if voice == "cmn" else EN_SENTENCES
    audio = build_speech([source[i] for i in lines], voice=voice, pauses_ms=pauses, snr_db=snr_db, seed=seed)
    return audio, lines


@dataclass(frozen=True)
class Case:
    """A subtitle to sync and each cue's true start in the media (None: the media does not have its scene)."""

    name: str
    cues: list[Cue]
    truth: list[int | None]


def subtitle(audio: SpeechAudio, lines: Sequence[int], voice: str) -> list[Cue]:
    """The other language's cues on the true sentence times."""
    other = EN_SENTENCES if voice == "cmn" else ZH_SENTENCES
    return [Cue(s, e, (other[i],)) for (s, e), i in zip(audio.truth, lines, strict=True)]


def distortions(cues: list[Cue]) -> list[Case]:
    """7.7 s late; timed for 25 fps on 23.976 fps media; a 20 s scene (with three cues) the media lacks, halfway."""
    truth: list[int | None] = [c.start_ms for c in cues]
    late = Case("offset +7.7 s", [Cue(c.start_ms + 7700, c.end_ms + 7700, c.lines) for c in cues], truth)
    pal = Case("25 -> 23.976 fps", [Cue(round(c.start_ms / PAL), round(c.end_ms / PAL), c.lines) for c in cues], truth)
    at = cues[len(cues) // 2].start_ms - 100
    after = [c for c in cues if c.start_ms >= at]
    before = [c for c in cues if c.start_ms < at]
    scene = [Cue(at + k, at + k + 1500, ("(a scene this media does not have)",)) for k in (3000, 8000, 13000)]
    moved = [Cue(c.start_ms + CUT_MS, c.end_ms + CUT_MS, c.lines) for c in after]
    cut_truth: list[int | None] = [c.start_ms for c in before] + [None] * 3 + [c.start_ms for c in after]
    return [late, pal, Case("20 s scene cut", [*before, *scene, *moved], cut_truth)]


def within(starts: Sequence[int], case: Case, ms: int = 200) -> float:
    """The share of cues (those the media has) that start within ``ms`` of their true start."""
    errs = [abs(s - t) for s, t in zip(starts, case.truth, strict=True) if t is not None]
    return sum(e <= ms for e in errs) / len(errs) if errs else 0.0

"""Test material for ``sync``: people-made subtitles, a reply synthesised from them, and distorted copies.

The subtitles come from ``../shared/data/human-subtitles`` (beside the clone, as in CI; they have no licence, so they
are read there, never copied into the repository). A synthesised reply holds a file's characters as FunASR tokens,
timed inside their cues, with recognition errors (substitutions, drops) from a seeded RNG. A distortion changes the
subtitle's times (or the media's, for cuts and inserted scenes) and records each cue's true start in media time.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from funasr_subs.commands.check import load_cues
from funasr_subs.model import Cue, Token
from funasr_subs.protocol import split_tokens

HUMAN = Path(__file__).parents[1] / ".." / "shared" / "data" / "human-subtitles"
#: Characters a substitution may put in (common ones, so spurious matches happen as with a real recogniser).
NOISE = "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多"
#: Speaker labels and sound tags: on screen, never said.
_UNSPOKEN = re.compile(r"\[[^\]]*\]|（[^）]*）|\([^)]*\)")
PAL = 25 / (24000 / 1001)  # 25 fps release vs 23.976 fps film


def human(relative: str) -> list[Cue]:
    cues, _ = load_cues(HUMAN / relative)
    return [c for c in cues if c.text.strip()]


def speech_tokens(
    cues: Sequence[Cue],
    *,
    seed: int,
    substitute: float = 0.10,
    drop: float = 0.05,
    jitter_ms: int = 40,
    lead_ms: int = 0,
    pause: float = 0.0,
    run_on: float = 0.0,
) -> list[Token]:
    """The cues' text as recognised tokens: spread over each cue (speech stops a little before the cue ends).

    For the timing-pattern tests the speech can be less tidy than its cues: it starts up to ``lead_ms`` after the cue,
    a share ``pause`` of cues has a pause of 0.3-0.7 s inside, a share ``run_on`` runs on into the next cue without a
    gap."""
    rng = random.Random(seed)
    out: list[Token] = []
    floor = 0
    for cue in cues:
        words = split_tokens(_UNSPOKEN.sub(" ", cue.text))
        if not words:
            continue
        dur = max(cue.end_ms - cue.start_ms, 100)
        begin = cue.start_ms + rng.randint(0, lead_ms)
        span = cue.end_ms - begin - (0 if rng.random() < run_on else min(300, dur // 5))
        span = max(span, 100)
        n = len(words)
        gap_at = rng.randint(1, n - 1) if n >= 4 and rng.random() < pause else -1
        gap = rng.randint(300, 700) if gap_at > 0 else 0
        span = max(span - gap, 100)
        for k, word in enumerate(words):
            start = begin + span * k // n + (gap if k >= gap_at > 0 else 0)
            end = begin + span * (k + 1) // n + (gap if k >= gap_at > 0 else 0)
            if k:
                start += rng.randint(-jitter_ms, jitter_ms)
            start = max(start, floor)
            end = max(end, start + 1)
            roll = rng.random()
            if roll < drop:
                continue
            if roll < drop + substitute:
                word = rng.choice(NOISE)
            out.append(Token(word, start, end, "。" if k == n - 1 else ""))
            floor = start
    return out


def reply_of(tokens: Sequence[Token], wav_name: str = "synth") -> dict[str, Any]:
    """A FunASR offline reply (``text`` + ``timestamp``) that ``parse_reply`` turns back into ``tokens``."""
    parts: list[str] = []
    prev = ""
    for t in tokens:
        if prev and prev[-1].isascii() and prev[-1].isalnum() and t.text[0].isascii() and t.text[0].isalnum():
            parts.append(" ")
        parts.append(t.text + t.punct)
        prev = t.text + t.punct
    pairs = [[t.start_ms, t.end_ms] for t in tokens]
    return {
        "mode": "offline",
        "wav_name": wav_name,
        "is_final": False,
        "text": "".join(parts),
        "timestamp": json.dumps(pairs),
    }


@dataclass(frozen=True)
class Distorted:
    """A subtitle to sync, the speech it belongs to, each cue's true start (None: its speech was cut) and the
    media times where the film was edited (cues near them are judged more leniently)."""

    name: str
    cues: list[Cue]
    tokens: list[Token]
    truth: list[int | None]
    edits: tuple[int, ...] = ()


def _move(cues: Sequence[Cue], f: Any) -> list[Cue]:
    return [Cue(round(f(c.start_ms)), round(f(c.end_ms)), c.lines) for c in cues]


def _move_tokens(tokens: Sequence[Token], f: Any) -> list[Token]:
    return [Token(t.text, round(f(t.start_ms)), round(f(t.end_ms)), t.punct) for t in tokens]


def offset(cues: list[Cue], tokens: list[Token], ms: int) -> Distorted:
    """The subtitle is ``ms`` late (positive: the subtitle's times are moved later; negative: the media's speech
    starts later than the subtitle says, as with a longer intro)."""
    if ms >= 0:
        return Distorted(f"offset {ms / 1000:+g} s", _move(cues, lambda t: t + ms), tokens, [c.start_ms for c in cues])
    late = _move_tokens(tokens, lambda t: t - ms)
    return Distorted(f"offset {ms / 1000:+g} s", cues, late, [c.start_ms - ms for c in cues])


def frame_rate(cues: list[Cue], tokens: list[Token], ratio: float, label: str) -> Distorted:
    """The subtitle was timed for a release running ``ratio`` times slower (times multiplied by ``ratio``)."""
    return Distorted(label, _move(cues, lambda t: t * ratio), tokens, [c.start_ms for c in cues])


def cut(cues: list[Cue], tokens: list[Token], at_ms: int, length_ms: int = 40_000) -> Distorted:
    """The media lacks ``length_ms`` of the subtitle's release from ``at_ms`` on (its speech is gone)."""
    kept = [t for t in tokens if not at_ms <= t.start_ms < at_ms + length_ms]
    moved = _move_tokens(kept, lambda t: t - length_ms if t >= at_ms + length_ms else t)
    truth: list[int | None] = []
    for c in cues:
        if c.start_ms < at_ms:
            truth.append(c.start_ms)
        elif c.start_ms >= at_ms + length_ms:
            truth.append(c.start_ms - length_ms)
        else:
            truth.append(None)
    return Distorted(f"{length_ms // 1000} s cut", cues, moved, truth, (at_ms,))


def insert(cues: list[Cue], tokens: list[Token], at_ms: int, length_ms: int = 20_000, *, seed: int = 7) -> Distorted:
    """The media has a ``length_ms`` scene at ``at_ms`` the subtitle's release lacks (with speech of its own)."""
    rng = random.Random(seed)
    moved = _move_tokens(tokens, lambda t: t + length_ms if t >= at_ms else t)
    extra = []
    t = at_ms + 1500
    while t < at_ms + length_ms - 1500:
        for _ in range(rng.randint(4, 12)):
            extra.append(Token(rng.choice(NOISE), t, t + 220))
            t += 240
        t += rng.randint(600, 1500)
    merged = sorted([*moved, *extra], key=lambda tok: tok.start_ms)
    truth = [c.start_ms + (length_ms if c.start_ms >= at_ms else 0) for c in cues]
    return Distorted(f"{length_ms // 1000} s scene inserted", cues, merged, list(truth), (at_ms, at_ms + length_ms))


def errors(result_starts: Sequence[int], case: Distorted, *, away_ms: int = 0) -> list[int]:
    """|new start - true start| for every cue with a truth (and, with ``away_ms``, not that close to an edit)."""
    out = []
    for start, truth in zip(result_starts, case.truth, strict=True):
        if truth is None or any(abs(truth - e) < away_ms for e in case.edits):
            continue
        out.append(abs(start - truth))
    return out


def share_within(errs: Sequence[int], ms: int) -> float:
    return sum(1 for e in errs if e <= ms) / len(errs) if errs else 0.0

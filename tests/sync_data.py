"""Test material for ``sync``: films of generated subtitles, a reply synthesised from them, and distorted copies.

Everything is made here, from what the repository holds: a film's text is generated (seeded) from the words of the
real FunASR replies in ``tests/data/funasr-responses`` (which word follows which), its cues are timed the way people
time subtitles (about four characters a second, pauses between cues or none, a long pause now and then), written
in the styles people use (punctuation or spaces between clauses, Traditional script, speaker labels and sound tags
that are shown but never said). A translation keeps the cues' times with English text, as the people-made pairs do.
A synthesised reply holds a film's characters as FunASR tokens, timed inside their cues, with recognition errors
(substitutions, drops) from a seeded RNG. A distortion changes the subtitle's times (or the media's, for cuts and
inserted scenes) and records each cue's true start in media time. The same distortions on people-made subtitles
are measured by ``benchmarks/bench_sync.py``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pysubs2

from funasr_subs.cues.script import convert, to_simplified
from funasr_subs.model import Cue, Token
from funasr_subs.protocol import parse_reply, split_tokens
from tests.replies import REPLIES, read_reply

#: Characters a substitution may put in (common ones, so spurious matches happen as with a real recogniser).
NOISE = "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多"
#: Speaker labels and sound tags: on screen, never said.
_UNSPOKEN = re.compile(r"\[[^\]]*\]|（[^）]*）|\([^)]*\)")
PAL = 25 / (24000 / 1001)  # 25 fps release vs 23.976 fps film
#: The real replies a film's words come from: a talk, the news, a talk in Chinese and English.
SOURCES = {
    "talk": ("11_offline_cpp_2025_long_talk_121s.json", "12_offline_cpp_2025_talk_35s_sent_as_mp4.json"),
    "news": ("13_offline_cpp_2025_news_179s_LOG_TRUNCATED.json",),
    "mixed": ("15_offline_cpp_2025_mixed_zh_en_LOG_TRUNCATED.json",),
}
_CLAUSE_END = set("，。？！、,.?!；;：:")
_SYLLABLES = ("ba", "ce", "di", "fo", "gu", "ha", "ke", "li", "mo", "nu", "pa", "re", "si", "to", "vu", "wa", "yo")
Gaps = Literal["none", "some"]


@cache
def _chain(source: str) -> dict[str, tuple[str, ...]]:
    """Which word follows which in the replies of ``source`` (``""``: a clause's start or end)."""
    follows: dict[str, list[str]] = {}
    for name in SOURCES[source]:
        prev = ""
        for token in parse_reply(read_reply(REPLIES / name)).tokens:
            follows.setdefault(prev, []).append(token.text)
            prev = token.text
            if token.punct and token.punct[-1] in _CLAUSE_END:
                follows.setdefault(prev, []).append("")
                prev = ""
    return {word: tuple(nexts) for word, nexts in follows.items()}


def _clause(rng: random.Random, chain: dict[str, tuple[str, ...]]) -> list[str]:
    words: list[str] = []
    word = rng.choice(chain[""])
    while word and len(words) < 14:
        words.append(word)
        word = rng.choice(chain.get(word, ("",)))
    return words if len(words) >= 3 else _clause(rng, chain)


def _join(words: Sequence[str]) -> str:
    """Words as people write them: no spaces between Chinese characters, one around a Latin word."""
    out = ""
    for word in words:
        letter = len(word) == 1 and word.isascii()  # FunASR spells an acronym letter by letter: f s d
        if out and (word[0].isascii() or out[-1].isascii()) and not (letter and out[-1].isupper()):
            out += " "
        out += word.upper() if letter else word
    return out


def film(
    source: str = "talk",
    *,
    seed: int = 1,
    minutes: float = 8.0,
    gaps: Gaps = "some",
    punctuation: bool = True,
    script: Literal["hans", "tw"] = "hans",
    labels: bool = False,
) -> list[Cue]:
    """A film's people-made subtitle: generated sentences timed as people time them.

    ``gaps="none"`` ends every cue where the next begins (as the Udacity files do); ``punctuation=False`` separates
    clauses by spaces (no punctuation at all); ``script="tw"`` writes Traditional characters (the speech stays
    Simplified: see :func:`speech_of`); ``labels`` adds speaker labels, sound tags and cues of a sound alone."""
    rng = random.Random(f"{source}/{seed}")
    chain = _chain(source)
    cues: list[Cue] = []
    t = rng.randint(200, 4000)
    while t < minutes * 60_000:
        clauses = [_join(_clause(rng, chain)) for _ in range(rng.choice((1, 1, 2)))]
        sep = "，" if punctuation else " "
        text = sep.join(clauses) + ("。" if punctuation and rng.random() < 0.5 else "")
        if labels and rng.random() < 0.08:
            text = rng.choice(("（郭）", "(Kai) ", "- ")) + text
        if labels and rng.random() < 0.08:
            text += rng.choice(("[笑]", " [掌声]", "(laughs)"))
        lines = (text,) if len(text) <= 18 or rng.random() < 0.7 else (text[: len(text) // 2], text[len(text) // 2 :])
        said = len(split_tokens(_UNSPOKEN.sub(" ", text)))
        dur = min(max(said * 230 + rng.randint(200, 900), 900), 7000)
        cues.append(Cue(t, t + dur, tuple(convert(line, script) for line in lines)))
        t += dur
        if labels and rng.random() < 0.03:
            cues.append(Cue(t + 300, t + 2300, (rng.choice(("[音乐]", "[笑声]", "(music)")),)))
            t += 2600
        if gaps == "some":
            roll = rng.random()
            t += 0 if roll < 0.35 else rng.randint(100, 900) if roll < 0.9 else rng.randint(1500, 8000)
    return cues


def speech_of(cues: Sequence[Cue]) -> list[Cue]:
    """What was said, in the script FunASR writes (Simplified), at the cues' times."""
    return [Cue(c.start_ms, c.end_ms, tuple(to_simplified(line) for line in c.lines)) for c in cues]


def translation(cues: Sequence[Cue], *, seed: int = 1) -> list[Cue]:
    """The same film's subtitle in another language: the same times (as in the people-made pairs), English-like
    text of about the length a translation has."""
    rng = random.Random(seed)
    out = []
    for c in cues:
        words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(max(len(c.text) // 3, 2))
        ]
        out.append(Cue(c.start_ms, c.end_ms, (" ".join(words).capitalize() + ".",)))
    return out


def write_subtitle(target: Path, cues: Sequence[Cue], *, late_ms: int = 0) -> Path:
    """``cues``, every one ``late_ms`` late, as a subtitle file in the format of ``target``'s suffix."""
    subs = pysubs2.SSAFile()
    for c in cues:
        subs.append(
            pysubs2.SSAEvent(start=c.start_ms + late_ms, end=c.end_ms + late_ms, text=c.text.replace("\n", "\\N"))
        )
    fmt = {".srt": "srt", ".ass": "ass", ".ssa": "ssa", ".vtt": "vtt"}[target.suffix.lower()]
    target.write_text(subs.to_string(fmt), encoding="utf-8")
    return target


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

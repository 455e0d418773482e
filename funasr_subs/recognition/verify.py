"""A live reply checked against the audio it answers (pure): a reply that cannot be the answer is its server's fault.

What a real FunASR reply always is (tests/data/funasr-responses; FunASR's timestamp code): the ``wav_name`` that was
sent; token starts that rise (never back, never twice the same); times inside the audio — the last token's end
reaches at most halfway into the trailing silence, and a server that decodes mp4 itself stretches times by up to
~5 % (real replies 13 and 14); at most one token per 60 ms model frame (real replies: at most 11 starts in any
second). A reply outside these bounds, with a margin each, is refused. An empty reply for audio with sound in it
is only suspicious (music has sound and no words): the caller asks another server, see ``run.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from funasr_subs.model import Transcript
from funasr_subs.protocol import Order

#: Times may reach this far past the end of the audio sent: 2 s plus 10 % (mp4 decoded by the server: ~5 %).
MARGIN_MS = 2000
MARGIN_RATIO = 0.10
#: Token starts that go back (or below 0): a real reply has none; more than 1 in BACK_PER is refused.
BACK_PER = 100
#: Token starts that repeat the one before: a real reply has none; more than 1 in REPEATED_PER is refused.
REPEATED_PER = 20
#: No DENSE_TOKENS consecutive tokens start within DENSE_MS (25 a second; the model emits at most ~16.7).
DENSE_TOKENS = 25
DENSE_MS = 1000
#: Audio with at least this much sound (see split.SoundMeter) is expected to hold some speech.
SOUND_MS = 1000


@dataclass(frozen=True, slots=True)
class Sent:
    """What one request sent: the name, the length of the audio (0: unknown) and, for PCM, how much of it is sound
    (None: not metered, e.g. mp4 that the server decodes)."""

    wav_name: str
    duration_ms: int
    sound_ms: int | None = None


def _clock(ms: int) -> str:
    if abs(ms) >= 360_000_000:  # 100 hours
        return f"{ms:.3g} ms"
    return f"{ms / 1000:.1f} s"


def reply_problem(transcript: Transcript, order: Order, sent: Sent) -> str | None:
    """Why ``transcript`` (its tokens put in order: ``order`` says how far they were from it) cannot be the answer
    to ``sent``; None when it can."""
    if transcript.wav_name and transcript.wav_name != sent.wav_name:
        return f"answered for another file ({transcript.wav_name[:60]!r}, not {sent.wav_name[:60]!r})"
    tokens = transcript.tokens
    if not tokens:
        return None
    if order.back > len(tokens) // BACK_PER:
        return f"{order.back} of {len(tokens)} token times go back or below 0 (a real reply's times only rise)"
    if order.repeated > len(tokens) // REPEATED_PER:
        return f"{order.repeated} of {len(tokens)} token times repeat the one before (a real reply's times only rise)"
    if sent.duration_ms > 0:
        last = max(t.end_ms for t in tokens)
        if last > sent.duration_ms * (1 + MARGIN_RATIO) + MARGIN_MS:
            return f"times up to {_clock(last)} for {_clock(sent.duration_ms)} of audio"
    starts = [t.start_ms for t in tokens]
    for first, later in zip(starts, starts[DENSE_TOKENS - 1 :], strict=False):
        if later - first < DENSE_MS:
            return f"{DENSE_TOKENS} tokens within {later - first} ms at {_clock(first)} (more than speech holds)"
    return None


def text_problem(tokens: int, sent: Sent) -> str | None:
    """Why ``tokens`` words without times cannot be what ``sent`` holds (more than :data:`DENSE_TOKENS` a second of
    the audio); None when they can. Checked before any are spread over the speech: a server's 10 MB of text for
    15 s of audio was 280,000 cues and minutes of work."""
    most = DENSE_TOKENS * (sent.duration_ms // DENSE_MS + 1)
    if sent.duration_ms > 0 and tokens > most:
        return f"{tokens} words for {_clock(sent.duration_ms)} of audio (more than speech holds)"
    return None


def suspiciously_empty(transcript: Transcript, sent: Sent) -> bool:
    """True when the reply holds no words although the audio has sound: worth a second server's opinion."""
    return not transcript.tokens and sent.sound_ms is not None and sent.sound_ms >= SOUND_MS

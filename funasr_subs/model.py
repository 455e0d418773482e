"""Plain data that flows through the pipeline: tokens, transcripts and cues (times in integer milliseconds), and
what a job ended with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from funasr_subs.recognition.lost import Recovery


@dataclass(frozen=True, slots=True)
class Token:
    """One recognised unit: a CJK character, a digit group or an English word.

    ``punct`` is the punctuation that follows the token in the transcript ("" when none), e.g. "，" or "。".
    """

    text: str
    start_ms: int
    end_ms: int
    punct: str = ""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the server recognised in one file, with times relative to the start of the audio sent."""

    text: str
    tokens: tuple[Token, ...]
    wav_name: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and not self.tokens

    def shifted(self, offset_ms: int) -> Transcript:
        """The same transcript with every time moved by ``offset_ms``: a token that ends before 0 then is left out
        (clamped, every one of them was a token at 0 ms, and the cues of a film's first minutes were piled into a
        1 ms cue there), one that runs over 0 starts at 0."""
        if offset_ms == 0:
            return self
        return Transcript(
            text=self.text,
            tokens=tuple(
                Token(t.text, max(0, t.start_ms + offset_ms), t.end_ms + offset_ms, t.punct)
                for t in self.tokens
                if t.end_ms + offset_ms > 0
            ),
            wav_name=self.wav_name,
        )


@dataclass(frozen=True, slots=True)
class Word:
    """One display word of a cue as spoken: its text as shown (with the space before it and the punctuation after
    it, so a line's words joined give the line) and its speech times."""

    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: shown from ``start_ms`` to ``end_ms``, one string per display line.

    ``words``: the words of each line with their speech times, kept only when asked for (``build_cues(...,
    words=True)``, for karaoke); not part of a cue's equality.
    """

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    words: tuple[tuple[Word, ...], ...] = field(default=(), compare=False, repr=False)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Timings:
    probe_s: float = 0.0
    transcribe_s: float = 0.0  # audio extraction + upload + waiting for the server's reply
    write_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class Result:
    media: Path
    status: Literal["done", "skipped"]
    written: tuple[Path, ...] = ()  # subtitle files written (not the sidecar)
    sidecar: Path | None = None
    cues: tuple[Cue, ...] = ()
    timings: Timings = Timings()
    reason: str = ""  # why it was skipped
    recovery: Recovery | None = None  # speech FunASR lost: recovered by sending it again, or still lost

    def written_names(self) -> str:
        """The subtitles written, for a message: bare names beside the media, the path when elsewhere."""
        return ", ".join(p.name if p.parent == self.media.parent else str(p) for p in self.written)

"""Plain data that flows through the pipeline: tokens, transcripts and cues (times in integer milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass


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
        """The same transcript with every time moved by ``offset_ms`` (clamped at 0)."""
        if offset_ms == 0:
            return self
        return Transcript(
            text=self.text,
            tokens=tuple(
                Token(t.text, max(0, t.start_ms + offset_ms), max(0, t.end_ms + offset_ms), t.punct)
                for t in self.tokens
            ),
            wav_name=self.wav_name,
        )


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: shown from ``start_ms`` to ``end_ms``, one string per display line."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

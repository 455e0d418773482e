"""The numbers that decide what a good cue is, per profile (see docs: subtitle rules)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from funasr_subs.cues.script import Script

Profile = Literal["zh", "en"]
PunctuationStyle = Literal["keep", "space"]
LatinSpacing = Literal["none", "space"]


@dataclass(frozen=True, slots=True)
class CueSettings:
    """Segmentation, line-breaking and timing rules. Times in milliseconds."""

    profile: Profile = "zh"
    max_width: float = 16.0  # display width of one line (zh: CJK = 1, half-width = 0.5; en: 1 per character)
    max_lines: int = 2
    min_duration: int = 833
    max_duration: int = 7000
    min_gap: int = 83
    max_cps: float = 9.0  # reading speed, characters per second
    pause: int = 500  # a silence longer than this is a preferred break
    linger: int = 500  # how long a cue may stay after its last token, into free time
    fps: float | None = None  # snap every time to frame boundaries when set
    punctuation: PunctuationStyle = "keep"
    #: Between Chinese and an English word: "space" (a half-width space, as most Chinese style guides ask) or
    #: "none". Digits sit next to Chinese without a space either way (``5个人``, ``2024年``).
    latin_spacing: LatinSpacing = "space"
    script: Script = "hans"  # the display script: hans (FunASR's), hant, tw or hk (OpenCC)
    #: The user's words (hotwords, --words): never split across lines or cues, spelled as given.
    words: tuple[str, ...] = ()

    @classmethod
    def for_profile(cls, profile: Profile, **overrides: object) -> CueSettings:
        """The profile's defaults with the given non-None overrides applied."""
        base = PROFILES[profile]
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown cue settings: {', '.join(sorted(unknown))}")
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


PROFILES: dict[Profile, CueSettings] = {
    "zh": CueSettings(profile="zh", max_width=16.0, max_cps=9.0),
    "en": CueSettings(profile="en", max_width=42.0, max_cps=20.0),
}

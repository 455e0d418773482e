"""The numbers that decide what a good cue is, per profile (see docs: subtitle rules)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from funasr_subs.cues.script import Script

Profile = Literal["zh", "en", "yue", "ja", "ko"]
PunctuationStyle = Literal["keep", "space"]
LatinSpacing = Literal["none", "space"]
#: The layout of Chinese subtitles (the zh profile): ``one-line`` as people write them (the default: one line a cue,
#: ，。 as spaces, no fillers), ``two-line`` for broadcasters that allow two lines (same punctuation and fillers),
#: ``asr`` the form before 2026-12 (two lines, the recogniser's punctuation, every filler).
Layout = Literal["one-line", "two-line", "asr"]
LAYOUTS: dict[Layout, dict[str, object]] = {
    "one-line": {"max_lines": 1, "punctuation": "space", "verbatim": False},
    "two-line": {"max_lines": 2, "punctuation": "space", "verbatim": False},
    "asr": {"max_lines": 2, "punctuation": "keep", "verbatim": True},
}


@dataclass(frozen=True, slots=True)
class CueSettings:
    """Segmentation, line-breaking and timing rules. Times in milliseconds."""

    profile: Profile = "zh"
    max_width: float = 16.0  # display width of one line (zh: CJK = 1, half-width = 0.5; en: 1 per character)
    max_lines: int = 1
    min_duration: int = 833
    max_duration: int = 7000
    min_gap: int = 83
    max_cps: float = 9.0  # reading speed, characters per second
    pause: int = 500  # a silence longer than this is a preferred break
    linger: int = 500  # how long a cue may stay after its last token, into free time
    fps: float | None = None  # snap every time to frame boundaries when set
    punctuation: PunctuationStyle = "space"
    #: Keep fillers (呃, 嗯; 啊/那个 where they stand alone) in the display text; they are left out by default.
    verbatim: bool = False
    #: Between Chinese and an English word: "space" (a half-width space, as most Chinese style guides ask) or
    #: "none". Digits sit next to Chinese without a space either way (``5个人``, ``2024年``).
    latin_spacing: LatinSpacing = "space"
    script: Script = "hans"  # the display script: hans (FunASR's), hant, tw or hk (OpenCC)
    #: The user's words (hotwords, --words): never split across lines or cues, spelled as given.
    words: tuple[str, ...] = ()

    @classmethod
    def for_profile(cls, profile: Profile, layout: Layout | None = None, **overrides: object) -> CueSettings:
        """The profile's defaults, then the layout's (Chinese only; see :data:`LAYOUTS`), then the given non-None
        overrides."""
        base = PROFILES[profile]
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown cue settings: {', '.join(sorted(unknown))}")
        if layout is not None and profile == "zh":
            base = replace(base, **LAYOUTS[layout])  # type: ignore[arg-type]
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


PROFILES: dict[Profile, CueSettings] = {
    # One line of 16 (Netflix's zh-Hans width; the people's files: median line 11-15.5, 90th percentile 17.5-23).
    "zh": CueSettings(profile="zh", max_width=16.0, max_cps=9.0),
    "en": CueSettings(profile="en", max_width=42.0, max_lines=2, max_cps=20.0, punctuation="keep"),
    # The profiles below, with their sources, are in docs/cues.md ("Profiles for other languages"): widths from
    # Netflix's timed-text style guides; the reading speeds that no guide we found gives are zh's, said so there.
    # Cantonese: written as Traditional Chinese (Settings turns --script hans into hant for it), 16 a line.
    "yue": CueSettings(profile="yue", max_width=16.0, max_lines=2, max_cps=9.0),
    # Japanese (Netflix: 13 full-width characters a horizontal line, half-width 0.5; 4 characters a second, the
    # Japanese subtitlers' rule).
    "ja": CueSettings(profile="ja", max_width=13.0, max_lines=2, max_cps=4.0, punctuation="keep"),
    # Korean (Netflix: 16 characters a line, Latin letters, spaces and punctuation 0.5).
    "ko": CueSettings(profile="ko", max_width=16.0, max_lines=2, max_cps=9.0, punctuation="keep"),
}

"""Cue building: tokens with times in, readable subtitles out (pure code: no I/O)."""

from funasr_subs.cues.settings import PROFILES, CueSettings

__all__ = ["PROFILES", "CueSettings"]

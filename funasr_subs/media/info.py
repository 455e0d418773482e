"""What a media file holds, as ffprobe or ffmpeg's own report tells it: the facts the pipeline decides on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class AudioStream:
    position: int  # index among the audio streams (what -map 0:a:N takes)
    index: int  # index among all streams
    codec: str
    channels: int
    sample_rate: int
    language: str
    start_ms: int
    default: bool
    bit_rate: int


@dataclass(frozen=True, slots=True)
class MediaInfo:
    path: Path
    format_name: str
    duration_ms: int
    start_ms: int  # the container's start time; players show subtitles relative to it
    audio: tuple[AudioStream, ...]
    subtitles: tuple[str, ...] = ()  # the language tag of each subtitle stream ("" when untagged)
    subtitle_kinds: tuple[frozenset[str], ...] = ()  # each one's kinds: forced, sdh, commentary (or none)
    streams: int = 0  # streams of any kind, cover pictures not counted


#: ffprobe's dispositions (and ffmpeg's report words for them) that say what a subtitle stream holds.
_DISPOSITIONS = {"forced": "forced", "hearing_impaired": "sdh", "comment": "commentary"}
_REPORT_WORDS = {"(forced)": "forced", "(hearing impaired)": "sdh", "(comment)": "commentary"}
#: Words of a stream title that name a kind ("Signs & Songs", "Forced", "SDH", "Commentary").
_TITLE_WORDS = {"forced": "forced", "signs": "forced", "songs": "forced", "sdh": "sdh", "commentary": "commentary"}


def title_kinds(title: str) -> frozenset[str]:
    words = "".join(ch if ch.isalnum() else " " for ch in title.lower()).split()
    return frozenset(_TITLE_WORDS[w] for w in words if w in _TITLE_WORDS)


def stream_kinds(disposition: dict[str, object], title: str) -> frozenset[str]:
    """A subtitle stream's kinds from ffprobe's ``disposition`` and its ``title`` tag."""
    flagged = {kind for key, kind in _DISPOSITIONS.items() if disposition.get(key)}
    return frozenset(flagged) | title_kinds(title)


def report_kinds(details: str) -> frozenset[str]:
    """A subtitle stream's kinds from the rest of its line in ffmpeg's report (``subrip (forced)``)."""
    return frozenset(kind for word, kind in _REPORT_WORDS.items() if word in details)

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
    streams: int = 0  # streams of any kind, cover pictures not counted

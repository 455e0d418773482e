"""The one orchestrator: media → audio → recognition → cues → writers. It alone writes files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from funasr_subs.config import Settings
from funasr_subs.model import Cue

#: ``progress(stage, fraction)``; stages in order: "probe", "upload", "recognise", "write" (fraction 0.0-1.0).
ProgressCallback = Callable[[str, float], None]


class CancelToken(Protocol):
    """Anything with ``is_set()`` (e.g. ``threading.Event``): when it returns True the job stops cleanly."""

    def is_set(self) -> bool: ...


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


def generate_subtitles(
    media_path: Path | str,
    settings: Settings | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Result:
    """Transcribe one media file and write its subtitles and sidecar. Raises FunasrSubsError subclasses."""
    raise NotImplementedError


def is_up_to_date(media_path: Path | str, settings: Settings) -> bool:
    """True when every requested subtitle exists and the sidecar matches the media's current size and mtime."""
    raise NotImplementedError

"""Built-in ``log`` action: one DEBUG line per plugin event (written subtitles, failed job), naming the media."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from funasr_subs.check import cue_count

if TYPE_CHECKING:
    from funasr_subs.model import Result

log = logging.getLogger(__name__)


def on_subtitle_written(result: Result) -> None:
    """Log ``written <media>: <files> (<n> cues, <seconds> s)``."""
    names = ", ".join(p.name for p in result.written) or "nothing"
    log.debug("written %s: %s (%s, %.1f s)", result.media, names, cue_count(len(result.cues)), result.timings.total_s)


def on_failure(media_path: Path, error: BaseException) -> None:
    """Log ``failed <media>: <reason>``."""
    log.debug("failed %s: %s", media_path, getattr(error, "message", None) or error)

"""Plugin events through ``importlib.metadata`` entry points (group ``funasr_subs.plugins``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from funasr_subs.pipeline import Result

log = logging.getLogger(__name__)


def notify_written(result: Result) -> None:
    """Tell every plugin that subtitles were written. Never raises."""


def notify_failed(media: Path, error: BaseException) -> None:
    """Tell every plugin that a job failed. Never raises."""

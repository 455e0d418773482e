"""A running file's progress in words: the stage, the time spent in it and, while the server recognises, an estimate.

The pipeline reports ``progress(stage, fraction)``; for the "recognise" stage the fraction is the time waited over
the estimate from earlier files (0.0 while there is none), so what is left can be told from it. Used by the progress
bars on a terminal and, without one, by a log line every ``--progress-every`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # asyncio is imported by the pipeline; the commands' --help does not need it
    import asyncio

log = logging.getLogger(__name__)

#: Seconds between progress lines when stderr is not a terminal (``--progress-every``).
DEFAULT_EVERY_S = 30.0


def clock(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class StageClock:
    """Follows ``progress(stage, fraction)`` calls and says where a file is."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.began = now()
        self.stage = "probe"
        self.fraction = 0.0
        self.stage_began = self.began

    def update(self, stage: str, fraction: float) -> None:
        if stage != self.stage:
            self.stage, self.stage_began = stage, self.now()
        self.fraction = fraction

    def left_s(self) -> float | None:
        """Seconds the server probably still needs (None: no estimate, or already past it)."""
        if self.stage != "recognise" or not 0.0 < self.fraction < 0.99:
            return None
        elapsed = self.now() - self.stage_began
        return elapsed / self.fraction - elapsed

    def describe(self) -> str:
        """E.g. ``uploading 45 %`` or ``the server is recognising: 1:05 so far, about 0:40 left``."""
        elapsed = self.now() - self.stage_began
        if self.stage == "probe":
            return f"reading the media: {clock(elapsed)}"
        if self.stage == "upload":
            return f"uploading {self.fraction:.0%}: {clock(elapsed)} so far"
        if self.stage == "recognise":
            left = self.left_s()
            if left is not None:
                return f"the server is recognising: {clock(elapsed)} so far, about {clock(left)} left"
            if 0.99 <= self.fraction < 1.0:
                return f"the server is recognising: {clock(elapsed)} so far, longer than it took for earlier files"
            return f"the server is recognising: {clock(elapsed)} so far"
        return "writing the subtitles"

    def short(self) -> str:
        """For a progress bar's label: ``upload``, ``recognise 0:42``, ``recognise 0:42/~1:10``."""
        if self.stage != "recognise":
            return self.stage
        elapsed = self.now() - self.stage_began
        left = self.left_s()
        total = f"/~{clock(elapsed + left)}" if left is not None else ""
        return f"recognise {clock(elapsed)}{total}"


class ProgressLog:
    """A progress callback for one file that logs one line every ``every`` seconds (the first after ``every``)."""

    def __init__(self, media: Path, every: float, now: Callable[[], float] = time.monotonic) -> None:
        self.media = media
        self.every = every
        self.clock = StageClock(now)
        self.next_at = self.clock.began + every

    def __call__(self, stage: str, fraction: float) -> None:
        self.clock.update(stage, fraction)
        now = self.clock.now()
        if now >= self.next_at and stage != "write" and fraction < 1.0:  # 1.0: the stage just ended
            log.info("progress: %s: %s", self.media, self.clock.describe())
            self.next_at = now + self.every


class RecognitionWait:
    """The recognition stage: from the end of the upload until the reply. Reported every ``TICK_S`` seconds as
    ``progress("recognise", elapsed / estimate)`` (capped at 0.99; 0.0 while the server's speed is unknown), so a
    display can show the time waited and what is probably left (see speedbook). :meth:`start` is called in the
    event loop when the upload ends, :meth:`stop` at the reply."""

    TICK_S = 1.0

    def __init__(self, progress: Callable[[str, float], None], estimate_s: float | None) -> None:
        self.progress = progress
        self.estimate_s = estimate_s
        self.began: float | None = None
        self.waited_s: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.progress("upload", 1.0)
        import asyncio

        self.began = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        assert self.began is not None
        while True:
            elapsed = time.monotonic() - self.began
            fraction = min(0.99, elapsed / self.estimate_s) if self.estimate_s else 0.0
            self.progress("recognise", fraction)
            await _sleep(self.TICK_S)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.began is not None and self.waited_s is None:
            self.waited_s = time.monotonic() - self.began


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)

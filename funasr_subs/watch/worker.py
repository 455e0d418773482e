"""One queued job: re-check readiness, apply per-folder hotwords, run the pipeline, and turn its outcome into state."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from funasr_subs import pipeline
from funasr_subs.config import Settings
from funasr_subs.errors import (
    CancelledError,
    CorruptMediaError,
    DiskFullError,
    FunasrSubsError,
    NoAudioError,
    NotFunasrError,
    NoTimestampsError,
    NotMediaError,
    OutputExistsError,
    ProtocolError,
    TLSMismatchError,
    ToolMissingError,
)
from funasr_subs.model import Result
from funasr_subs.pipeline import CancelToken
from funasr_subs.progress import ProgressLog
from funasr_subs.recognition.pool import Pool
from funasr_subs.watch.scan import HotwordsLookup, real_root, root_of
from funasr_subs.watch.state import Job, StateDB

log = logging.getLogger(__name__)

ProcessFn = Callable[[Path, Settings, CancelToken], Result]
Outcome = Literal[
    "done", "skipped", "failed", "waiting", "cancelled", "settling", "gone", "fatal", "deferred", "later"
]  # fmt: skip
#: The server (or --server) is at fault, not the file: the queue waits with backoff as for an unreachable server.
#: A TLS "mismatch" is also what a server still starting behind docker's port proxy looks like (accept, then close).
SERVER_SETUP_ERRORS = (TLSMismatchError, NoTimestampsError, ProtocolError, NotFunasrError)
#: What a file still being written looks like (an mp4 whose index comes last, a header not flushed yet): such a file
#: is tried again while it is young instead of failed.
UNREADABLE_ERRORS = (NotMediaError, CorruptMediaError, NoAudioError)
#: "Young": modified less than this many seconds ago.
YOUNG_S = 300.0
#: How long a young unreadable (or empty) file waits before it is tried again (a change ends the wait at once).
YOUNG_RETRY_S = 30.0


def generate(
    path: Path, settings: Settings, cancel: CancelToken, *, progress_every: float = 0.0, pool: Pool | None = None
) -> Result:
    """The real work: :func:`funasr_subs.pipeline.generate_subtitles`; with ``progress_every``, a log line on the
    running file every that many seconds (the stage, the time the server has been recognising, the estimate);
    ``pool``: the daemon's servers."""
    progress = ProgressLog(path, progress_every) if progress_every > 0 else None
    return pipeline.generate_subtitles(path, settings, cancel=cancel, progress=progress, pool=pool)


@dataclass(frozen=True)
class JobStat:
    """One finished job, for benchmarks and logs: wall time in the daemon vs time inside the pipeline."""

    path: Path
    outcome: Outcome
    wall_s: float
    pipeline_s: float


class Backoff:
    """Capped exponential backoff shared by the workers: while the server is down the queue waits, and after each
    wait a single job probes the server before the others follow."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap = base, cap
        self.delay = 0.0  # 0 = healthy
        self.until = 0.0  # monotonic end of the current wait
        self._probing = False
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """0 when the caller may take a job now (healthy, or it is the probe); else seconds to wait first."""
        with self._lock:
            if self.delay == 0:
                return 0.0
            now = time.monotonic()
            if now < self.until:
                return self.until - now
            if self._probing:
                return min(self.base, 0.5)
            self._probing = True
            return 0.0

    def failed(self) -> float:
        """Register a retryable failure; returns seconds to wait (a failure within the current wait adds nothing)."""
        with self._lock:
            self._probing = False
            now = time.monotonic()
            if now < self.until:
                return self.until - now
            self.delay = self.base if self.delay == 0 else min(self.delay * 2, self.cap)
            self.until = now + self.delay
            return self.delay

    def succeeded(self) -> None:
        with self._lock:
            self._probing = False
            self.delay = 0.0

    def release(self) -> None:
        """The probe ended without telling whether the server is up (no job, or a bad file): let another try."""
        with self._lock:
            self._probing = False


class JobRunner:
    """Runs claimed jobs (from any worker thread) and records their outcome in the state database."""

    def __init__(
        self,
        settings: Settings,
        roots: Sequence[Path],
        *,
        settle: float,
        backoff: Backoff,
        cancel: threading.Event,
        process: ProcessFn = generate,
        once: bool = False,
        young: float = YOUNG_S,
        young_retry: float = YOUNG_RETRY_S,
    ) -> None:
        self.settings = settings
        self.roots = tuple(roots)
        self.settle = settle
        self.backoff = backoff
        self.cancel = cancel
        self.process = process
        self.once = once
        self.young = young
        self.young_retry = young_retry
        self.hotwords = HotwordsLookup()
        self.fatal: FunasrSubsError | None = None

    def settings_for(self, path: Path) -> Settings:
        """The settings with the per-folder hotwords merged in (ConfigError for a malformed hotwords.txt)."""
        words = self.hotwords.for_media(path, root_of(path, self.roots), self.settings.hotwords)
        return self.settings if words == dict(self.settings.hotwords) else self.settings.replace(hotwords=words)

    def run(self, db: StateDB, job: Job) -> JobStat:
        """Process one claimed job; never raises for the file's own problems."""
        started = time.monotonic()
        timing = [0.0]
        outcome = self._run(db, job, timing)
        return JobStat(job.path, outcome, time.monotonic() - started, timing[0])

    def _ready(self, db: StateDB, job: Job) -> Outcome | None:
        """None when the file is still there, unchanged and settled; else what was done about it."""
        path = job.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            db.forget(path)
            log.info("gone before processing: %s", path)
            return "gone"
        except OSError as exc:
            db.mark_failed(path, f"{path}: cannot read it ({exc.strerror}): check permissions", retryable=False)
            return "failed"
        outside = self._leads_outside(path)
        if outside is not None:
            db.mark_failed(path, outside, retryable=False)
            log.error("failed %s", outside)
            return "failed"
        changed = (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns)
        age = time.time() - (job.stat_at or 0.0)
        if not changed and age >= self.settle:
            if st.st_size == 0:  # queued by a hook or the HTTP service before anything was written
                return self._defer(db, path, f"{path}: the file is empty (a recording not written yet?)")
            return None
        delay = self.settle if changed else self.settle - age
        db.requeue(path, delay=delay, st=st)
        log.debug("still settling, checking again in %.1f s: %s", delay, path)
        return "settling"

    def _leads_outside(self, path: Path) -> str | None:
        """Checked again when the job runs, whoever queued it (a scan, a hook, a webhook): a path that has become a
        link (the file replaced by one, or a folder on its way) must still lead inside a watched folder."""
        real = os.path.realpath(path)
        if real == str(path) or real_root(path, self.roots) is not None:
            return None
        return (
            f"{path}: is a link to {real}, outside the watched folders: not followed (watch the folder it leads "
            "to, or put the file itself there)"
        )

    def _run(self, db: StateDB, job: Job, timing: list[float]) -> Outcome:
        not_ready = self._ready(db, job)
        if not_ready is not None:
            return not_ready
        path = job.path
        log.info("processing %s", path)
        try:
            settings = self.settings_for(path)
            t0 = time.monotonic()
            try:
                result = self.process(path, settings, self.cancel)
            finally:
                timing[0] = time.monotonic() - t0
        except CancelledError:
            db.requeue(path)
            log.info("cancelled, queued again: %s", path)
            return "cancelled"
        except OutputExistsError as exc:
            db.mark_done(path, note=exc.message)
            log.warning("skipped %s", exc)
            return "skipped"
        except FunasrSubsError as exc:
            return self._failed(db, path, exc)
        except Exception as exc:  # a bug must not stop the other files
            log.exception("internal error on %s", path)
            db.mark_failed(path, f"{path}: internal error {exc!r}: please report it", retryable=False)
            return "failed"
        self.backoff.succeeded()
        if result.status == "done":
            recovery = result.recovery.summary() if result.recovery else ""
            db.mark_done(path, written=result.written, note=recovery)
            log.info(
                "done %s -> %s (%.1f s)%s", path, result.written_names(), timing[0], f"; {recovery}" if recovery else ""
            )
            return "done"
        db.mark_done(path, note=result.reason)
        log.info("skipped %s: %s", path, result.reason)
        return "skipped"

    def _defer(self, db: StateDB, path: Path, why: str) -> Outcome:
        """Not ready yet, but not a failure: queued again for ``young_retry`` seconds (or until the file changes)."""
        db.mark_failed(path, why, retryable=True, retry_at=time.time() + self.young_retry)
        later = "the next run tries again" if self.once else f"tried again in {self.young_retry:g} s or when it changes"
        log.info("not ready: %s; %s", why, later)
        return "deferred"

    def _is_young(self, path: Path) -> bool:
        try:
            return time.time() - os.stat(path).st_mtime < self.young
        except OSError:
            return False

    def _failed(self, db: StateDB, path: Path, exc: FunasrSubsError) -> Outcome:
        if isinstance(exc, UNREADABLE_ERRORS) and self._is_young(path):
            return self._defer(db, path, f"{exc} (written less than {self.young / 60:g} min ago: still being written?)")
        if isinstance(exc, DiskFullError):  # transient, not the server's fault: the queue waits as for a server down
            wait = self.backoff.failed()
            db.mark_failed(path, str(exc), retryable=True, retry_at=time.time() + wait)
            later = "it stays queued for the next run" if self.once else f"trying the queue again in {wait:.1f} s"
            log.warning("%s; %s", exc, later)
            return "later"
        if exc.retryable or isinstance(exc, SERVER_SETUP_ERRORS):
            wait = self.backoff.failed()
            db.mark_failed(path, str(exc), retryable=True, retry_at=time.time() + wait)
            if self.once:
                log.warning("%s", exc)
            else:
                log.warning("%s: waiting %.1f s before trying the queue again", exc, wait)
            return "waiting"
        if isinstance(exc, ToolMissingError):  # every file would fail the same way: stop instead
            db.requeue(path)
            self.fatal = exc
            return "fatal"
        db.mark_failed(path, str(exc), retryable=False)
        log.error("failed %s (not retried until the file changes; or: funasr-subs retry)", exc)
        return "failed"

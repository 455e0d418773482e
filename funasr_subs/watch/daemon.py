"""The watch daemon: folders → settle → durable queue → ``--jobs`` workers, with backoff and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from funasr_subs import pipeline, speedbook
from funasr_subs.config import Settings
from funasr_subs.errors import ConfigError, FunasrSubsError, StateError
from funasr_subs.recognition.pool import Pool
from funasr_subs.watch.observer import Watcher, fall_back_to_polling, start_watching
from funasr_subs.watch.scan import (
    DEFAULT_SUFFIXES,
    folder_ignored,
    iter_media,
    path_qualifies,
    real_root,
    root_of,
)
from funasr_subs.watch.servers import restore_history, save_servers
from funasr_subs.watch.settle import Settler
from funasr_subs.watch.state import StateDB, media_key
from funasr_subs.watch.worker import Backoff, JobRunner, JobStat, ProcessFn, generate

log = logging.getLogger(__name__)

UpToDateFn = Callable[[Path, Settings], bool]
IDLE_CHECK_S = 1.0


def _up_to_date(path: Path, settings: Settings) -> bool:
    return pipeline.is_up_to_date(path, settings)


@dataclass(frozen=True)
class WatchOptions:
    """How the daemon watches and schedules (the transcription itself is configured by Settings)."""

    roots: tuple[Path, ...]
    state_dir: Path
    settle: float = 5.0  # seconds a file's size and mtime must stay unchanged
    poll: float | None = None  # polling interval; None = native observer
    jobs: int = 2
    once: bool = False  # process the backlog and the queue, then exit
    suffixes: frozenset[str] = DEFAULT_SUFFIXES
    grace: float = 30.0  # seconds running jobs may take to finish at shutdown before they are cancelled
    backoff_base: float = 2.0  # first wait after the server was unreachable
    backoff_cap: float = 300.0  # longest wait
    fallback_poll: float = 30.0  # polling interval when inotify's limit is hit
    rescan: float = 3600.0  # full rescan period with the native observer (missed events); 0 = never
    queue_poll: float = 1.0  # how often idle workers look for jobs other processes (hooks) queued
    heartbeat: float = 60.0
    young: float = 300.0  # an unreadable file modified less than this long ago is tried again, not failed
    young_retry: float = 30.0  # ... after this many seconds (or as soon as it changes)
    progress_every: float = 0.0  # a log line on each running file every this many seconds (0: none)


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = folder.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class WatchDaemon:
    """Runs until stopped (or, with ``once``, until the backlog is done). Call :meth:`run` from the main thread."""

    def __init__(
        self,
        options: WatchOptions,
        settings: Settings,
        *,
        process: ProcessFn = generate,
        up_to_date: UpToDateFn = _up_to_date,
    ) -> None:
        self.options = options
        self.settings = settings
        self.roots = tuple(sorted({r.resolve() for r in options.roots}))
        self._up_to_date = up_to_date
        # the watch keeps waiting for a server that answers wrongly (it may still be starting behind a proxy)
        self.pool = Pool.from_settings(settings, permanent=False, backoff_cap=options.backoff_cap, check_first=True)
        if process is generate:
            process = functools.partial(generate, progress_every=options.progress_every, pool=self.pool)
        self.settler = Settler(options.settle, drop_empty=options.once)
        self.backoff = Backoff(options.backoff_base, options.backoff_cap)
        self._cancel = threading.Event()  # the cancel token running jobs see
        self.runner = JobRunner(
            settings,
            self.roots,
            settle=options.settle,
            backoff=self.backoff,
            cancel=self._cancel,
            process=process,
            once=options.once,
            young=options.young,
            young_retry=options.young_retry,
        )
        self.stats: deque[JobStat] = deque(maxlen=10_000)
        self.watcher: Watcher | None = None
        self.db: StateDB | None = None
        self._stop = threading.Event()  # stop intake and the main loop
        self._wake = threading.Event()  # wakes the main loop
        self._work = threading.Condition()  # wakes idle workers
        self._generation = 0
        self._folders: deque[Path] = deque()  # folders to scan (appeared while watching)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._failed_this_run = 0
        self._deferred: set[Path] = set()  # --once: files not ready this run (they stay queued for the next)
        self._later = 0  # --once: files that met a transient fault not the server's (a full disk)
        self._server_down_once = False
        self._prober: threading.Thread | None = None
        self.ready = threading.Event()  # set once the backlog scan is done and workers run
        self._root_ids: dict[Path, tuple[int, int] | None] = {}  # (st_dev, st_ino) of each root while watched
        self._state_lost = False

    # --- lifecycle --------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop intake; running jobs get ``grace`` seconds before they are cancelled (and queued again)."""
        self._stop.set()
        self._wake.set()
        self._notify_workers()

    def run(self) -> int:
        """Watch until stopped. Exit code: 0, or 1 when ``once`` left failures or files waiting for the server."""
        for root in self.roots:
            if not root.is_dir():
                raise ConfigError(f"watch folder {root} does not exist or is not a folder: check the path")
        self.db = db = StateDB(self.options.state_dir)
        speedbook.use_folder(self.options.state_dir)  # the server's measured speed lives beside the queue
        try:
            if not db.acquire_daemon_lock():
                pid = db.status(limit=0).daemon_pid
                raise ConfigError(
                    f"another watch daemon{f' (pid {pid})' if pid else ''} is using the state folder "
                    f"{self.options.state_dir}: stop it first, or give this one another --state-dir"
                )
            with self._signals():
                return self._run(db)
        finally:
            db.close()

    def _run(self, db: StateDB) -> int:
        restore_history(db, self.pool)
        save_servers(db, self.pool.status())
        requeued = db.requeue_running()
        if requeued:
            log.info("queued again %d file(s) left running by the last run", requeued)
        if not self.options.once:
            self._root_ids = {root: _identity(root) for root in self.roots}
            self.watcher = start_watching(
                self.roots, self, poll=self.options.poll, fallback_poll=self.options.fallback_poll
            )
            how = "inotify" if self.watcher.mode == "native" else f"polling every {self.watcher.interval:g} s"
            log.info("watching %s (%s)", ", ".join(map(str, self.roots)), how)
        self._forget_gone(db)
        for root in self.roots:
            self._scan(root, db, source="scan")
        workers = [
            threading.Thread(target=self._worker, name=f"funasr-subs-worker-{i}", daemon=True)
            for i in range(self.pool.workers(self.options.jobs))
        ]
        for w in workers:
            w.start()
        self.ready.set()
        try:
            self._loop(db)
        finally:
            self._shutdown(workers)
        if self.runner.fatal is not None:
            raise self.runner.fatal
        if self._state_lost:
            return 1
        if self.options.once and self._server_down_once:
            left = db.counts()["queued"]
            log.error("the server is unavailable: %d file(s) stay queued for the next run", left)
            return 1
        if self.options.once and self._later:
            left = db.counts()["queued"]
            log.error(
                "a transient fault (a full disk?) stopped this run: %d file(s) stay queued for the next run", left
            )
            return 1
        if self.options.once and self._deferred:
            log.warning(
                "%d file(s) not ready yet (empty or still being written) stay queued for the next run",
                len(self._deferred),
            )
        return 1 if self.options.once and self._failed_this_run else 0

    def _loop(self, db: StateDB) -> None:
        try:
            self._watch(db)
        except StateError as exc:
            self._state_failed(exc)

    def _state_failed(self, exc: StateError | None) -> None:
        """The state database took no more writes (its disk full, locked, made read-only), or its folder was deleted
        or replaced (``exc`` None; a write may find that first): one line, then stop."""
        with self._busy_lock:
            first, self._state_lost = not self._state_lost, True
        if first and (exc is None or (self.db is not None and not self.db.lock_is_current())):
            log.error(
                "error: the state folder %s was deleted or replaced under this daemon: stopping, so that no "
                "second daemon works on the same files (start it again; it rebuilds the queue from the folders)",
                self.options.state_dir,
            )
        elif first:
            log.error("error: %s; the daemon stops (start it again once this is fixed)", exc)
        self.stop()

    def _watch(self, db: StateDB) -> None:
        tick = max(0.02, min(self.options.settle / 4, 0.25))
        last_beat = last_scan = time.monotonic()
        while not self._stop.is_set():
            if not db.lock_is_current():
                self._state_failed(None)
                break
            self._check_roots()
            self._probe_servers(db)
            for ready in self.settler.due():
                try:
                    if db.enqueue(ready.path, source=ready.source, st=ready.st, stable_since=ready.stable_since):
                        log.info("queued %s", ready.path)
                        self._notify_workers()
                except StateError:
                    raise
                except FunasrSubsError as exc:
                    log.debug("not queued: %s", exc)
            while self._folders:
                folder = self._folders.popleft()
                root = root_of(folder, self.roots)
                if root is not None:
                    self._scan(folder, db, source="event", root=root)
            self._check_watcher()
            now = time.monotonic()
            if now - last_beat >= self.options.heartbeat:
                db.heartbeat()
                last_beat = now
            if self._rescan_due(now - last_scan):
                self._forget_gone(db)
                for root in self.roots:
                    self._scan(root, db, source="rescan")
                last_scan = now
            if self.options.once and self._idle(db):
                break
            deadline = self.settler.next_deadline()
            timeout = self.options.heartbeat if deadline is None else max(tick, deadline - time.monotonic())
            probe_in = self.pool.next_probe_in()
            if probe_in is not None:  # wake when a down server may be probed
                timeout = min(timeout, max(tick, probe_in))
            if self.options.once:
                timeout = min(timeout, tick)
            # at least once a second: a deleted root or state folder is noticed quickly (a stat or two), and a signal
            # the kernel hands to another thread is acted on (only this thread runs the handler)
            self._wake.wait(min(timeout, IDLE_CHECK_S))
            self._wake.clear()

    def _probe_servers(self, db: StateDB) -> None:
        """Probe down servers whose wait is over, in a thread of its own (a probe may take --connect-timeout)."""
        if (self._prober is not None and self._prober.is_alive()) or not self.pool.has_due():
            return

        def probe() -> None:
            try:
                asyncio.run(self.pool.probe_due())
                save_servers(db, self.pool.status())
            except Exception:  # the database closed at shutdown, or a bug: the next job finds out anyway
                log.debug("probing the servers failed", exc_info=True)
            finally:
                with contextlib.suppress(Exception):
                    db.close_thread()

        self._prober = threading.Thread(target=probe, name="funasr-subs-probe", daemon=True)
        self._prober.start()

    def _check_roots(self) -> None:
        """A watched folder deleted and made again (a remount, a restore) is watched again at once, not at the next
        hourly rescan; while it is gone, that is said once."""
        if self.watcher is None:
            return
        changed = False
        for root, known in self._root_ids.items():
            now = _identity(root)
            if now == known:
                continue
            self._root_ids[root] = now
            if now is None:
                log.warning("warning: watched folder %s is gone; it is watched again when it comes back", root)
            else:
                log.info("watched folder %s is back: watching it again", root)
                self._folders.append(root)
                changed = True
        if changed:
            self.watcher.stop()
            present = tuple(r for r, ident in self._root_ids.items() if ident is not None)
            poll = self.watcher.interval if self.watcher.mode == "polling-fallback" else self.options.poll
            self.watcher = start_watching(present, self, poll=poll, fallback_poll=self.options.fallback_poll)

    def _check_watcher(self) -> None:
        """A folder created later may find inotify's table full: then everything is polled from now on."""
        watcher = self.watcher
        if watcher is None or not watcher.unwatched():
            return
        watcher.stop()
        self.watcher = fall_back_to_polling(
            self.roots, self, self.options.fallback_poll, f"{watcher.unwatched()} new folder(s) got no watch"
        )
        for root in self.roots:  # what arrived in the unwatched folders meanwhile
            self._folders.append(root)

    def _rescan_due(self, elapsed: float) -> bool:
        native = self.watcher is not None and self.watcher.mode == "native"
        return native and bool(self.options.rescan) and elapsed >= self.options.rescan

    def _idle(self, db: StateDB) -> bool:
        if self._server_down_once:
            return True
        with self._busy_lock:
            busy = self._busy
        if busy or len(self.settler) or self._folders:
            return False
        counts = db.counts()
        with self._busy_lock:
            deferred = list(self._deferred)
        waiting = sum(1 for path in deferred if (j := db.get(path)) is not None and j.state == "queued")
        return counts["queued"] - waiting <= 0 and counts["running"] == 0

    def _shutdown(self, workers: list[threading.Thread]) -> None:
        self._stop.set()
        self._notify_workers()
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + self.options.grace
        if self._prober is not None:
            self._prober.join(self.settings.connect_timeout + 1)
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        running = [w for w in workers if w.is_alive()]
        if running:
            log.warning("grace period over: cancelling %d running job(s); they will be queued again", len(running))
            self._cancel.set()
            for w in running:
                w.join(10.0)
            if any(w.is_alive() for w in running):
                log.error("a job did not stop in time; it will be queued again at the next start")
        log.info("stopped")

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set():
                log.warning("second signal: cancelling running jobs now")
                self._cancel.set()
                return
            log.info(
                "stopping (signal %s): running jobs get %g s to finish", signal.Signals(signum).name, self.options.grace
            )
            self.stop()

        old = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, previous in old.items():
                signal.signal(sig, previous)

    # --- intake -----------------------------------------------------------------------------------------------
    def _scan(self, folder: Path, db: StateDB, *, source: str, root: Path | None = None) -> None:
        """Track every qualifying file below ``folder`` that is neither known to the queue nor up to date."""
        root = root or folder
        if folder_ignored(folder, root):
            return
        known = {j.path: j for j in db.jobs()} if source != "event" else None
        found = tracked = outside = 0
        for path, st in iter_media(folder, self.options.suffixes):
            found += 1
            key = media_key(path)
            # its folder is resolved in the key: only the name itself may still be a link (one lstat)
            if root_of(key, self.roots) is None or (key.is_symlink() and real_root(key, self.roots) is None):
                outside += 1
                continue
            job = known.get(key) if known is not None else db.get(key)
            if job is not None and (job.size, job.mtime_ns) == (st.st_size, st.st_mtime_ns):
                continue  # queued, running, done or failed with this very content
            if job is None and self._is_up_to_date(key):
                continue
            self.settler.observe(key, source=source, st=st)
            tracked += 1
        if source != "rescan" or tracked:
            log.info("scanned %s: %d media file(s), %d to process", folder, found, tracked)
        if outside and source != "rescan":
            log.warning(
                "warning: %s: %d link(s) to files outside the watched folders are not followed (watch the folder "
                "they lead to instead)",
                folder,
                outside,
            )

    def _forget_gone(self, db: StateDB) -> None:
        for path in db.forget_gone_failures():
            log.info("forgot the failure of %s: the file is gone", path)

    def _is_up_to_date(self, path: Path) -> bool:
        try:
            return self._up_to_date(path, self.runner.settings_for(path))
        except FunasrSubsError:
            return False  # the worker reports it properly

    # Sink (called from the observer's thread)
    def on_file(self, path: Path) -> None:
        root = root_of(path, self.roots)
        if root is None or not path_qualifies(path, root, self.options.suffixes):
            return
        key = media_key(path)
        if real_root(key, self.roots) is not None and self.settler.observe(key):
            self._wake.set()

    def on_folder(self, path: Path) -> None:
        if root_of(path, self.roots) is not None:
            self._folders.append(path)
            self._wake.set()

    def on_gone(self, path: Path, is_directory: bool) -> None:
        if is_directory:
            self.settler.discard_under(path)
        else:
            self.settler.discard(media_key(path))

    # --- workers ----------------------------------------------------------------------------------------------
    def _notify_workers(self) -> None:
        with self._work:
            self._generation += 1
            self._work.notify_all()

    def _worker(self) -> None:
        assert self.db is not None
        db = self.db
        while not self._stop.is_set():
            wait = self.backoff.acquire()
            if wait > 0:
                self._stop.wait(wait)
                continue
            with self._work:
                generation = self._generation
            with self._busy_lock:
                self._busy += 1
            try:
                job = db.claim_next()
                if job is not None:
                    self._finished(self.runner.run(db, job))
            except StateError as exc:  # the job is queued again at the next start
                self._state_failed(exc)
                job = None
            except Exception:
                log.exception("worker error (the job is queued again at the next start)")
                job = None
            finally:
                self.backoff.release()
                with self._busy_lock:
                    self._busy -= 1
            if job is None:
                with self._work:
                    if generation == self._generation and not self._stop.is_set():
                        self._work.wait(self.options.queue_poll)
        db.close_thread()

    def _finished(self, stat: JobStat) -> None:
        self.stats.append(stat)
        if self.db is not None:
            save_servers(self.db, self.pool.status())
        if self.pool.next_probe_in() is not None:
            self._wake.set()  # the main loop schedules the probe of a server this job found down
        if stat.outcome == "failed":
            with self._busy_lock:
                self._failed_this_run += 1
        elif stat.outcome == "fatal":
            self.stop()
        elif stat.outcome == "deferred" and self.options.once:
            with self._busy_lock:
                self._deferred.add(stat.path)
        elif stat.outcome == "waiting" and self.options.once:
            self._server_down_once = True
            self.stop()
        elif stat.outcome == "later" and self.options.once:  # the next files would meet the same full disk
            with self._busy_lock:
                self._later += 1
            self.stop()
        if self.options.once:
            self._wake.set()

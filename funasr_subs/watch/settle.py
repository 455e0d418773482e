"""Readiness: a file is ready when its size and mtime have stayed the same for ``settle`` seconds, it is not empty and
it is readable. An empty file is a recording or download that has not written anything yet (``ffmpeg -re``, OBS
before its first flush): it stays tracked until it has content (with ``drop_empty``, for a one-off run, it is let go
and found again by the next run)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

Signature = tuple[int, int]  # (st_size, st_mtime_ns)


@dataclass(frozen=True)
class Ready:
    """A file that stopped changing: its stat, and the wall-clock time since when it has been unchanged."""

    path: Path
    st: os.stat_result
    stable_since: float  # epoch seconds
    source: str


@dataclass
class _Entry:
    sig: Signature
    since: float  # monotonic time the current signature was first seen
    source: str
    warned: bool = False
    empty_noted: bool = False


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns)


def readable(path: Path) -> bool:
    """The file opens for reading and its first byte can be read (a locked or half-permissioned file cannot)."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError:
        return False
    return True


class Settler:
    """Tracks files until they settle. Thread-safe: observers call :meth:`observe`, the daemon loop calls :meth:`due`.

    Every observation stats the file and restarts the clock when its (size, mtime) changed; :meth:`due` re-stats only
    the files whose clock has run out, so a tracked file costs one ``stat`` per settle period between events.
    """

    def __init__(self, settle: float, *, clock: Callable[[], float] = time.monotonic, drop_empty: bool = False) -> None:
        self.settle = max(0.0, settle)
        self.drop_empty = drop_empty
        self._clock = clock
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def observe(self, path: Path, *, source: str = "event", st: os.stat_result | None = None) -> bool:
        """Note that ``path`` appeared or changed: track it, or restart its clock if its stat changed.

        True when the file was not tracked before (its deadline is new).
        """
        if st is None:
            try:
                st = os.stat(path)
            except OSError:
                self.discard(path)
                return False
        sig = signature(st)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(path)
            if entry is None:
                self._entries[path] = _Entry(sig, now, source)
                return True
            if entry.sig != sig:
                entry.sig, entry.since = sig, now
            return False

    def discard(self, path: Path) -> None:
        """Stop tracking ``path`` (deleted or moved away)."""
        with self._lock:
            self._entries.pop(path, None)

    def discard_under(self, folder: Path) -> None:
        """Stop tracking everything under ``folder`` (a folder was deleted or moved away)."""
        with self._lock:
            for path in [p for p in self._entries if p.is_relative_to(folder)]:
                del self._entries[path]

    def next_deadline(self) -> float | None:
        """Monotonic time when the earliest tracked file may be ready (None when nothing is tracked)."""
        with self._lock:
            if not self._entries:
                return None
            return min(e.since for e in self._entries.values()) + self.settle

    def due(self) -> list[Ready]:
        """Files whose stat stayed unchanged for ``settle`` seconds and that can be read; they stop being tracked."""
        now = self._clock()
        with self._lock:
            expired = [(p, e.sig) for p, e in self._entries.items() if now - e.since >= self.settle]
        ready: list[Ready] = []
        for path, sig in expired:
            try:
                st = os.stat(path)
            except OSError:
                self.discard(path)
                continue
            ok = signature(st) == sig and readable(path)
            with self._lock:
                entry = self._entries.get(path)
                if entry is None or entry.sig != sig:  # an event restarted it meanwhile
                    continue
                if signature(st) != sig:
                    entry.sig, entry.since = signature(st), self._clock()
                    continue
                if st.st_size == 0:
                    if self.drop_empty:
                        del self._entries[path]
                        log.info("skipped %s: it is empty (a recording not written yet?); a later run takes it", path)
                    else:
                        if not entry.empty_noted:
                            log.info("waiting for %s: it is empty (a recording not written yet?)", path)
                            entry.empty_noted = True
                        entry.since = self._clock()
                    continue
                if not ok:
                    if not entry.warned:
                        log.warning("%s: cannot be read yet; waiting (check its permissions if this persists)", path)
                        entry.warned = True
                    entry.since = self._clock()
                    continue
                del self._entries[path]
                stable_since = time.time() - (self._clock() - entry.since)
                ready.append(Ready(path, st, stable_since, entry.source))
        return ready

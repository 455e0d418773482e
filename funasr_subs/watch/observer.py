"""Folder watching with watchdog: the native observer (inotify etc.), or polling for network mounts and as fallback."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from watchdog import events as wd_events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

WatchMode = Literal["native", "polling", "polling-fallback"]
ObserverFactory = Callable[[], BaseObserver]

#: Only these events matter (opened/closed-without-write from readers such as our own ffmpeg are dropped early).
_WANTED = tuple(
    getattr(wd_events, name)
    for name in (
        "FileCreatedEvent",
        "FileModifiedEvent",
        "FileMovedEvent",
        "FileDeletedEvent",
        "FileClosedEvent",
        "FileAttribEvent",
        "DirCreatedEvent",
        "DirMovedEvent",
        "DirDeletedEvent",
    )
    if hasattr(wd_events, name)
)
#: inotify's "too many watches" (fs.inotify.max_user_watches) and "too many instances" (max_user_instances).
_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)
#: watchdog 7's watch descriptor of a folder node without a watch (its private ``_INVALID_WD``).
_NO_WATCH = -1


try:  # Linux: an inotify emitter that notices the folders it could not watch (watchdog skips them silently)
    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
except ImportError:  # pragma: no cover - other systems, other watchdog versions
    InotifyEmitter = InotifyObserver = InotifyWatchGroup = None  # type: ignore[assignment,misc]


if InotifyWatchGroup is not None:

    class _CheckedGroup(InotifyWatchGroup):
        """watchdog's recursive inotify watch group, counting the existing folders it failed to watch, the same way
        on every watchdog version: up to 6 a failure below the root is ignored (a folder may vanish while it walks),
        which also hides a full table; 7 raises "inotify watch limit reached" during the first walk and only logs
        it afterwards. Here a full table below the root never raises: the walk goes on and counts."""

        unwatched_count = 0

        def _add_callback(self, path: bytes) -> None:
            try:
                super()._add_callback(path)
            except OSError as exc:
                if exc.errno not in _LIMIT_ERRNOS or path == self.path:
                    raise
            if not self._is_watched(path) and os.path.isdir(path) and not os.path.islink(path):
                self.unwatched_count += 1

        def _is_watched(self, path: bytes) -> bool:
            find = getattr(self, "_find_node_by_path", None)
            if find is not None:  # watchdog 7: a tree of nodes (its path index is rebuilt on every read)
                node = find(path)
                return node is not None and node.wd != _NO_WATCH
            return path in self._active_callbacks_by_path  # up to 6: a dict

    class _CheckedEmitter(InotifyEmitter):
        def on_thread_start(self) -> None:
            self._inotify = _CheckedGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
            )


def native_observer() -> BaseObserver:
    """The platform's observer; on Linux one whose emitters report folders they could not watch."""
    if InotifyObserver is None:  # pragma: no cover
        return Observer()
    observer = InotifyObserver()
    if hasattr(observer, "_emitter_class"):
        observer._emitter_class = _CheckedEmitter
    return observer


def unwatched_folders(observer: BaseObserver) -> int:
    """How many existing folders the native observer failed to watch (0 for polling and other systems)."""
    groups = [getattr(e, "_inotify", None) for e in list(getattr(observer, "emitters", ()))]
    return sum(int(getattr(g, "unwatched_count", 0)) for g in groups)


def _fs_path(raw: bytes | str) -> Path:
    return Path(os.fsdecode(raw))


class Sink(Protocol):
    """What the observer reports to: a file may have appeared/changed, a folder appeared, a path went away."""

    def on_file(self, path: Path) -> None: ...

    def on_folder(self, path: Path) -> None: ...

    def on_gone(self, path: Path, is_directory: bool) -> None: ...


class _Handler(FileSystemEventHandler):
    """Turns watchdog events into Sink calls; never raises into watchdog's thread."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:  # a bug here must not kill the observer thread
            log.exception("error handling file event %s", event)

    def _dispatch(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = _fs_path(event.src_path)
        if kind == "moved":
            self.sink.on_gone(src, event.is_directory)
            dest = _fs_path(event.dest_path)
            (self.sink.on_folder if event.is_directory else self.sink.on_file)(dest)
        elif kind == "deleted":
            self.sink.on_gone(src, event.is_directory)
        elif event.is_directory:
            if kind == "created":
                self.sink.on_folder(src)
        elif kind in ("created", "modified", "closed", "attrib"):
            self.sink.on_file(src)


@dataclass
class Watcher:
    """A started observer and how it watches."""

    observer: BaseObserver
    mode: WatchMode
    interval: float | None  # polling interval (None for native)

    def unwatched(self) -> int:
        """Folders the native observer could not watch since it started (0 when polling)."""
        return unwatched_folders(self.observer) if self.mode == "native" else 0

    def stop(self) -> None:
        self.observer.stop()
        if self.observer.is_alive():
            self.observer.join(timeout=10)


def _start(observer: BaseObserver, roots: Sequence[Path], handler: _Handler) -> None:
    for root in roots:
        observer.schedule(handler, str(root), recursive=True, event_filter=list(_WANTED))
    observer.start()


def start_watching(
    roots: Sequence[Path],
    sink: Sink,
    *,
    poll: float | None = None,
    fallback_poll: float = 30.0,
    native_factory: ObserverFactory = native_observer,
) -> Watcher:
    """Watch ``roots`` recursively. ``poll`` seconds forces polling (NFS/SMB/CIFS, where inotify never fires).

    When the native observer hits the inotify watch/instance limit, fall back to polling every ``fallback_poll``
    seconds and say so (with the sysctl that raises the limit).
    """
    handler = _Handler(sink)
    if poll is not None:
        observer: BaseObserver = PollingObserver(timeout=poll)
        _start(observer, roots, handler)
        return Watcher(observer, "polling", poll)
    observer = native_factory()
    try:
        _start(observer, roots, handler)
    except OSError as exc:
        _stop_quietly(observer)
        if exc.errno not in _LIMIT_ERRNOS:
            raise
        return fall_back_to_polling(roots, sink, fallback_poll, str(exc.strerror or exc))
    missed = unwatched_folders(observer)
    if missed:
        _stop_quietly(observer)
        return fall_back_to_polling(
            roots, sink, fallback_poll, f"{missed} folder(s) got no watch: the limit is reached"
        )
    return Watcher(observer, "native", None)


def fall_back_to_polling(roots: Sequence[Path], sink: Sink, interval: float, why: str) -> Watcher:
    """Polling instead of inotify, with the warning that says why and how to raise the limit."""
    log.warning(
        "cannot watch with inotify (%s): polling every %g s instead. To use inotify, raise the limit, e.g. "
        "'sudo sysctl fs.inotify.max_user_watches=524288' (and max_user_instances), or pass --poll SECONDS",
        why,
        interval,
    )
    observer = PollingObserver(timeout=interval)
    _start(observer, roots, _Handler(sink))
    return Watcher(observer, "polling-fallback", interval)


def _stop_quietly(observer: BaseObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
    except Exception:  # the half-started observer's own cleanup may fail; it is being discarded
        log.debug("error stopping the failed observer", exc_info=True)

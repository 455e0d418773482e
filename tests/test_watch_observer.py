"""Real watchdog observers on real folders: arrivals, renames and moved-in folders; the inotify-limit fallback."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from watchdog.observers import Observer

from funasr_subs.watch.observer import start_watching


class Recorder:
    """A Sink that remembers what it was told and lets a test wait for it."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.folders: list[Path] = []
        self.gone: list[Path] = []
        self._cond = threading.Condition()

    def on_file(self, path: Path) -> None:
        with self._cond:
            self.files.append(path)
            self._cond.notify_all()

    def on_folder(self, path: Path) -> None:
        with self._cond:
            self.folders.append(path)
            self._cond.notify_all()

    def on_gone(self, path: Path, is_directory: bool) -> None:
        with self._cond:
            self.gone.append(path)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


class LimitedObserver(Observer):  # type: ignore[misc, valid-type]
    """The native observer as it behaves when fs.inotify.max_user_watches is exhausted."""

    def start(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def _exercise(root: Path, rec: Recorder, outside: Path) -> None:
    (root / "new.mkv").write_bytes(b"data")
    assert rec.wait(lambda: root / "new.mkv" in rec.files), rec.files
    (outside / "x.mkv.part").write_bytes(b"data")
    os.rename(outside / "x.mkv.part", root / "x.mkv")
    assert rec.wait(lambda: root / "x.mkv" in rec.files), rec.files
    season = outside / "Season 2"
    season.mkdir()
    (season / "e01.mkv").write_bytes(b"data")
    os.rename(season, root / "Season 2")
    assert rec.wait(lambda: root / "Season 2" in rec.folders), rec.folders
    (root / "new.mkv").unlink()
    assert rec.wait(lambda: root / "new.mkv" in rec.gone), rec.gone


@pytest.mark.parametrize("poll", [None, 0.1])
def test_arrivals_renames_and_moved_in_folders_are_reported(tmp_path: Path, poll: float | None) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    rec = Recorder()
    watcher = start_watching([root], rec, poll=poll)
    try:
        assert watcher.mode == ("native" if poll is None else "polling")
        _exercise(root, rec, outside)
    finally:
        watcher.stop()
    assert not watcher.observer.is_alive()


def test_inotify_limit_falls_back_to_polling_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="funasr_subs.watch.observer"):
        watcher = start_watching([root], rec, fallback_poll=0.1, native_factory=LimitedObserver)
    try:
        assert watcher.mode == "polling-fallback" and watcher.interval == 0.1
        assert "inotify watch limit reached" in caplog.text and "max_user_watches" in caplog.text
        _exercise(root, rec, outside)
    finally:
        watcher.stop()


def test_other_observer_errors_are_not_hidden(tmp_path: Path) -> None:
    class Broken(Observer):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            raise OSError(errno.EACCES, "permission denied")

    with pytest.raises(OSError, match="permission denied"):
        start_watching([tmp_path], Recorder(), native_factory=Broken)

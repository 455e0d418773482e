"""Helpers for the watch-daemon tests: run a real daemon in a thread, wait on conditions, read its state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from funasr_subs.config import Settings
from funasr_subs.watch.daemon import WatchDaemon, WatchOptions
from funasr_subs.watch.state import Job, StateDB

SETTLE = 0.3


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (no event exists for "the daemon wrote a file"); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def server_settings(url: str, **changes: Any) -> Settings:
    """Settings for the test server: no pipeline-level retries (the daemon's backoff is under test)."""
    return Settings(server=url, retries=0, connect_timeout=2.0, **changes)


def options(roots: tuple[Path, ...], state_dir: Path, **changes: Any) -> WatchOptions:
    base: dict[str, Any] = {"settle": SETTLE, "backoff_base": 0.2, "backoff_cap": 0.8, "grace": 5.0}
    base.update(changes)
    return WatchOptions(roots=roots, state_dir=state_dir, **base)


@contextmanager
def running(daemon: WatchDaemon) -> Iterator[WatchDaemon]:
    """Run ``daemon`` in a thread until the block ends; re-raise anything ``run()`` raised."""
    outcome: list[BaseException | int] = []

    def target() -> None:
        try:
            outcome.append(daemon.run())
        except BaseException as exc:  # reported in the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=target, name="watch-daemon-under-test", daemon=True)
    thread.start()
    while not daemon.ready.wait(0.05):
        if not thread.is_alive():
            break
    try:
        if outcome and isinstance(outcome[0], BaseException):
            raise outcome[0]
        yield daemon
    finally:
        daemon.stop()
        thread.join(30)
        assert not thread.is_alive(), "the daemon did not stop"
    if outcome and isinstance(outcome[0], BaseException):
        raise outcome[0]


def job(state_dir: Path, path: Path) -> Job | None:
    with StateDB(state_dir) as db:
        return db.get(path)


def jobs_in(state_dir: Path, state: str) -> list[Job]:
    with StateDB(state_dir) as db:
        return [j for j in db.jobs() if j.state == state]


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` (relative, sorted): catches stray temp files."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

"""Readiness (size+mtime stable for the settle time) on real files with a controlled clock, and the shared backoff."""

from __future__ import annotations

import os
import time
from pathlib import Path

from funasr_subs.watch.settle import Settler
from funasr_subs.watch.worker import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _touch(path: Path, data: bytes, mtime_ns: int) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_file_is_ready_only_after_settle_seconds_without_change(tmp_path: Path) -> None:
    clock = Clock()
    settler = Settler(5.0, clock=clock)
    f = tmp_path / "a.mkv"
    _touch(f, b"part one", 1_000_000_000)
    assert settler.observe(f) is True
    assert settler.observe(f) is False  # already tracked, same stat
    clock.now += 4.9
    assert settler.due() == []
    _touch(f, b" and two", 2_000_000_000)  # grew without an event (e.g. NFS): the check restarts the clock
    clock.now += 0.2
    assert settler.due() == [] and len(settler) == 1
    clock.now += 4.9
    assert settler.due() == []
    clock.now += 0.2
    (ready,) = settler.due()
    assert ready.path == f and ready.st.st_size == len(b"part one and two") and ready.source == "event"
    assert ready.stable_since <= time.time() - 4.9
    assert len(settler) == 0 and settler.next_deadline() is None


def test_events_restart_the_clock_and_deleted_files_are_dropped(tmp_path: Path) -> None:
    clock = Clock()
    settler = Settler(1.0, clock=clock)
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    _touch(a, b"x", 1_000_000_000)
    _touch(b, b"y", 1_000_000_000)
    settler.observe(a, source="scan")
    settler.observe(b)
    assert settler.next_deadline() == 1001.0
    clock.now += 0.8
    _touch(a, b"more", 3_000_000_000)
    settler.observe(a)  # the modify event
    b.unlink()
    clock.now += 0.3
    assert settler.due() == []  # a restarted at 1000.8, b is gone
    assert len(settler) == 1
    clock.now += 0.8
    assert [r.path for r in settler.due()] == [a]


def test_discard_under_a_removed_folder(tmp_path: Path) -> None:
    settler = Settler(1.0, clock=Clock())
    (tmp_path / "show").mkdir()
    for name in ("show/a.mkv", "show/b.mkv", "c.mkv"):
        _touch(tmp_path / name, b"x", 1_000_000_000)
        settler.observe(tmp_path / name)
    settler.discard_under(tmp_path / "show")
    assert len(settler) == 1


def test_backoff_doubles_to_its_cap_and_lets_one_probe_through() -> None:
    backoff = Backoff(0.01, 0.04)
    assert backoff.acquire() == 0  # healthy: everyone works
    assert backoff.failed() == 0.01
    assert backoff.failed() <= 0.01  # a second failure within the same wait adds nothing
    assert backoff.acquire() > 0
    while backoff.acquire() > 0:
        time.sleep(0.005)  # the wait itself is what is under test
    assert backoff.acquire() > 0  # another worker waits while the probe runs
    assert backoff.failed() == 0.02
    waits = []
    for _ in range(3):
        while backoff.acquire() > 0:
            time.sleep(0.005)
        waits.append(backoff.failed())
    assert waits == [0.04, 0.04, 0.04]  # capped
    while backoff.acquire() > 0:
        time.sleep(0.005)
    backoff.succeeded()
    assert backoff.acquire() == 0 and backoff.acquire() == 0  # healthy again: no gate

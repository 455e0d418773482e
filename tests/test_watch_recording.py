"""``watch`` and recordings in progress (``ffmpeg -re``, OBS): an empty file is not ready, and media that cannot be read
yet while it is young is tried again, not failed. Through the real command, with the real test server."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.test_cli_transcribe import cli


class Daemon:
    """``funasr-subs watch`` in a subprocess; its log lines read as they come."""

    def __init__(self, *args: str) -> None:
        exe = shutil.which("funasr-subs")
        argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
        self.proc = subprocess.Popen(
            [*argv, "watch", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        """The first line (from now on) matching ``pattern``; fails after ``timeout`` seconds without one."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no log line matching {pattern!r}; saw:\n" + "\n".join(self.seen)) from None
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        return code


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    return root, state


@pytest.fixture
def daemon(library: tuple[Path, Path], funasr_server: FunasrTestServer) -> Iterator[Daemon]:
    root, state = library
    running = Daemon(str(root), "--settle", "0.3", "--state-dir", str(state), "--server", funasr_server.url)
    try:
        running.wait_for(r"watching ")
        yield running
    finally:
        assert running.stop() == 0


def _status(state: Path) -> dict[str, object]:
    done = cli("status", "--state-dir", str(state), "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def _flush_into(target: Path, whole: Path) -> None:
    """The recorder writes its data into the file it created (same inode, as OBS and ffmpeg do)."""
    with open(target, "r+b") as fh:
        fh.write(whole.read_bytes())


def test_an_empty_recording_waits_then_is_done_once_written(
    daemon: Daemon, library: tuple[Path, Path], tmp_path: Path
) -> None:
    root, state = library
    whole = make_media(tmp_path / "whole.mkv", bursts=[(500, 1000)], duration_ms=2500)
    recording = root / "stream.mkv"
    recording.touch()  # ffmpeg -re / OBS: the file exists, nothing flushed yet
    daemon.wait_for(rf"waiting for {re.escape(str(recording))}: it is empty")
    status = _status(state)
    assert status["counts"] == {"queued": 0, "running": 0, "done": 0, "failed": 0}  # not queued, not failed

    _flush_into(recording, whole)
    daemon.wait_for(rf"done {re.escape(str(recording))} -> stream\.zh\.srt")
    assert (root / "stream.zh.srt").is_file()
    assert not any("failed" in line or "not a media file" in line for line in daemon.seen)


def test_young_unreadable_media_is_tried_again_not_failed(
    daemon: Daemon, library: tuple[Path, Path], tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    root, state = library
    whole = make_media(tmp_path / "whole.mp4", bursts=[(500, 1000)], duration_ms=2500)
    partial = make_corrupt_media(tmp_path / "partial.mp4", "header")  # an mp4 whose index is not written yet
    recording = root / "talk.mp4"
    shutil.copyfile(partial, recording)
    line = daemon.wait_for(rf"not ready: {re.escape(str(recording))}: ")
    assert "still being written?" in line and "tried again in 30 s or when it changes" in line
    status = _status(state)
    counts = status["counts"]
    assert isinstance(counts, dict) and counts["failed"] == 0 and counts["queued"] == 1
    assert funasr_server.requests == []

    _flush_into(recording, whole)  # the recorder finishes: index written (the change ends the wait at once)
    daemon.wait_for(rf"done {re.escape(str(recording))} -> talk\.zh\.srt", timeout=20)
    assert _status(state)["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 0}


def test_once_leaves_an_empty_file_for_the_next_run(
    library: tuple[Path, Path], funasr_server: FunasrTestServer
) -> None:
    root, state = library
    (root / "empty.mkv").touch()
    make_media(root / "ready.mkv", bursts=[(500, 1000)], duration_ms=2500)
    done = cli(
        "watch", "--once", str(root), "--settle", "0.3", "--state-dir", str(state), "--server", funasr_server.url
    )
    assert done.returncode == 0, done.stderr
    assert f"skipped {root / 'empty.mkv'}: it is empty" in done.stderr
    assert (root / "ready.zh.srt").is_file() and not (root / "empty.zh.srt").exists()
    assert _status(state)["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 0}


def test_the_daemon_logs_life_on_a_long_job(library: tuple[Path, Path], tmp_path: Path) -> None:
    """--progress-every: the daemon's log shows a running file's recognition wait, not only its start and end."""
    root, state = library
    with FunasrTestServer(slow_seconds=2.0) as slow:
        slow.fault = "slow"
        running = Daemon(
            str(root), "--settle", "0.3", "--state-dir", str(state), "--server", slow.url, "--progress-every", "0.5"
        )
        try:
            running.wait_for(r"watching ")
            make_media(tmp_path / "long.mkv", bursts=[(500, 1000)], duration_ms=2500)
            shutil.move(tmp_path / "long.mkv", root / "long.mkv")
            line = running.wait_for(r"^progress: .*long\.mkv: the server is recognising: 0:0\d so far")
            assert str(root / "long.mkv") in line
            running.wait_for(r"done .*long\.mkv -> long\.zh\.srt")
        finally:
            assert running.stop() == 0


def test_an_empty_file_queued_by_a_hook_is_not_failed(
    library: tuple[Path, Path], funasr_server: FunasrTestServer
) -> None:
    root, state = library
    empty = root / "Show - S01E01.mkv"
    empty.touch()  # a download client that created the file before writing it
    queued = cli("hook", "--state-dir", str(state), "--root", str(root), str(empty))
    assert queued.returncode == 0, queued.stderr
    done = cli("watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", funasr_server.url)
    assert done.returncode == 0, done.stderr
    assert f"not ready: {empty}: the file is empty" in done.stderr
    status = _status(state)
    assert status["counts"] == {"queued": 1, "running": 0, "done": 0, "failed": 0}  # kept for the next run
    assert funasr_server.requests == []

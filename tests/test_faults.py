"""Issue 10: nothing a frozen server or a strange file can do stops the tool. One test (or a few) per fault, each
through the installed ``funasr-subs`` command, with the fault harness of tests/faults.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.faults import (
    StallingServer,
    blocked_writing_a_pipe,
    clean_env,
    make_long_audio,
    popen_cli,
    run_cli,
)


def wait_until(predicate: object, timeout: float, what: str) -> None:
    """Poll a condition the OS offers no event for (a process state in /proc); fail after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def leftovers(*folders: Path) -> list[str]:
    """Hidden temp files and spool files left in ``folders`` (what a clean stop must not leave)."""
    return sorted(str(p) for folder in folders for p in folder.rglob("*") if p.is_file() and p.name.startswith("."))


# --- fault 1: a server that accepts the websocket and stops reading ---------------------------------------------
@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_long_audio(tmp_path_factory.mktemp("long") / "long.flac")


def test_fault1_transcribe_reply_timeout_returns_on_a_server_that_stops_reading(
    tmp_path: Path, long_audio: Path
) -> None:
    media = tmp_path / "lib" / "long.flac"
    media.parent.mkdir()
    media.write_bytes(long_audio.read_bytes())
    spool = tmp_path / "tmp"
    spool.mkdir()
    env = clean_env(tmp_path, TMPDIR=str(spool))
    with StallingServer() as server:
        began = time.monotonic()
        done = run_cli("transcribe", "--server", server.url, "--reply-timeout", "3", "--retries", "0", str(media),
                       env=env, timeout=60)  # fmt: skip
        took = time.monotonic() - began
    assert done.returncode == 1, done.stderr
    assert "stopped reading the upload" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert took < 30, f"took {took:.0f} s"
    assert leftovers(media.parent, spool) == [] and list(spool.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_fault1_a_signal_gets_through_while_the_upload_is_stalled(
    tmp_path: Path, long_audio: Path, sig: signal.Signals
) -> None:
    media = tmp_path / "lib" / "long.flac"
    media.parent.mkdir()
    media.write_bytes(long_audio.read_bytes())
    spool = tmp_path / "tmp"
    spool.mkdir()
    env = clean_env(tmp_path, TMPDIR=str(spool))
    with StallingServer() as server:
        proc = popen_cli("transcribe", "--server", server.url, "--reply-timeout", "600", str(media), env=env)
        try:
            assert server.accepted.wait(30)
            # the stall is complete when ffmpeg sleeps writing its pipe: our reader stopped (back-pressure)
            wait_until(lambda: blocked_writing_a_pipe(proc.pid), 30, "ffmpeg to block on its full pipe")
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert leftovers(media.parent, spool) == [] and list(spool.iterdir()) == []


def test_fault1_watch_workers_are_not_blocked_by_a_server_that_stops_reading(
    tmp_path: Path, long_audio: Path
) -> None:
    root, state = tmp_path / "lib", tmp_path / "state"
    root.mkdir()
    (root / "long.flac").write_bytes(long_audio.read_bytes())
    env = clean_env(tmp_path)
    with StallingServer() as server:
        done = run_cli("watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", server.url,
                       "--reply-timeout", "2", "--retries", "0", str(root), env=env, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "stopped reading the upload" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "stay queued" in done.stderr


def test_fault1_watch_stops_on_sigterm_while_a_worker_is_stalled(tmp_path: Path, long_audio: Path) -> None:
    root, state = tmp_path / "lib", tmp_path / "state"
    root.mkdir()
    (root / "long.flac").write_bytes(long_audio.read_bytes())
    env = clean_env(tmp_path)
    with StallingServer() as server:
        proc = popen_cli("watch", "--settle", "0", "--grace", "1", "--state-dir", str(state), "--server",
                         server.url, "--reply-timeout", "600", str(root), env=env)  # fmt: skip
        try:
            assert server.accepted.wait(30)
            wait_until(lambda: blocked_writing_a_pipe(proc.pid), 30, "ffmpeg to block on its full pipe")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "queued again" in err and "did not stop in time" not in err, err
    assert leftovers(root) == []

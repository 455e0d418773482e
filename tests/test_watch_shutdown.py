"""SIGTERM on the installed entry point (``python -m funasr_subs watch``) mid-job: clean stop, nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.watch_support import files_under, job

REPO = Path(__file__).resolve().parents[1]


def _watch(root: Path, state: Path, url: str, *extra: str, token: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if token is not None:
        env["FUNASR_SUBS_SERVE_TOKEN"] = token
    env.pop("FUNASR_SUBS_CONFIG", None)
    argv = [sys.executable, "-m", "funasr_subs", "watch", str(root), "--state-dir", str(state), "--settle", "0.3"]
    argv += ["--server", url, "--retries", "0", "--config", os.devnull, *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err


def test_sigterm_on_a_hung_job_cancels_it_cleanly_and_restart_finishes_it(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    media = make_media(root / "talk.mkv", [(500, 800)], 2000)
    funasr_server.fault = "hang"  # the reply never comes
    proc = _watch(root, state, funasr_server.url, "--grace", "0.5")
    try:
        assert funasr_server.wait_until(lambda: bool(funasr_server.connections and funasr_server.requests), 20)
        assert funasr_server.wait_for_bytes(2 * 16000 * 2 - 3200, 20)  # mid-job: the audio is uploaded
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "grace period over" in err and "talk.mkv" in err
    assert files_under(root) == ["talk.mkv"]  # no subtitle, sidecar or temp file left behind
    record = job(state, media)
    assert record is not None and record.state == "queued" and record.attempts == 0  # requeued, not counted

    funasr_server.fault = None
    restart = _watch(root, state, funasr_server.url, "--once")
    _, err = restart.communicate(timeout=60)
    assert restart.returncode == 0, err
    assert files_under(root) == ["talk.funasr.json", "talk.mkv", "talk.zh.srt"]
    record = job(state, media)
    assert record is not None and record.state == "done" and record.attempts == 1


def test_sigterm_lets_a_running_job_finish_within_the_grace_period(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    media = make_media(root / "talk.mkv", [(500, 800)], 2000)
    funasr_server.fault = "slow"
    funasr_server.slow_seconds = 1.0
    proc = _watch(root, state, funasr_server.url, "--grace", "20")
    try:
        assert funasr_server.wait_for_bytes(2 * 16000 * 2 - 3200, 20)
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "grace period over" not in err
    assert files_under(root) == ["talk.funasr.json", "talk.mkv", "talk.zh.srt"]
    record = job(state, media)
    assert record is not None and record.state == "done"


def test_watch_with_http_serves_status_from_the_same_queue(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    make_media(root / "talk.mkv", [(500, 800)], 2000)
    proc = _watch(root, state, funasr_server.url, "--http", "127.0.0.1:0", token="a-test-token-of-24-chars")
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:  # the log says where it listens; port 0 picked a free one
            if "HTTP service listening on " in line:
                url = line.split("HTTP service listening on ", 1)[1].split()[0]
                break
        assert url.startswith("http://127.0.0.1:")
        assert funasr_server.wait_for_replies(1, 20)
        deadline = time.monotonic() + 15
        while True:
            ask = urllib.request.Request(
                f"{url}/status", headers={"X-Api-Key": "a-test-token-of-24-chars"}
            )  # the queue needs it
            with urllib.request.urlopen(ask, timeout=5) as response:
                status = json.load(response)
            if status["counts"]["done"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # the daemon records the result just after the reply
        assert status["daemon_alive"] is True and status["counts"]["done"] == 1
    finally:
        code, _ = _stop(proc)
    assert code == 0

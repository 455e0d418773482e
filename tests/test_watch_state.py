"""The state database: idempotent queueing, change detection, atomic claims across threads and processes, liveness."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_subs.errors import MediaNotFoundError, NotMediaError
from funasr_subs.watch.state import StateDB, media_key

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    with StateDB(tmp_path / "state") as state:
        yield state


def _media(folder: Path, name: str, content: bytes = b"media") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def test_enqueue_is_idempotent_and_requeues_only_changed_files(tmp_path: Path, db: StateDB) -> None:
    a = _media(tmp_path, "a.mkv")
    assert db.enqueue(a) is True
    assert db.enqueue(a, source="hook") is False  # already queued
    job = db.claim_next()
    assert job is not None and job.path == a and job.state == "running" and job.attempts == 1
    assert db.enqueue(a) is False  # running, unchanged
    db.mark_done(a, written=[tmp_path / "a.zh.srt"])
    assert db.enqueue(a) is False  # done with this size and mtime: never twice
    assert db.claim_next() is None
    a.write_bytes(b"replaced with other content")
    assert db.enqueue(a, source="event") is True
    again = db.claim_next()
    assert again is not None and again.attempts == 1 and again.source == "event" and again.outputs == ()


def test_failed_files_wait_for_a_change_or_retry(tmp_path: Path, db: StateDB) -> None:
    bad, other = _media(tmp_path, "bad.mp4"), _media(tmp_path, "other.mp4")
    db.enqueue(bad)
    db.enqueue(other)
    first = db.claim_next()
    assert first is not None and first.path == bad  # oldest first
    db.mark_failed(bad, "bad.mp4: not media", retryable=False)
    assert db.enqueue(bad) is False
    snap = db.status()
    assert snap.counts == {"queued": 1, "running": 0, "done": 0, "failed": 1}
    assert [j.last_error for j in snap.failures] == ["bad.mp4: not media"]
    assert db.retry_failed() == 1
    assert db.get(bad) is not None and db.get(bad).state == "queued"  # type: ignore[union-attr]


def test_retryable_failure_keeps_the_job_queued_until_its_time(tmp_path: Path, db: StateDB) -> None:
    a = _media(tmp_path, "a.mkv")
    db.enqueue(a)
    db.claim_next()
    db.mark_failed(a, "server down", retryable=True, retry_at=time.time() + 3600)
    assert db.claim_next() is None  # not before its time
    job = db.get(a)
    assert job is not None and job.state == "queued" and job.last_error == "server down"
    assert [j.path for j in db.status().waiting] == [a]


def test_a_file_changed_while_running_is_queued_again_when_the_run_ends(tmp_path: Path, db: StateDB) -> None:
    a = _media(tmp_path, "a.mkv")
    db.enqueue(a)
    db.claim_next()
    a.write_bytes(b"grew while we were transcribing it")
    assert db.enqueue(a) is True
    db.mark_done(a, written=[])
    job = db.get(a)
    assert job is not None and job.state == "queued" and job.size == a.stat().st_size


def test_a_new_start_requeues_running_jobs_and_ends_backoff_waits(tmp_path: Path) -> None:
    a = _media(tmp_path, "a.mkv")
    with StateDB(tmp_path / "s") as first:
        first.enqueue(a)
        assert first.claim_next() is not None  # then the process "dies" with the job running
    with StateDB(tmp_path / "s") as second:
        assert second.requeue_running() == 1
        job = second.claim_next()
        assert job is not None and job.attempts == 2
        second.requeue(a, delay=3600)
        assert second.claim_next() is None
        second.requeue(a)
        assert second.claim_next() is not None
        second.mark_failed(a, "server down", retryable=True, retry_at=time.time() + 3600)
        assert second.claim_next() is None
    with StateDB(tmp_path / "s") as third:  # a new start tries the server at once
        third.requeue_running()
        assert third.claim_next() is not None


def test_enqueue_errors_name_the_file(tmp_path: Path, db: StateDB) -> None:
    with pytest.raises(MediaNotFoundError, match=r"missing\.mkv"):
        db.enqueue(tmp_path / "missing.mkv")
    (tmp_path / "folder.mkv").mkdir()
    with pytest.raises(NotMediaError, match=r"folder\.mkv"):
        db.enqueue(tmp_path / "folder.mkv")


def test_keys_resolve_folders_but_keep_symlinked_file_names(tmp_path: Path, db: StateDB) -> None:
    real = tmp_path / "real"
    real.mkdir()
    target = _media(real, "t.mkv")
    (tmp_path / "link").symlink_to(real)
    (real / "alias.mkv").symlink_to(target)
    assert media_key(tmp_path / "link" / "t.mkv") == target
    assert media_key(real / "alias.mkv") == real / "alias.mkv"  # subtitles go next to the link, not the target
    assert db.enqueue(tmp_path / "link" / "t.mkv") is True
    assert db.enqueue(target) is False


CLAIMER = """
import sys
from pathlib import Path
from funasr_subs.watch.state import StateDB
db = StateDB(Path(sys.argv[1]))
while (job := db.claim_next()) is not None:
    print(job.path, flush=True)
db.close()
"""


def test_claims_are_atomic_across_threads_and_processes(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    state = tmp_path / "state"
    with StateDB(state) as db:
        for i in range(120):
            db.enqueue(_media(media, f"{i:03d}.mkv"))
    claimed: list[str] = []
    lock = threading.Lock()

    def claim() -> None:
        with StateDB(state) as own:
            while (job := own.claim_next()) is not None:
                with lock:
                    claimed.append(str(job.path))

    child = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, str(state)], stdout=subprocess.PIPE, text=True, env=_child_env()
    )
    threads = [threading.Thread(target=claim) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    everything = claimed + out.split()
    assert len(everything) == 120 and len(set(everything)) == 120


HOLDER = """
import sys
from pathlib import Path
from funasr_subs.watch.state import StateDB
db = StateDB(Path(sys.argv[1]))
assert db.acquire_daemon_lock()
print("locked", flush=True)
sys.stdin.readline()
db.close()
"""


def test_daemon_alive_follows_the_lock_of_another_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateDB(state) as db:
        assert db.daemon_alive() is False
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        assert db.daemon_alive() is True
        assert db.acquire_daemon_lock() is False  # a second daemon is refused
        assert db.status().daemon_pid == holder.pid
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(30) == 0
        assert db.daemon_alive() is False
        assert db.acquire_daemon_lock() is True

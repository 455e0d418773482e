"""Damage inside an intact state database is handled like damage of the file: a damaged job row is set aside with
one line naming it, and ``watch``, ``status`` and ``retry`` go on with the rest (issue 19, "Broke" 6: one row whose
``outputs`` was not JSON gave a traceback on every daemon start)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from funasr_subs.watch.state import DB_NAME, StateDB
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.test_service_cli import COMMAND, clean_env

#: How each damaged row is damaged: an UPDATE of one row (SQLite keeps whatever type it is given).
DAMAGE = {
    "outputs.mkv": "outputs = 'not json{'",
    "numbers.mkv": "outputs = '[1, 2]'",
    "attempts.mkv": "attempts = 'many'",
    "created.mkv": "created_at = 'yesterday'",
    "source.mkv": "source = x'00ff'",
    "queued.mkv": "outputs = '{'",  # left queued: the daemon's claim meets it
}


def _damaged_library(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A library whose state database holds one good queued file and one damaged row of each kind in DAMAGE (failed
    files, one queued), plus a damaged heartbeat, daemon pid and server row."""
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    good = make_media(root / "good.mkv", [(300, 600)], 1500)
    with StateDB(state) as db:
        db.enqueue(good, source="scan")
        for name in DAMAGE:
            media = root / name
            media.write_bytes(b"x")
            db.enqueue(media, source="scan")
            if not name.startswith("queued"):
                db.mark_failed(media, "an old failure", retryable=False)
    conn = sqlite3.connect(state / DB_NAME)
    with conn:
        for name, change in DAMAGE.items():
            conn.execute(f"UPDATE jobs SET {change} WHERE path = ?", (str(root / name),))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('heartbeat', 'soon'), ('daemon_pid', 'me')")
        conn.execute("INSERT INTO servers VALUES ('ws://127.0.0.1:1', 'two', 'up', 0, 0, 0, 0, 0, NULL, 0)")
    conn.close()
    return root, state, good


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, env=clean_env(tmp_path), timeout=120, check=False
    )


def _set_aside(state: Path) -> list[str]:
    conn = sqlite3.connect(state / DB_NAME)
    try:
        return sorted(Path(row[0]).name for row in conn.execute("SELECT path FROM damaged_jobs"))
    finally:
        conn.close()


@pytest.mark.parametrize("first", ["watch", "status", "status --json", "retry"])
def test_damaged_rows_are_set_aside_with_one_line_each_and_the_rest_runs(
    funasr_server: FunasrTestServer, tmp_path: Path, first: str
) -> None:
    root, state, _ = _damaged_library(tmp_path)
    if first == "watch":
        args = ["watch", "--once", "--settle", "0", "--server", funasr_server.url, "--state-dir", str(state), str(root)]
    else:
        args = [*first.split(), "--state-dir", str(state)]
    done = _run(tmp_path, *args)
    assert "Traceback" not in done.stderr, done.stderr
    if first == "watch":
        assert (root / "good.zh.srt").exists(), done.stderr
        assert len(funasr_server.files) == 1, "the good file is done; the damaged rows' files are not media"
    elif first == "status --json":
        assert done.returncode == 0 and json.loads(done.stdout)["counts"] == {
            "queued": 1,
            "running": 0,
            "done": 0,
            "failed": 0,
        }
    else:
        assert done.returncode == 0, done.stderr
    # each damaged row is named once, by the first command that reads it (retry reads only the failed ones)
    again = _run(tmp_path, "status", "--state-dir", str(state))
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    warned = [line for run in (done, again) for line in run.stderr.splitlines() if "damaged job row" in line]
    assert sorted(name for name in DAMAGE if any(f"{root / name} (" in line for line in warned)) == sorted(DAMAGE)
    assert len(warned) == len(DAMAGE), warned
    assert _set_aside(state) == sorted(DAMAGE)
    assert "damaged job row" not in _run(tmp_path, "status", "--state-dir", str(state)).stderr

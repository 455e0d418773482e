"""The watch daemon against its environment, through the installed command: a full disk (a real tiny tmpfs in a
mount namespace of its own), a state database that is locked, read-only, a FIFO or a folder, and links that lead out
of the watched folders."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from funasr_subs.service import ServiceConfig
from funasr_subs.watch.state import StateDB
from tests.faults import clean_env, in_own_mounts, run_cli
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.servicekit import request, service


def one_error(stderr: str) -> str:
    """The run's only error line (no traceback, nothing else at error level)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr
    return errors[0]


# --- a full disk --------------------------------------------------------------------------------------------------
def test_a_full_disk_keeps_the_file_queued_and_the_next_run_writes_it(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    media = make_media(tmp_path / "a.m4a", [(500, 800)], 2000)
    (tmp_path / "lib").mkdir()
    script = """
    mount -t tmpfs -o size=256k tmpfs "$LIB" || exit 99
    cp "$MEDIA" "$LIB/a.m4a"
    cat /dev/zero > "$LIB/filler" 2>/dev/null
    "$EXE" watch --once --settle 0 --state-dir "$STATE" --server "$URL" "$LIB" 2>"$OUT/first.err"
    echo "first=$?"
    ls -A "$LIB" | tr '\\n' ' ' > "$OUT/first.ls"
    "$EXE" status --json --state-dir "$STATE" > "$OUT/status.json"
    rm "$LIB/filler"
    "$EXE" watch --once --settle 0 --state-dir "$STATE" --server "$URL" "$LIB" 2>"$OUT/second.err"
    echo "second=$?"
    ls -A "$LIB" | tr '\\n' ' ' > "$OUT/second.ls"
    """
    env = clean_env(tmp_path, LIB=str(tmp_path / "lib"), MEDIA=str(media), STATE=str(tmp_path / "state"))
    env.update(URL=funasr_server.url, OUT=str(tmp_path))
    done = in_own_mounts(script, env)
    assert "first=1" in done.stdout and "second=0" in done.stdout, (done.stdout, done.stderr)
    first = (tmp_path / "first.err").read_text()
    assert "disk is full" in first and "stay queued" in first and "Traceback" not in first, first
    assert (tmp_path / "first.ls").read_text().split() == ["a.m4a", "filler"], "nothing half-written is left"
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["counts"]["queued"] == 1 and status["counts"]["failed"] == 0, status
    assert "disk is full" in status["queued"][0]["error"]
    assert (tmp_path / "second.ls").read_text().split() == ["a.funasr.json", "a.m4a", "a.zh.srt"]


def test_a_full_state_disk_at_start_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "state").mkdir()
    script = """
    mount -t tmpfs -o size=64k tmpfs "$STATE" || exit 99
    cat /dev/zero > "$STATE/filler" 2>/dev/null
    "$EXE" watch --once --settle 0 --state-dir "$STATE" "$LIB"
    echo "rc=$?"
    """
    env = clean_env(tmp_path, LIB=str(tmp_path / "lib"), STATE=str(tmp_path / "state"))
    started = time.monotonic()
    done = in_own_mounts(script, env)
    assert done.stdout.split()[-1] == "rc=2", (done.stdout, done.stderr)
    line = one_error(done.stderr)
    assert "state database" in line and "disk" in line and "full" in line, line
    assert time.monotonic() - started < 20


def test_a_state_disk_that_fills_while_the_daemon_runs_stops_it_with_one_line(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    media = make_media(tmp_path / "a.m4a", [(500, 800)], 2000)
    (tmp_path / "lib").mkdir()
    (tmp_path / "state").mkdir()
    script = """
    mount -t tmpfs -o size=1m tmpfs "$STATE" || exit 99
    "$EXE" watch --settle 0 --poll 0.1 --state-dir "$STATE" --server "$URL" "$LIB" 2>"$OUT/daemon.err" &
    daemon=$!
    tries=0
    until grep -q "scanned" "$OUT/daemon.err"; do  # the daemon is up: its backlog scan is done
        tries=$((tries + 1)); [ $tries -gt 600 ] && kill $daemon && exit 98
        sleep 0.05
    done
    cat /dev/zero > "$STATE/filler" 2>/dev/null
    cp "$MEDIA" "$LIB/a.m4a"
    tries=0
    while kill -0 $daemon 2>/dev/null; do  # it must stop by itself
        tries=$((tries + 1)); [ $tries -gt 600 ] && kill $daemon && exit 97
        sleep 0.05
    done
    wait $daemon
    echo "rc=$?"
    """
    env = clean_env(tmp_path, LIB=str(tmp_path / "lib"), MEDIA=str(media), STATE=str(tmp_path / "state"))
    env.update(URL=funasr_server.url, OUT=str(tmp_path))
    done = in_own_mounts(script, env)
    assert done.stdout.split()[-1:] == ["rc=1"], (done.stdout, done.stderr)
    line = one_error((tmp_path / "daemon.err").read_text())
    assert "state database" in line and "full" in line, line


# --- a state database that cannot be used ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_state_database_that_is_not_a_file_is_one_line_at_once(tmp_path: Path, kind: str) -> None:
    (tmp_path / "lib").mkdir()
    state = tmp_path / "state"
    state.mkdir()
    if kind == "folder":
        (state / "state.sqlite3").mkdir()
    else:
        os.mkfifo(state / "state.sqlite3")
    started = time.monotonic()
    for args in (
        ["watch", "--once", "--state-dir", str(state), str(tmp_path / "lib")],
        ["retry", "--state-dir", str(state)],
    ):
        done = run_cli(*args, env=clean_env(tmp_path), timeout=30)
        assert done.returncode == 2, done.stderr
        line = one_error(done.stderr)
        assert "state.sqlite3" in line and ("folder" if kind == "folder" else "FIFO") in line, line
    assert time.monotonic() - started < 10


def test_a_state_database_locked_by_another_program_is_one_line_within_seconds(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    state = tmp_path / "state"
    assert (
        run_cli("watch", "--once", "--state-dir", str(state), str(tmp_path / "lib"), env=clean_env(tmp_path)).returncode
        == 0
    )
    holder = sqlite3.connect(state / "state.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # a sqlite3 shell left in a transaction
        started = time.monotonic()
        done = run_cli("watch", "--once", "--state-dir", str(state), str(tmp_path / "lib"), env=clean_env(tmp_path))
        elapsed = time.monotonic() - started
        status = run_cli("status", "--state-dir", str(state), env=clean_env(tmp_path), timeout=20)
        started = time.monotonic()
        retry = run_cli("retry", "--state-dir", str(state), env=clean_env(tmp_path), timeout=40)
        retry_s = time.monotonic() - started
    finally:
        holder.close()
    assert retry.returncode == 2 and "locked" in one_error(retry.stderr) and retry_s < 10, (retry_s, retry.stderr)
    assert status.returncode == 0 and "Traceback" not in status.stderr, "reading needs no lock"
    assert done.returncode == 2, done.stderr
    line = one_error(done.stderr)
    assert "locked" in line and "state.sqlite3" in line, line
    assert elapsed < 10, f"{elapsed:.1f} s: SQLite's 30 s busy wait is for the daemon's own writers"


def test_a_read_only_state_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "state").mkdir()
    script = """
    mount -t tmpfs -o size=1m tmpfs "$STATE" || exit 99
    "$EXE" watch --once --state-dir "$STATE" "$LIB" 2>/dev/null || exit 98
    mount -o remount,ro "$STATE" || exit 97
    "$EXE" watch --once --state-dir "$STATE" "$LIB"
    echo "rc=$?"
    """
    env = clean_env(tmp_path, LIB=str(tmp_path / "lib"), STATE=str(tmp_path / "state"))
    done = in_own_mounts(script, env)
    assert done.stdout.split()[-1:] == ["rc=2"], (done.stdout, done.stderr)
    line = one_error(done.stderr)
    assert "state" in line and ("read-only" in line or "Read-only" in line), line


# --- links out of the watched folders -----------------------------------------------------------------------------
def test_watch_does_not_follow_a_link_to_a_file_outside_the_watched_folders(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    lib, elsewhere = tmp_path / "lib", tmp_path / "elsewhere"
    lib.mkdir()
    elsewhere.mkdir()
    secret = make_media(elsewhere / "secret.m4a", [(500, 800)], 2000)
    own = make_media(lib / "own.m4a", [(500, 800)], 2000)
    (lib / "leak.m4a").symlink_to(secret)
    (lib / "alias.m4a").symlink_to(own)  # a link inside the watched folder is fine
    done = run_cli(
        "watch", "--once", "--settle", "0", "--state-dir", str(tmp_path / "state"), "--server", funasr_server.url,
        str(lib), env=clean_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert not (lib / "leak.zh.srt").exists() and (lib / "own.zh.srt").exists() and (lib / "alias.zh.srt").exists()
    assert "1 link(s) to files outside the watched folders are not followed" in done.stderr, done.stderr


def test_a_webhook_queued_file_replaced_by_a_link_out_of_the_roots_is_refused_when_it_runs(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    lib, elsewhere = tmp_path / "lib", tmp_path / "elsewhere"
    lib.mkdir()
    elsewhere.mkdir()
    secret = make_media(elsewhere / "secret.m4a", [(500, 800)], 2000)
    media = make_media(lib / "film.m4a", [(500, 800)], 2000)
    payload = {"NotificationType": "ItemAdded", "ItemType": "Movie", "ItemId": "1", "Path": str(media)}
    with StateDB(tmp_path / "state") as db, service(ServiceConfig(port=0, roots=(lib,)), db) as svc:
        answer = request(
            svc, "POST", "/webhook/jellyfin", json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
    assert answer.status == 202, answer.body
    media.unlink()
    media.symlink_to(secret)  # swapped before the daemon got to it
    done = run_cli(
        "watch", "--once", "--settle", "0", "--state-dir", str(tmp_path / "state"), "--server", funasr_server.url,
        str(lib), env=clean_env(tmp_path),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert not (lib / "film.zh.srt").exists(), "the file outside the roots was read"
    assert funasr_server.files == [], "nothing was sent to the server"
    assert f"is a link to {secret}, outside the watched folders" in done.stderr, done.stderr


def test_a_webhook_meeting_a_full_state_disk_is_a_503_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "state").mkdir()
    media = make_media(tmp_path / "lib" / "film.m4a", [(500, 800)], 2000)
    payload = json.dumps({"NotificationType": "ItemAdded", "ItemType": "Movie", "ItemId": "1", "Path": str(media)})
    script = """
    mount -t tmpfs -o size=1m tmpfs "$STATE" || exit 99
    "$EXE" serve --port 0 --state-dir "$STATE" --root "$LIB" 2>"$OUT/serve.err" &
    server=$!
    tries=0
    until grep -q "listening on" "$OUT/serve.err"; do
        tries=$((tries + 1)); [ $tries -gt 600 ] && kill $server && exit 98
        sleep 0.05
    done
    cat /dev/zero > "$STATE/filler" 2>/dev/null
    "$PY" -c '
import re, sys, urllib.error, urllib.request
port = re.search(r"listening on http://127.0.0.1:(\\d+)", open(sys.argv[1]).read()).group(1)
call = urllib.request.Request(f"http://127.0.0.1:{port}/webhook/jellyfin", data=sys.argv[2].encode(),
                              headers={"Content-Type": "application/json"})
try:
    answer = urllib.request.urlopen(call, timeout=30)
except urllib.error.HTTPError as exc:
    answer = exc
print("status", answer.status, answer.read().decode())
' "$OUT/serve.err" "$PAYLOAD"
    kill $server
    wait $server
    """
    env = clean_env(tmp_path, LIB=str(tmp_path / "lib"), STATE=str(tmp_path / "state"), OUT=str(tmp_path))
    env.update(PY=sys.executable, PAYLOAD=payload)
    done = in_own_mounts(script, env)
    assert "status 503" in done.stdout and "disk holding it is full" in done.stdout, (done.stdout, done.stderr)
    log = (tmp_path / "serve.err").read_text()
    assert "Traceback" not in log and "disk holding it is full" in log, log

"""Issue 10: nothing a frozen server or a strange file can do stops the tool. One test (or a few) per fault, each
through the installed ``funasr-subs`` command, with the fault harness of tests/faults.py."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import typing
from pathlib import Path

import pytest

from funasr_subs.config import RANGES, Settings
from tests.faults import (
    DAMAGED_SIDECARS,
    HOSTILE_NAMES,
    StallingServer,
    StderrLines,
    assert_interrupted,
    blocked_writing_a_pipe,
    clean_env,
    command,
    corrupt_database,
    descendants,
    finish,
    make_fifo,
    make_long_audio,
    make_symlink_loop,
    popen_cli,
    reaped,
    run_cli,
    run_on_terminal,
    small_tmpfs,
    with_inotify_watch_limit,
)
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.watch_support import wait_for as wait_until  # (a process state in /proc: no event to await)


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
    env = clean_env(tmp_path, TMPDIR=str(spool), PYTHONFAULTHANDLER="1")
    with StallingServer() as server:
        proc = popen_cli("transcribe", "--server", server.url, "--reply-timeout", "600", str(media), env=env)
        with reaped(proc):
            assert server.accepted.wait(30)
            # the job's connection, after the check of the server before the batch (an ffmpeg started early may
            # sleep on its full pipe before that: the job has not taken it yet)
            wait_until(lambda: server.handshakes >= 2, 30, "the job to connect")
            # the stall is complete when ffmpeg sleeps writing its pipe: our reader stopped (back-pressure)
            wait_until(lambda: blocked_writing_a_pipe(proc.pid), 30, "ffmpeg to block on its full pipe")
            proc.send_signal(sig)
            err = finish(proc, 60)  # each step of the stop is bounded (a few seconds); the machine may be loaded
    assert_interrupted(proc, err)
    assert leftovers(media.parent, spool) == [] and list(spool.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_check_of_the_servers_before_the_batch_is_exit_130(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Issue 19: SIGTERM while the servers were probed before the batch killed the process by the signal (its
    ffmpeg started ahead left behind) where the rest of the run exits 130, as Ctrl-C does."""
    import socket

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.m4a", "b.m4a"):
        make_media(lib / name, [(500, 800)], 2000)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, never answers the handshake
        silent.settimeout(30)
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        env = clean_env(tmp_path, PYTHONFAULTHANDLER="1")
        proc = popen_cli("transcribe", "--server", url, "--connect-timeout", "60", str(lib), env=env)
        with reaped(proc):
            conn, _ = silent.accept()  # the probe before the batch is waiting for the server
            with conn:
                wait_until(lambda: descendants(proc.pid), 30, "the ffmpeg started ahead of the batch")
                children = descendants(proc.pid)
                proc.send_signal(sig)
                err = finish(proc, 30)
    assert_interrupted(proc, err)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "the ffmpeg started ahead must be reaped"
    assert sorted(p.name for p in lib.iterdir()) == ["a.m4a", "b.m4a"]


def test_fault1_watch_workers_are_not_blocked_by_a_server_that_stops_reading(tmp_path: Path, long_audio: Path) -> None:
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
    env = clean_env(tmp_path, PYTHONFAULTHANDLER="1")
    with StallingServer() as server:
        proc = popen_cli("watch", "--settle", "0", "--grace", "1", "--state-dir", str(state), "--server",
                         server.url, "--reply-timeout", "600", str(root), env=env)  # fmt: skip
        with reaped(proc):
            assert server.accepted.wait(30)
            wait_until(lambda: blocked_writing_a_pipe(proc.pid), 30, "ffmpeg to block on its full pipe")
            proc.send_signal(signal.SIGTERM)
            err = finish(proc, 60)
    assert proc.returncode == 0, err
    assert "queued again" in err and "did not stop in time" not in err, err
    assert leftovers(root) == []


# --- fault 14: settings that crash or spin ---------------------------------------------------------------------------
def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--retries", "-1"], "--retries"),
        (["--retries", "1000"], "--retries"),
        (["--reply-timeout", "nan"], "--reply-timeout"),
        (["--reply-timeout", "-5"], "--reply-timeout"),
        (["--connect-timeout", "inf"], "--connect-timeout"),
        (["--connect-timeout", "0"], "--connect-timeout"),
        (["--retry-backoff", "nan"], "--retry-backoff"),
        (["--reply-timeout-ratio", "-1"], "--reply-timeout-ratio"),
        (["--max-cps", "inf"], "--max-cps"),
        (["--fps", "nan"], "--fps"),
        (["--max-lines", "0"], "--max-lines"),
        (["--jobs", "0"], "--jobs"),
        (["--lang", "zh\x01"], "--lang"),
        (["--lang", "zh\nx"], "--lang"),
        (["--hotword", "x=inf"], "--hotword"),
        (["--hotword", "x=٢٠"], "--hotword"),
        (["--hotword", "x=1_0"], "--hotword"),
        (["--hotword", "x=0"], "--hotword"),
        (["--hotword", "x=101"], "--hotword"),
        (["--server", "ws://a:1#slots=²"], "slots=N"),  # issue 19: str.isdigit() took it, int() raised
        (["--server", "ws://a:1#slots=٣"], "slots=N"),  # int() takes Arabic-Indic digits
        (["--server", "ws://a:1#slots=1_0"], "slots=N"),
    ],
)
def test_fault14_a_bad_flag_is_one_line_naming_it(tmp_path: Path, args: list[str], names: str) -> None:
    line = one_error_line(run_cli("config", *args, env=clean_env(tmp_path), timeout=30))
    assert names in line, line


@pytest.mark.parametrize(
    ("toml", "names"),
    [
        ("retries = -1\n", "retries"),
        ("reply_timeout = nan\n", "reply-timeout"),
        ("retry_backoff = -inf\n", "retry-backoff"),
        ('lang = "zh\\u0000"\n', "lang"),
        ('[hotwords]\n"达摩院" = inf\n', "达摩院"),
        ('[hotwords]\n"达摩院" = 1000\n', "达摩院"),
    ],
)
def test_fault14_a_bad_config_value_names_the_file(tmp_path: Path, toml: str, names: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    line = one_error_line(run_cli("config", "--config", str(config), env=clean_env(tmp_path), timeout=30))
    assert str(config) in line and names in line, line


def test_fault14_a_config_file_that_is_not_utf8_is_not_valid_toml(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(b'lang = "zh\xff"\n')
    line = one_error_line(run_cli("config", "--config", str(config), env=clean_env(tmp_path), timeout=30))
    assert str(config) in line and "not valid TOML" in line and "UTF-8" in line, line


def test_fault14_a_bad_variable_names_the_variable(tmp_path: Path) -> None:
    env = clean_env(tmp_path, FUNASR_SUBS_REPLY_TIMEOUT="inf")
    line = one_error_line(run_cli("config", env=env, timeout=30))
    assert "FUNASR_SUBS_REPLY_TIMEOUT" in line, line


@pytest.mark.parametrize(
    ("args", "toml", "names"),
    [
        (["--poll", "nan"], "", "--poll"),
        (["--grace", "inf"], "", "--grace"),
        (["--settle", "-1"], "", "--settle"),
        ([], "[watch]\ngrace = inf\n", "grace"),
        ([], "[watch]\npoll = nan\n", "poll"),
        ([], "[watch]\njobs = -3\n", "jobs"),
    ],
)
def test_fault14_watch_timing_values_are_range_checked(tmp_path: Path, args: list[str], toml: str, names: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml, encoding="utf-8")
    root = tmp_path / "lib"
    root.mkdir()
    done = run_cli("watch", "--once", "--config", str(config), "--state-dir", str(tmp_path / "state"), *args,
                   str(root), env=clean_env(tmp_path), timeout=30)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert names in done.stderr, done.stderr


def test_fault14_serve_with_an_empty_host_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[serve]\nhost = ""\n', encoding="utf-8")
    line = one_error_line(run_cli("serve", "--config", str(config), env=clean_env(tmp_path), timeout=30))
    assert "host" in line, line


def test_fault14_a_bad_value_in_a_sidecar_is_blamed_on_the_sidecar(tmp_path: Path) -> None:
    sidecar = tmp_path / "film.funasr.json"
    reply = {"text": "你好", "timestamp": [[100, 300], [300, 500]], "mode": "offline"}
    text = json.dumps({"reply": reply, "settings": {"max_cps": -3, "fps": 12345}}).replace("12345", "1e400")
    sidecar.write_text(text, encoding="utf-8")
    done = run_cli("retime", str(sidecar), env=clean_env(tmp_path), timeout=30)
    assert done.returncode == 0, done.stderr
    warning = next(line for line in done.stderr.splitlines() if "warning" in line)
    assert str(sidecar) in warning and "--max-cps" not in done.stderr and "--fps" not in done.stderr, done.stderr
    assert (tmp_path / "film.zh.srt").exists()


# --- hotword limits ---------------------------------------------------------------------------------------------------
def test_hotword_limits_warn_and_trim_saying_so(tmp_path: Path) -> None:
    words = tmp_path / "hotwords.txt"
    lines = [f"词{i} 20" for i in range(1500)] + ["一二三四五六七八九十十一 30"]
    words.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_cli("config", "--hotwords", str(words), env=clean_env(tmp_path), timeout=30)
    assert done.returncode == 0, done.stderr
    assert "longer than 10 characters left out" in done.stderr and "一二三四五六七八九十十一" in done.stderr
    assert "only the first 1000 are sent" in done.stderr
    assert done.stdout.count("= 20") == 1000 and "一二三四五六七八九十十一" not in done.stdout


# --- fault 3: a hostile sidecar must not write outside its folder -------------------------------------------------
@pytest.mark.parametrize("name", ["../escaped/evil.mkv", "/ABS/evil.mkv", "..", "sub/evil.mkv"])
def test_fault3_retime_refuses_a_sidecar_naming_a_file_elsewhere(tmp_path: Path, name: str) -> None:
    folder, escaped = tmp_path / "show", tmp_path / "escaped"
    folder.mkdir()
    escaped.mkdir()
    name = name.replace("/ABS", str(tmp_path / "escaped").rsplit("/escaped", 1)[0] + "/escaped")
    user_srt = escaped / "evil.zh.srt"
    user_srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nthe user's own subtitle\n", encoding="utf-8")
    forged = hashlib.sha256(user_srt.read_bytes()).hexdigest()
    sidecar = folder / "film.funasr.json"
    reply = {"text": "你好", "timestamp": [[100, 300], [300, 500]], "mode": "offline"}
    data = {"reply": reply, "media": {"name": name}, "outputs": {"evil.zh.srt": [forged], name: [forged]}}
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    before = sorted(p.name for p in escaped.iterdir())
    done = run_cli("retime", str(sidecar), env=clean_env(tmp_path), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "film.funasr.json" in done.stderr and "not a file name" in done.stderr, done.stderr
    assert sorted(p.name for p in escaped.iterdir()) == before
    assert "the user's own subtitle" in user_srt.read_text(encoding="utf-8")
    assert sorted(p.name for p in folder.iterdir()) == ["film.funasr.json"]


# --- fault 6: a damaged sidecar is "not ours", one warning, never a crash -------------------------------------------
@pytest.mark.parametrize("kind", sorted(DAMAGED_SIDECARS))
def test_fault6_watch_scan_and_transcribe_survive_a_damaged_sidecar(
    funasr_server: FunasrTestServer, tmp_path: Path, kind: str
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    make_media(root / "a.m4a", [(500, 800)], 2000)
    make_media(root / "b.m4a", [(500, 800)], 2000)
    damaged = DAMAGED_SIDECARS[kind].encode("utf-8", "surrogateescape") if kind != "not-utf8" else b'{"x": "\xff"}'
    (root / "a.funasr.json").write_bytes(damaged)
    env = clean_env(tmp_path)
    done = run_cli("watch", "--once", "--settle", "0", "--state-dir", str(tmp_path / "state"), "--server",
                   funasr_server.url, "--retries", "0", str(root), env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "a.funasr.json" in line and "warning" in line]
    assert len(warnings) == 1, done.stderr
    assert (root / "a.zh.srt").exists() and (root / "b.zh.srt").exists()
    (root / "a.funasr.json").write_bytes(damaged)  # damaged again: transcribe and retime meet it too
    again = run_cli("transcribe", "--server", funasr_server.url, "--overwrite", str(root / "a.m4a"), env=env)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    (root / "a.funasr.json").write_bytes(damaged)
    retimed = run_cli("retime", str(root / "a.funasr.json"), env=env, timeout=30)
    assert retimed.returncode == 1 and "Traceback" not in retimed.stderr, retimed.stderr
    assert "a.funasr.json" in retimed.stderr


# --- fault 7: FIFOs where a hotwords file or a sidecar is expected ------------------------------------------------
@pytest.mark.parametrize("where", ["hotwords.txt", "a.funasr.json"])
def test_fault7_a_fifo_does_not_hang_the_daemon(funasr_server: FunasrTestServer, tmp_path: Path, where: str) -> None:
    root = tmp_path / "lib"
    (root / "show").mkdir(parents=True)
    make_media(root / "show" / "a.m4a", [(500, 800)], 2000)
    make_media(root / "b.m4a", [(500, 800)], 2000)
    make_fifo(root / "show" / where)
    done = run_cli("watch", "--once", "--settle", "0", "--state-dir", str(tmp_path / "state"), "--server",
                   funasr_server.url, "--retries", "0", str(root), env=clean_env(tmp_path), timeout=60)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert (root / "b.zh.srt").exists(), done.stderr
    assert where in done.stderr and "named pipe" in done.stderr, done.stderr
    assert done.returncode == 1  # that file fails with the reason; the others are done
    if where == "a.funasr.json":  # outputs replace only regular files (issue 19): the pipe is left, nothing sent
        assert (root / "show" / where).is_fifo() and not (root / "show" / "a.zh.srt").exists()
        assert "outputs replace only regular files" in done.stderr, done.stderr


def test_fault7_hotwords_flag_naming_a_fifo_is_one_line(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path / "words.txt")
    media = make_media(tmp_path / "a.m4a", [(500, 800)], 2000)
    done = run_cli("transcribe", "--hotwords", str(fifo), str(media), env=clean_env(tmp_path), timeout=30)
    line = one_error_line(done)
    assert str(fifo) in line and "named pipe" in line, line


# --- fault 2: names that are legal on Linux but not text ---------------------------------------------------------
@pytest.fixture
def hostile_library(tmp_path: Path) -> Path:
    """One real media file under every hostile name (hard links), plus a plain one."""
    root = tmp_path / "lib"
    root.mkdir()
    plain = make_media(root / "plain.m4a", [(500, 800)], 2000)
    for raw in HOSTILE_NAMES.values():
        os.link(plain, os.path.join(os.fsencode(root), raw))
    return root


def subtitle_of(root: Path, raw: bytes) -> bool:
    stem = raw.rsplit(b".", 1)[0]
    return os.path.exists(os.path.join(os.fsencode(root), stem + b".zh.srt"))


def assert_one_line_per_event(stderr: str) -> None:
    assert "Traceback" not in stderr and "surrogates not allowed" not in stderr, stderr
    for line in stderr.splitlines():  # a file named "two\nlines" must not start a line of its own
        assert not line.startswith("lines."), stderr


def test_fault2_transcribe_handles_hostile_names(funasr_server: FunasrTestServer, hostile_library: Path) -> None:
    root = hostile_library
    done = run_cli("transcribe", "--server", funasr_server.url, "--retries", "0", str(root),
                   env=clean_env(root.parent))  # fmt: skip
    assert_one_line_per_event(done.stderr)
    for kind, raw in HOSTILE_NAMES.items():
        if kind != "255-bytes":
            assert subtitle_of(root, raw), (kind, done.stderr)
    assert "bad\\xffname.m4a" in done.stderr and "two\\nlines.m4a" in done.stderr
    # 255 bytes: the subtitle's name cannot be longer; that file fails with one line, the others are done
    assert done.returncode == 1
    failed = [line for line in done.stderr.splitlines() if line.startswith("error:") and "长长" in line]
    assert len(failed) == 1 and "longer than the file system allows" in failed[0], done.stderr
    assert failed[0].startswith(f"error: {root}/长长") and ".m4a: cannot write" in failed[0], failed


def test_fault2_watch_queues_and_does_hostile_names_and_survives_restart(
    funasr_server: FunasrTestServer, hostile_library: Path
) -> None:
    root, state = hostile_library, hostile_library.parent / "state"
    env = clean_env(root.parent)
    args = ["watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", funasr_server.url, str(root)]
    first = run_cli(*args, env=env)
    assert_one_line_per_event(first.stderr)
    for kind, raw in HOSTILE_NAMES.items():
        if kind != "255-bytes":
            assert subtitle_of(root, raw), (kind, first.stderr)
    again = run_cli(*args, env=env)  # the restart: nothing is redone, nothing crashes
    assert_one_line_per_event(again.stderr)
    assert "processing" not in again.stderr, again.stderr
    status = run_cli("status", "--state-dir", str(state), env=env, timeout=30)
    assert status.returncode == 0 and "bad\\xffname.m4a" in status.stdout, status.stderr
    listed = run_cli("status", "--json", "--state-dir", str(state), env=env, timeout=30)
    paths = {job["path"] for section in ("recent", "failures") for job in json.loads(listed.stdout)[section]}
    assert os.path.join(str(root), os.fsdecode(HOSTILE_NAMES["invalid-utf8"])) in paths  # lossless


def test_fault2_hook_queues_a_hostile_name(funasr_server: FunasrTestServer, hostile_library: Path) -> None:
    root, state = hostile_library, hostile_library.parent / "state"
    env = clean_env(root.parent)
    bad = os.path.join(os.fsencode(root), HOSTILE_NAMES["invalid-utf8"])
    dashed = os.path.join(os.fsencode(root), HOSTILE_NAMES["leading-dash"])
    done = run_cli("hook", "--state-dir", str(state), bad, dashed, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert_one_line_per_event(done.stderr)
    mapped = run_cli("hook", "--state-dir", str(state), "--path-map", f"/remote={root}",
                     b"/remote/" + HOSTILE_NAMES["invalid-utf8"], env=env, timeout=30)  # fmt: skip
    assert mapped.returncode == 0, mapped.stderr
    work = run_cli("watch", "--once", "--state-dir", str(state), "--server", funasr_server.url, env=env)
    assert_one_line_per_event(work.stderr)
    assert subtitle_of(root, HOSTILE_NAMES["invalid-utf8"]) and subtitle_of(root, HOSTILE_NAMES["leading-dash"])
    inline = run_cli("hook", "--inline", "--overwrite", "--state-dir", str(tmp_state := state.parent / "s2"),
                     "--server", funasr_server.url, bad, env=env)  # fmt: skip
    assert inline.returncode == 0 and tmp_state.exists(), inline.stderr
    assert_one_line_per_event(inline.stderr)


# --- fault 9: a damaged state database ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["garbage", "malformed"])
def test_fault9_a_damaged_state_database_is_moved_aside(
    funasr_server: FunasrTestServer, tmp_path: Path, kind: str
) -> None:
    root, state = tmp_path / "lib", tmp_path / "state"
    root.mkdir()
    make_media(root / "a.m4a", [(500, 800)], 2000)
    env = clean_env(tmp_path)
    args = ["watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", funasr_server.url, str(root)]
    assert run_cli(*args, env=env).returncode == 0
    corrupt_database(state / "state.sqlite3", kind)
    status = run_cli("status", "--state-dir", str(state), env=env, timeout=30)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    warning = [line for line in status.stderr.splitlines() if "damaged" in line]
    assert len(warning) == 1 and str(state / "state.sqlite3") in warning[0] and "moved aside" in warning[0]
    assert any(p.name.startswith("state.sqlite3.damaged-") for p in state.iterdir())
    make_media(root / "b.m4a", [(500, 800)], 2000)
    corrupt_database(state / "state.sqlite3", kind)
    again = run_cli(*args, env=env)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert (root / "b.zh.srt").exists() and len(funasr_server.requests) == 2  # a.m4a: its sidecar says it is done


# --- fault 10: a file-level symlink loop in a folder ------------------------------------------------------------------
def test_fault10_a_symlink_loop_does_not_stop_the_folder(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    make_media(root / "good.m4a", [(500, 800)], 2000)
    first, _ = make_symlink_loop(root)
    env = clean_env(tmp_path)
    done = run_cli("transcribe", "--server", funasr_server.url, str(root), env=env)
    assert "Traceback" not in done.stderr and (root / "good.zh.srt").exists(), done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("symlink" in e for e in errors), done.stderr  # a.mkv, b.mkv
    explicit = run_cli("transcribe", "--server", funasr_server.url, str(first), env=env)
    assert explicit.returncode == 1 and "symlink" in explicit.stderr and "Traceback" not in explicit.stderr
    watched = run_cli("watch", "--once", "--settle", "0", "--state-dir", str(tmp_path / "state"), "--server",
                      funasr_server.url, str(root), env=env)  # fmt: skip
    assert watched.returncode == 0 and "Traceback" not in watched.stderr, watched.stderr


# --- fault 12: more jobs than progress-bar rows -----------------------------------------------------------------------
def test_fault12_more_jobs_than_bar_rows_on_a_terminal(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    plain = make_media(root / "f00.m4a", [(200, 500)], 1000)
    for i in range(1, 70):
        os.link(plain, root / f"f{i:02}.m4a")
    with StallingServer() as server:  # every job waits for a reply at the same time: 70 uploads running at once
        code, terminal = run_on_terminal(
            [*command(), "transcribe", "-j", "70", "--server", server.url, "--retries", "0", "--reply-timeout", "3",
             "--reply-timeout-ratio", "0", str(root)],
            clean_env(tmp_path),
        )  # fmt: skip
    assert code == 1
    assert "pop from empty list" not in terminal and "unexpected failure" not in terminal, terminal[-2000:]
    assert terminal.count("sent no reply within 3 s") == 70, terminal[-2000:]


# --- fault 13: long names whose outputs fit -------------------------------------------------------------------------
@pytest.mark.parametrize("stem_length", [230, 243])
def test_fault13_a_long_stem_whose_outputs_fit_is_done(
    funasr_server: FunasrTestServer, tmp_path: Path, stem_length: int
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    media = make_media(root / ("x" * stem_length + ".m4a"), [(500, 800)], 2000)
    done = run_cli("transcribe", "--server", funasr_server.url, str(media), env=clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert media.with_name(media.stem + ".zh.srt").exists() and media.with_name(media.stem + ".funasr.json").exists()
    assert leftovers(root) == []


# --- fault 5: a subtitle the user saves while a job runs ------------------------------------------------------------
def test_fault5_a_subtitle_saved_during_the_job_is_kept(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    media = make_media(root / "a.m4a", [(500, 800)], 2000)
    funasr_server.fault, funasr_server.slow_seconds = "slow", 3.0  # the reply comes 3 s after the upload
    proc = popen_cli("transcribe", "--server", funasr_server.url, str(media), env=clean_env(tmp_path))
    with reaped(proc):
        assert funasr_server.wait_for_requests(1, timeout=30)
        users = root / "a.zh.srt"
        users.write_text("1\n00:00:00,500 --> 00:00:01,300\nmy own careful subtitle\n", encoding="utf-8")
        _, err = proc.communicate(timeout=60)
    assert funasr_server.wait_for_replies(1)
    assert "my own careful subtitle" in users.read_text(encoding="utf-8")
    assert proc.returncode == 1 and "appeared while the job ran" in err and "Traceback" not in err, err
    assert leftovers(root) == []


# --- also weak: stale temp files, disk full ---------------------------------------------------------------------------
def test_stale_temp_files_of_ours_are_removed_on_the_next_run(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    media = make_media(root / "a.m4a", [(500, 800)], 2000)
    ours = [root / ".a.zh.srt.0badf00d.tmp", root / ".a.funasr.json.1234abcd.tmp", root / ".b~.srt.deadbeef.tmp"]
    theirs = [root / ".notes.tmp", root / ".a.zh.srt.nothex00.tmp", root / ".video.mkv.1234abcd.tmp"]
    for path in ours + theirs:
        path.write_text("half written", encoding="utf-8")
        os.utime(path, (time.time() - 600, time.time() - 600))  # left by a run killed ten minutes ago
    done = run_cli("transcribe", "--server", funasr_server.url, str(media), env=clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)
    assert "removed 3 stale temporary file(s)" in done.stderr, done.stderr
    for path in ours:  # killed again; the next run has nothing to redo, and still tidies up
        path.write_text("half written", encoding="utf-8")
        os.utime(path, (time.time() - 600, time.time() - 600))
    again = run_cli("transcribe", "--server", funasr_server.url, str(media), env=clean_env(tmp_path))
    assert again.returncode == 0 and "up to date" in again.stderr, again.stderr
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)


def test_disk_full_is_said_as_such(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "a.m4a", [(500, 800)], 2000)
    with small_tmpfs(tmp_path / "full") as out:
        filler = out / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):  # fill it to the last block
            while True:
                os.write(fd, bytes(4096))
        os.close(fd)
        done = run_cli("transcribe", "--server", funasr_server.url, "--output-dir", str(out), str(media),
                       env=clean_env(tmp_path))  # fmt: skip
        left = sorted(p.name for p in out.iterdir())
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    error = next(line for line in done.stderr.splitlines() if line.startswith("error:"))
    assert "disk is full" in error and "a.m4a" in error, done.stderr
    assert left == ["filler"]


def test_a_connection_dropped_during_the_upload_says_what_to_check(
    funasr_server: FunasrTestServer, tmp_path: Path, long_audio: Path
) -> None:
    media = long_audio  # more than the socket buffers hold: the upload is still running when the server drops it
    funasr_server.fault, funasr_server.drop_after_bytes = "drop", 1
    done = run_cli("transcribe", "--server", funasr_server.url, "--retries", "0", str(media), env=clean_env(tmp_path))
    assert done.returncode == 1, done.stderr
    error = next(line for line in done.stderr.splitlines() if line.startswith("error:"))
    assert "dropped the connection during the upload" in error and "check that the server is still running" in error


# --- fault 8: the inotify limit ------------------------------------------------------------------------------------
def _watch_argv(state: Path, url: str, root: Path) -> list[str]:
    return [*command(), "watch", "--settle", "0", "--grace", "1", "--state-dir", str(state), "--server", url, str(root)]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _watch_with_folders(
    tmp_path: Path, url: str, root: Path, folders: int
) -> tuple[subprocess.Popen[str], StderrLines]:
    """``watch`` on ``root`` holding ``folders`` empty folders, with room for 200 inotify watches."""
    for i in range(folders):
        (root / f"d{i:03}").mkdir(parents=True)
    argv = with_inotify_watch_limit(200, _watch_argv(tmp_path / "state", url, root))
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, errors="replace", env=clean_env(tmp_path))
    return proc, StderrLines(proc)


def test_fault8_folders_past_the_inotify_limit_mean_polling_said_so(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    proc, lines = _watch_with_folders(tmp_path, funasr_server.url, root, 301)
    try:
        warning = lines.wait_for("cannot watch with inotify")
        assert "102 folder(s) got no watch" in warning and "max_user_watches" in warning, warning
        assert "polling every" in lines.wait_for("watching ")
    finally:
        _stop(proc)


def test_fault8_folders_made_later_past_the_limit_switch_to_polling(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    proc, lines = _watch_with_folders(tmp_path, funasr_server.url, root, 100)
    try:
        assert "(inotify)" in lines.wait_for("watching ")
        lines.wait_for("scanned ")
        staging = tmp_path / "staging"
        for i in range(150):
            (staging / f"n{i:03}").mkdir(parents=True)
        make_media(staging / "n149" / "late.m4a", [(500, 800)], 2000)
        os.rename(staging, root / "new")  # 151 folders arrive at once; the last ones find the table full
        assert "new folder(s) got no watch" in lines.wait_for("cannot watch with inotify")
        lines.wait_for("done ")
        assert (root / "new" / "n149" / "late.zh.srt").exists()
    finally:
        _stop(proc)


# --- fault 4: a symlinked folder moved into a watched root ---------------------------------------------------------
def test_fault4_a_symlinked_folder_moved_in_is_not_followed(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    root, outside, staging = tmp_path / "lib", tmp_path / "outside", tmp_path / "staging"
    for folder in (root, outside, staging):
        folder.mkdir()
    make_media(outside / "private.m4a", [(500, 800)], 2000)
    (staging / "season").mkdir()
    (staging / "season" / "linked").symlink_to(outside, target_is_directory=True)
    state = tmp_path / "state"
    proc = subprocess.Popen(_watch_argv(state, funasr_server.url, root), stderr=subprocess.PIPE, text=True,
                            errors="replace", env=clean_env(tmp_path))  # fmt: skip
    lines = StderrLines(proc)
    try:
        lines.wait_for("scanned ")
        os.rename(staging / "season", root / "season")  # a folder holding a symlinked folder arrives by a move
        make_media(staging / "plain.m4a", [(500, 800)], 2000)
        os.rename(staging / "plain.m4a", root / "plain.m4a")  # an event after it, to know the first was handled
        lines.wait_for("done ")
    finally:
        _stop(proc)
    assert "private.m4a" not in lines.text(), lines.text()
    assert sorted(p.name for p in outside.iterdir()) == ["private.m4a"]
    again = run_cli("watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", funasr_server.url,
                    str(root), env=clean_env(tmp_path))  # fmt: skip
    assert again.returncode == 0 and "private.m4a" not in again.stderr, again.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["private.m4a"]


# --- also weak: a watched root deleted and made again; a state folder deleted under a running daemon ---------------
def test_a_watched_root_deleted_and_recreated_is_watched_again(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    proc = subprocess.Popen(_watch_argv(tmp_path / "state", funasr_server.url, root), stderr=subprocess.PIPE,
                            text=True, errors="replace", env=clean_env(tmp_path))  # fmt: skip
    lines = StderrLines(proc)
    try:
        lines.wait_for("scanned ")
        shutil.rmtree(root)
        lines.wait_for("is gone")
        root.mkdir()
        lines.wait_for("is back")
        make_media(tmp_path / "new.m4a", [(500, 800)], 2000)
        os.rename(tmp_path / "new.m4a", root / "new.m4a")
        assert "new.m4a" in lines.wait_for("done ")
    finally:
        _stop(proc)
    assert (root / "new.zh.srt").exists()


def test_a_daemon_whose_state_folder_is_deleted_stops_so_no_second_one_doubles_it(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    root, state = tmp_path / "lib", tmp_path / "state"
    root.mkdir()
    proc = subprocess.Popen(_watch_argv(state, funasr_server.url, root), stderr=subprocess.PIPE, text=True,
                            errors="replace", env=clean_env(tmp_path))  # fmt: skip
    lines = StderrLines(proc)
    gone = tmp_path / "state-deleted"
    try:
        lines.wait_for("scanned ")
        # gone from its path at once, as by rm -rf; emptied once the daemon has stopped (an rmtree racing the
        # daemon's own last writes failed with "Directory not empty" under load)
        state.rename(gone)
        assert str(state) in lines.wait_for("was deleted or replaced under this daemon")
        assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            _stop(proc)
    shutil.rmtree(gone)
    make_media(root / "a.m4a", [(500, 800)], 2000)
    second = run_cli("watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", funasr_server.url,
                     str(root), env=clean_env(tmp_path))  # fmt: skip
    assert second.returncode == 0 and len(funasr_server.requests) == 1, second.stderr


def test_every_number_setting_has_a_range() -> None:
    """A number added to Settings later gets a range too (else NaN or -1 would reach the job again)."""
    hints = typing.get_type_hints(Settings)
    numbers = {
        f.name
        for f in dataclasses.fields(Settings)
        if {int, float} & {hints[f.name], *typing.get_args(hints[f.name])} and f.name != "hotwords"  # weights: 1-100
    }
    assert numbers and numbers <= set(RANGES), numbers - set(RANGES)


@pytest.mark.parametrize("command_args", [["check"], ["retime"], ["config", "--config"], ["transcribe"]])
def test_fault7_every_command_refuses_a_fifo_instead_of_waiting(tmp_path: Path, command_args: list[str]) -> None:
    fifo = make_fifo(tmp_path / "x.srt")
    done = run_cli(*command_args, str(fifo), env=clean_env(tmp_path), timeout=30)
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    assert "x.srt" in done.stderr and ("named pipe" in done.stderr or "no sidecar" in done.stderr), done.stderr


# --- issue 19: standard output that cannot take what a command prints ---------------------------------------------
@pytest.fixture(scope="module")
def printing_commands(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    """Every command that prints, each with what it needs to print something."""
    home = tmp_path_factory.mktemp("printing")
    from benchmarks.bench_cues import funasr_like_tokens, reply_for

    reply = home / "talk.json"  # ten minutes of speech: enough for sync to trust its alignment
    reply.write_text(json.dumps(reply_for(funasr_like_tokens(2400)), ensure_ascii=False), encoding="utf-8")
    subtitle = home / "talk.srt"
    env = clean_env(home)
    assert run_cli("retime", str(reply), "-o", str(subtitle), env=env).returncode == 0
    (home / "lib").mkdir()
    media = make_media(home / "lib" / "a.m4a", [(500, 800)], 2000)
    state = home / "state"
    return [
        ["config"],
        ["status", "--state-dir", str(state)],
        ["check", str(subtitle)],
        ["retime", str(reply), "-o", str(home / "again.srt"), "--overwrite", "--check"],
        ["sync", str(subtitle), str(reply), "-o", str(home / "synced.srt")],
        ["transcribe", "--dry-run", str(media)],
        ["watch", "--dry-run", "--state-dir", str(state), str(media.parent)],
        ["hook", "--state-dir", str(home / "hook-state"), str(media)],  # its lines go to stdout, for Bazarr
    ]


@pytest.mark.parametrize("how", ["full", "closed", "reader gone"])
def test_a_stdout_that_cannot_take_the_output_is_one_line_and_exit_1(
    tmp_path: Path, printing_commands: list[list[str]], how: str
) -> None:
    env = clean_env(tmp_path)
    for args in printing_commands:
        if how == "full":
            with open("/dev/full", "w") as full:
                done = subprocess.run([*command(), *args], stdout=full, stderr=subprocess.PIPE, text=True, env=env,
                                      timeout=60, check=False)  # fmt: skip
        elif how == "closed":  # ``>&-``
            done = subprocess.run([*command(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=env, timeout=60, check=False, preexec_fn=lambda: os.close(1))  # fmt: skip
        else:  # ``| head -0``: the reader has gone before anything was written
            read, write = os.pipe()
            os.close(read)
            try:
                done = subprocess.run([*command(), *args], stdout=write, stderr=subprocess.PIPE, text=True, env=env,
                                      timeout=60, check=False)  # fmt: skip
            finally:
                os.close(write)
        assert done.returncode == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, (args, done.stderr)
        said = [line for line in done.stderr.splitlines() if "standard output" in line]
        if how == "reader gone":
            assert said == [], (args, done.stderr)  # | head: the reader took what it wanted, nothing to say
        else:
            assert len(said) == 1 and said[0].startswith("funasr-subs: error: cannot write"), (args, done.stderr)


def test_transcribe_check_into_a_full_stdout_still_does_every_file(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.m4a", "b.m4a", "c.m4a"):
        make_media(lib / name, [(500, 800)], 2000)
    with open("/dev/full", "w") as full:
        done = subprocess.run([*command(), "transcribe", "--check", "--server", funasr_server.url, str(lib)],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=clean_env(tmp_path), timeout=120,
                              check=False)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("cannot write to standard output") == 1, done.stderr
    assert sorted(p.name for p in lib.glob("*.zh.srt")) == ["a.zh.srt", "b.zh.srt", "c.zh.srt"]

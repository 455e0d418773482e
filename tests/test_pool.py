"""A pool of real FunASR test servers on 127.0.0.1: dispatch, slots, a server killed mid-upload, all servers down
then one back, split and merge across servers, answers that cannot change, and the watch queue with a pool."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_subs.config import Settings
from funasr_subs.pipeline import generate_subtitles
from funasr_subs.recognition.client import probe_server
from funasr_subs.recognition.endpoint import parse_endpoints
from funasr_subs.recognition.pool import Pool
from funasr_subs.sidecar import read_sidecar, sidecar_path_for
from funasr_subs.watch.daemon import WatchDaemon
from funasr_subs.watch.servers import load_servers
from funasr_subs.watch.state import StateDB
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_media
from tests.watch_support import options, running, wait_for

BURSTS = [(1000, 800), (3000, 1500)]
RTF = 0.05


@contextlib.contextmanager
def servers(n: int, **kwargs: object) -> Iterator[list[FunasrTestServer]]:
    started = [FunasrTestServer(rtf=RTF, **kwargs).start() for _ in range(n)]  # type: ignore[arg-type]
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env["XDG_CONFIG_HOME"] = "/nonexistent-config-home"
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def settings(urls: list[str], **changes: object) -> Settings:
    base = Settings(servers=tuple(urls), retries=2, retry_backoff=0.05, connect_timeout=3, reply_timeout=10)
    return base.replace(**changes)


def requests_of(server: FunasrTestServer) -> list[str]:
    """The sha256 of every request that got a reply."""
    return [f.sha256 for f in server.files if f.sent]


# --- dispatch and slots -----------------------------------------------------------------------------------------
def test_files_spread_over_servers_and_slots_are_respected(tmp_media_dir: Path) -> None:
    for i in range(8):
        make_media(tmp_media_dir / f"f{i}.mka", bursts=BURSTS, duration_ms=5000)
    with servers(3) as (a, b, c):
        done = cli(
            "transcribe", "-j", "8", "--server", f"{a.url}#slots=2", "--server", b.url, "--server", c.url,
            str(tmp_media_dir),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("done:") == 8
        counts = [len(requests_of(s)) for s in (a, b, c)]
        assert sum(counts) == 8 and all(counts), counts  # every server worked, each file once
        assert a.max_active == 2  # its two slots were used ...
        assert b.max_active == 1 and c.max_active == 1  # ... and nobody got more than its slots
        assert sorted(r["wav_name"] for s in (a, b, c) for r in s.requests) == [f"f{i}" for i in range(8)]


def test_least_loaded_server_gets_the_next_job() -> None:
    async def scenario() -> list[str]:
        async def no_probe(url: str) -> None:
            return None

        pool = Pool(parse_endpoints(["ws://a:1#slots=4", "ws://b:1", "ws://c:1#slots=2"]), no_probe)
        taken = [await pool.acquire() for _ in range(7)]
        assert pool.capacity == 7
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)  # let it find every slot taken
        assert not waiter.done()
        pool.succeeded(taken[0], audio_ms=60_000, seconds=3.0)
        freed = await asyncio.wait_for(waiter, 5)
        assert freed is taken[0]
        return [s.url for s in taken]

    order = asyncio.run(scenario())
    # a (0/4), b (0/1), c (0/2) idle: a first; then the least loaded share each time
    assert order[:3] == ["ws://a:1", "ws://c:1", "ws://b:1"]  # equal load: the one with more free slots
    assert sorted(order) == ["ws://a:1"] * 4 + ["ws://b:1"] + ["ws://c:1"] * 2


# --- failures -----------------------------------------------------------------------------------------------
def test_server_killed_mid_upload_loses_nothing_and_the_file_is_done_once(tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "talk.mka", bursts=[(1000, 800), (40_000, 1500)], duration_ms=60_000)
    whole = hashlib.sha256(decode_pcm(media)).hexdigest()
    with servers(3) as (a, b, c):
        a.drop_after_bytes = 65_536
        a.fault = "stall"  # stops reading after 64 KiB: the upload is in flight when it dies

        def kill_when_uploading() -> None:
            assert a.wait_for_bytes(65_536, timeout=30)
            a.kill()

        killer = threading.Thread(target=kill_when_uploading)
        killer.start()
        pool = Pool.from_settings(settings([a.url, b.url, c.url], split_minutes=0))
        result = generate_subtitles(media, settings([a.url, b.url, c.url], split_minutes=0), pool=pool)
        killer.join()
        assert result.status == "done"
        assert [c_.start_ms for c_ in result.cues][:1] == [pytest.approx(1000, abs=100)]
        assert any(abs(c_.start_ms - 40_000) <= 100 for c_ in result.cues)
        assert requests_of(a) == []
        assert requests_of(b) + requests_of(c) == [whole]  # the whole audio, once, on one other server
        states = {s.url: s.state for s in pool.status()}
        assert states[a.url] == "down" and states[b.url] == states[c.url] == "up"


def test_all_servers_down_then_one_back(tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mka", bursts=BURSTS, duration_ms=5000)
    with servers(3) as trio:
        for s in trio:
            s.fault = "refuse"
        probes = threading.Semaphore(0)
        cfg = settings([s.url for s in trio], retries=50)

        async def counted_probe(url: str) -> None:
            try:
                await probe_server(url, False, None, 3)
            finally:
                probes.release()

        pool = Pool(parse_endpoints(cfg.server_list), counted_probe, backoff_base=0.05, backoff_cap=0.2)
        outcome: list[object] = []
        job = threading.Thread(target=lambda: outcome.append(generate_subtitles(media, cfg, pool=pool)))
        job.start()
        for _ in range(6):  # every server was found down and probed again at least twice
            assert probes.acquire(timeout=30)
        assert pool.all_down() and job.is_alive()
        trio[1].fault = None  # one comes back
        job.join(timeout=60)
        assert not job.is_alive() and outcome and getattr(outcome[0], "status", None) == "done"
        assert [len(requests_of(s)) for s in trio] == [0, 1, 0]


def test_failed_piece_is_retried_alone_on_another_server(tmp_media_dir: Path) -> None:
    bursts = [(1000 + 6000 * i, 1200) for i in range(6)]  # a pause every 6 s
    media = make_media(tmp_media_dir / "long.mka", bursts=bursts, duration_ms=37_000)
    with servers(3) as (a, b, c):
        a.fault = "garbage"
        cfg = settings([a.url, b.url, c.url], split_minutes=0.2)  # 12 s pieces
        result = generate_subtitles(media, cfg)
        pieces = read_sidecar(sidecar_path_for(media)).audio["pieces"]
        assert len(pieces) >= 3 and all(p["server"] != a.url for p in pieces)
        garbage = len(a.files)
        assert garbage >= 1  # the bad server got a piece (and answered garbage) ...
        assert len(b.files) + len(c.files) == len(pieces)  # ... that piece alone was sent again elsewhere
        starts = sorted(c_.start_ms for c_ in result.cues)
        assert len(starts) == len(bursts)
        assert all(abs(s - b_[0]) <= 100 for s, b_ in zip(starts, bursts, strict=True))


# --- split and merge --------------------------------------------------------------------------------------------
def test_split_file_matches_one_reply_cue_for_cue(tmp_media_dir: Path) -> None:
    # speech every 4.5 s, and bursts long enough (2.4 s) to carry a comma mid-way
    bursts = [(700 + 4500 * i, 2400 if i % 3 == 0 else 900) for i in range(10)]
    media = make_media(tmp_media_dir / "talk.mka", bursts=bursts, duration_ms=46_000)
    with servers(4) as four:
        urls = [s.url for s in four]
        split = generate_subtitles(media, settings(urls, split_minutes=0.2, hotwords={"达摩院": 20}))
        sidecar = read_sidecar(sidecar_path_for(media))
        pieces = sidecar.audio["pieces"]
        assert len(pieces) >= 3 and len({p["server"] for p in pieces}) >= 2
        for p in pieces[1:]:  # every cut lies in a pause, never inside a burst
            assert not any(s < p["offset_ms"] < s + d for s, d in bursts), p
        requests = [r for s in four for r in s.requests]
        assert len(requests) == len(pieces) and all(json.loads(r["hotwords"]) == {"达摩院": 20} for r in requests)
        assert sidecar.reply["mode"] == "offline" and isinstance(sidecar.reply["timestamp"], str)
        whole = generate_subtitles(media, settings(urls[:1], split_minutes=0, overwrite=True))
    assert [(c.start_ms, c.end_ms) for c in split.cues] == [(c.start_ms, c.end_ms) for c in whole.cues]
    starts = [c.start_ms for c in split.cues]
    for start, _ in bursts:
        assert any(abs(s - start) <= 100 for s in starts), (start, starts)


# --- answers that cannot change ---------------------------------------------------------------------------------
class _NotFound(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def http_404() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_no_server_answers_is_one_line_before_the_batch(tmp_media_dir: Path, http_404: str) -> None:
    for i in range(3):
        make_media(tmp_media_dir / f"f{i}.mka", bursts=BURSTS, duration_ms=5000)
    with FunasrTestServer() as gone:
        closed = gone.url
    done = cli("transcribe", "--server", http_404, "--server", closed, str(tmp_media_dir))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HTTP 404" in errors[0] and "connection refused" in errors[0], done.stderr
    assert "none of 3 file(s)" in errors[0] and "retrying" not in done.stderr and "Traceback" not in done.stderr


def test_unusable_servers_are_dropped_and_the_batch_stops_when_none_is_left(tmp_media_dir: Path, http_404: str) -> None:
    for i in range(3):
        make_media(tmp_media_dir / f"f{i}.mka", bursts=BURSTS, duration_ms=5000)
    with FunasrTestServer(timestamps=False) as no_ts, FunasrTestServer() as good:
        mixed = cli("transcribe", "--server", http_404, "--server", no_ts.url, "--server", good.url, str(tmp_media_dir))
        assert mixed.returncode == 0, mixed.stderr
        assert len(no_ts.files) == 1  # asked once, found without the timestamp model, never again
        assert len(good.files) == 3 and mixed.stderr.count("done:") == 3
        # (from PCM its text would be timed by speech activity: with --send mp4 it cannot be used at all)
        only_bad = cli(
            "transcribe", "--overwrite", "-j", "1", "--send", "mp4", "--server", no_ts.url, str(tmp_media_dir)
        )
        assert only_bad.returncode == 1
        assert len(no_ts.files) == 2  # one more file tried; the other two never sent
        assert "no FunASR server can be used now" in only_bad.stderr and "2 file(s) not" in only_bad.stderr


def test_batch_stops_when_its_only_server_stops_answering(tmp_media_dir: Path) -> None:
    for i in range(3):
        make_media(tmp_media_dir / f"f{i}.mka", bursts=BURSTS, duration_ms=5000)
    with FunasrTestServer() as dropping:
        dropping.fault = "drop"  # accepts (the check before the batch passes), then drops every upload
        done = cli("transcribe", "-j", "1", "--retries", "1", "--retry-backoff", "0.05", "--server", dropping.url,
                   str(tmp_media_dir))  # fmt: skip
        uploads = [c for c in dropping.connections if c.frame_sizes]
    assert done.returncode == 1
    assert len(uploads) == 2  # the first file, tried twice; the others not sent at all
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "f0" in errors[0], done.stderr  # the file that failed, then why the batch stopped
    assert "no FunASR server can be used now" in errors[1] and "2 file(s) not transcribed" in errors[1]


# --- the watch queue --------------------------------------------------------------------------------------------
def test_watch_queue_keeps_going_while_one_server_is_down_and_status_shows_servers(tmp_path: Path) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    for i in range(3):
        make_media(root / f"ep{i}.mka", bursts=BURSTS, duration_ms=5000)
    with servers(2) as (down, up):
        down.fault = "refuse"
        cfg = Settings(servers=(down.url, up.url), retries=0, connect_timeout=2.0)
        daemon = WatchDaemon(options((root,), state, once=True, jobs=2), cfg)
        assert daemon.run() == 0
    assert sorted(p.name for p in root.glob("*.srt")) == ["ep0.zh.srt", "ep1.zh.srt", "ep2.zh.srt"]
    assert all(stat.outcome == "done" for stat in daemon.stats)  # the queue never waited
    with StateDB(state) as db:
        rows = {r.url: r for r in load_servers(db)}
    assert rows[down.url].state == "down" and "connection refused" in rows[down.url].last_error
    assert rows[up.url].state == "up" and rows[up.url].done == 3 and (rows[up.url].speed or 0) > 0
    shown = cli("status", "--state-dir", str(state))
    lines = [line for line in shown.stdout.splitlines() if line.startswith("  ws://")]
    assert (
        len(lines) == 2
        and any("down" in line for line in lines)
        and any("3 requests answered" in line for line in lines)
    )
    as_json = json.loads(cli("status", "--state-dir", str(state), "--json").stdout)
    assert {s["url"]: s["done"] for s in as_json["servers"]} == {down.url: 0, up.url: 3}


def test_watch_probes_a_down_server_until_it_answers_again(tmp_path: Path) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    make_media(root / "ep.mka", bursts=BURSTS, duration_ms=5000)
    with servers(2) as (flaky, steady):
        flaky.fault = "refuse"
        cfg = Settings(servers=(flaky.url, steady.url), retries=0, connect_timeout=2.0, retry_backoff=0.1)

        def row(url: str) -> str:
            with StateDB(state) as db:
                return next((r.state for r in load_servers(db) if r.url == url), "")

        with running(WatchDaemon(options((root,), state), cfg)):
            wait_for(lambda: (root / "ep.zh.srt").exists(), what="the subtitle")
            wait_for(lambda: row(flaky.url) == "down", what="the refused server marked down")
            flaky.fault = None  # it comes back while the queue is idle: a probe finds it
            wait_for(lambda: row(flaky.url) == "up", what="the server probed up again")
        assert flaky.requests == [] and len(steady.requests) == 1


def test_cancel_during_a_split_file_stops_every_piece_and_frees_the_slots(tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "long.mka", bursts=[(1000, 800), (20_000, 800)], duration_ms=30_000)
    with servers(2, slots=1) as pair:
        for s in pair:
            s.rtf = 5.0  # a piece of ~15 s would take 75 s: the job is surely mid-recognition when cancelled
        cfg = settings([s.url for s in pair], split_minutes=0.2)
        pool = Pool.from_settings(cfg)
        cancel = threading.Event()
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                generate_subtitles(media, cfg, cancel=cancel, pool=pool)
            except BaseException as exc:  # reported below
                outcome.append(exc)

        job = threading.Thread(target=run)
        job.start()
        assert all(s.wait_for_requests(1, timeout=30) for s in pair)  # both pieces are at a server
        cancel.set()
        job.join(timeout=10)
        assert not job.is_alive()
        assert outcome and type(outcome[0]).__name__ == "CancelledError"
        assert [s.busy for s in pool.status()] == [0, 0]
        assert sorted(p.name for p in tmp_media_dir.iterdir()) == ["long.mka"]

"""The watch daemon end to end: a real observer on real folders, real ffmpeg, the real FunASR test server."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from funasr_subs.watch.daemon import WatchDaemon
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.watch_support import SETTLE, files_under, job, jobs_in, options, running, server_settings, wait_for

FULL_PCM_BYTES = 4 * 16000 * 2  # 4 s of 16 kHz mono s16le


def _daemon(root: Path, state: Path, server: FunasrTestServer, **changes: object) -> WatchDaemon:
    return WatchDaemon(options((root,), state, **changes), server_settings(server.url))


def _dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    root, state, staging = tmp_path / "library", tmp_path / "state", tmp_path / "staging"
    root.mkdir()
    staging.mkdir()
    return root, state, staging


def test_slowly_copied_file_is_processed_once_and_only_when_complete(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    root, state, staging = _dirs(tmp_path)
    source = make_media(staging / "film.mkv", [(500, 800), (3000, 800)], 4000)
    data = source.read_bytes()
    pieces = 8
    with running(_daemon(root, state, funasr_server, settle=0.6)):
        target = root / "film.mkv"
        with open(target, "wb") as fh:  # a slow copy: gaps (0.2 s) shorter than settle, total (1.4 s) longer
            for i in range(pieces):
                fh.write(data[i * len(data) // pieces : (i + 1) * len(data) // pieces])
                fh.flush()
                if i < pieces - 1:
                    time.sleep(0.2)  # the writer's pace under test, not synchronisation
        complete = time.time()
        wait_for(lambda: (root / "film.zh.srt").exists(), what="the subtitle")
    record = job(state, target)
    assert record is not None and record.state == "done" and record.attempts == 1
    assert record.started_at is not None and record.started_at >= complete
    assert len(funasr_server.files) == 1
    received = funasr_server.files[0]
    assert abs(received.audio_bytes - FULL_PCM_BYTES) <= 3200  # the whole 4 s, not a prefix
    assert len(received.bursts) == 2  # the second burst is in the file's second half


def test_part_file_is_skipped_until_renamed_into_place(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state, staging = _dirs(tmp_path)
    make_media(root / "show.mkv.part", [(500, 800)], 2000, container="matroska")
    make_media(staging / "other.mkv", [(500, 800)], 2000)
    with running(_daemon(root, state, funasr_server)):
        shutil.move(staging / "other.mkv", root / "other.mkv")
        wait_for(lambda: (root / "other.zh.srt").exists(), what="the other file's subtitle")
        assert [r["wav_name"] for r in funasr_server.requests] == ["other"]  # the .part had the same time
        os.rename(root / "show.mkv.part", root / "show.mkv")
        wait_for(lambda: (root / "show.zh.srt").exists(), what="the renamed file's subtitle")
    assert sorted(r["wav_name"] for r in funasr_server.requests) == ["other", "show"]
    assert not (root / "show.mkv.zh.srt").exists()


def test_restart_processes_nothing_again_but_a_replaced_file_once(
    tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    root, state, _ = _dirs(tmp_path)
    (root / "season 1").mkdir()
    make_media(root / "season 1" / "e01.mp4", [(500, 800)], 2000)
    make_media(root / "e02.mkv", [(500, 800)], 2000)
    (root / "user.mkv").write_bytes((root / "e02.mkv").read_bytes())
    (root / "user.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nmine\n", encoding="utf-8")
    assert _daemon(root, state, funasr_server, once=True).run() == 0
    assert sorted(r["wav_name"] for r in funasr_server.requests) == ["e01", "e02"]  # user.mkv: not even sent
    assert (root / "user.zh.srt").read_text(encoding="utf-8").endswith("mine\n")  # the user's subtitle stays
    user = job(state, root / "user.mkv")
    assert user is not None and user.state == "done" and user.note  # skipped, with the reason kept

    assert _daemon(root, state, funasr_server, once=True).run() == 0  # restart: nothing to do
    assert len(funasr_server.requests) == 2

    make_media(root / "e02.mkv", [(200, 600), (1200, 600)], 2000)  # replaced: new size and mtime
    with running(_daemon(root, state, funasr_server)):  # a watching restart: backlog scan finds the change
        wait_for(lambda: len(funasr_server.files) == 3, what="the replaced file")
        wait_for(lambda: (j := job(state, root / "e02.mkv")) is not None and j.state == "done")
    assert [r["wav_name"] for r in funasr_server.requests[2:]] == ["e02"]
    assert "-->" in (root / "e02.zh.srt").read_text(encoding="utf-8")


def test_server_down_files_wait_with_backoff_then_are_done(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state, _ = _dirs(tmp_path)
    funasr_server.fault = "refuse"
    for name in ("a", "b", "c"):
        make_media(root / f"{name}.mkv", [(500, 800)], 2000)
    daemon = _daemon(root, state, funasr_server, backoff_base=0.1, backoff_cap=0.4)
    with running(daemon):
        wait_for(lambda: daemon.backoff.delay >= 0.4, what="the backoff to reach its cap")
        waiting = jobs_in(state, "queued") + jobs_in(state, "running")
        assert len(waiting) == 3 and not jobs_in(state, "failed")
        tries = sum(j.attempts for j in waiting)
        assert 3 <= tries <= 8  # one probe per wait (0.1, 0.2, 0.4 s; slack for a loaded CI), not all 3 files each time
        assert any(j.last_error and "127.0.0.1" in j.last_error for j in waiting)
        funasr_server.fault = None
        wait_for(lambda: len(jobs_in(state, "done")) == 3, what="all files done after the server came back")
    assert all((root / f"{n}.zh.srt").exists() for n in "abc")
    assert daemon.backoff.delay == 0


def test_corrupt_file_fails_once_and_others_are_done(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state, _ = _dirs(tmp_path)
    broken_file = make_corrupt_media(root / "broken.mp4", "header")
    old = time.time() - 3600  # written an hour ago: not a recording still in progress (those are tried again)
    os.utime(broken_file, (old, old))
    make_media(root / "good1.mkv", [(500, 800)], 2000)
    make_media(root / "good2.mp3", [(500, 800)], 2000)
    assert _daemon(root, state, funasr_server, once=True).run() == 1  # a failure this run
    broken = job(state, root / "broken.mp4")
    assert broken is not None and broken.state == "failed" and broken.attempts == 1
    assert broken.last_error and "broken.mp4" in broken.last_error
    assert {j.path.name for j in jobs_in(state, "done")} == {"good1.mkv", "good2.mp3"}
    requests = len(funasr_server.requests)

    assert _daemon(root, state, funasr_server, once=True).run() == 0  # not retried while unchanged
    assert len(funasr_server.requests) == requests
    again = job(state, root / "broken.mp4")
    assert again is not None and again.state == "failed" and again.attempts == 1
    outputs = [f"good{i}.{ext}" for i in (1, 2) for ext in ("zh.srt", "funasr.json")]
    assert files_under(root) == sorted(["broken.mp4", "good1.mkv", "good2.mp3", *outputs])


def test_polling_mode_picks_up_new_and_replaced_files(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state, staging = _dirs(tmp_path)
    daemon = _daemon(root, state, funasr_server, poll=0.2)
    with running(daemon):
        assert daemon.watcher is not None and daemon.watcher.mode == "polling"
        (root / "deep" / "er").mkdir(parents=True)
        make_media(staging / "x.webm", [(500, 800)], 2000)
        shutil.move(staging / "x.webm", root / "deep" / "er" / "x.webm")
        wait_for(lambda: (root / "deep" / "er" / "x.zh.srt").exists(), what="the polled file's subtitle")
        make_media(staging / "x.webm", [(200, 600), (1200, 600)], 2000)  # a new version replaces it
        os.replace(staging / "x.webm", root / "deep" / "er" / "x.webm")
        wait_for(lambda: len(funasr_server.files) == 2, what="the replaced file processed again")
        wait_for(lambda: (j := job(state, root / "deep" / "er" / "x.webm")) is not None and j.state == "done")
    assert [r["wav_name"] for r in funasr_server.requests] == ["x", "x"]
    assert len(funasr_server.files[1].bursts) == 2  # the new content was sent


def test_200_files_dropped_at_once_are_each_done_exactly_once(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state, staging = _dirs(tmp_path)
    source = make_media(tmp_path / "tiny.m4a", [(200, 500)], 1000, video=False)
    batch = staging / "batch"
    batch.mkdir()
    for i in range(100):
        shutil.copyfile(source, staging / f"single {i:03d}.m4a")
        shutil.copyfile(source, batch / f"in folder {i:03d}.m4a")
    with running(_daemon(root, state, funasr_server, jobs=4)):
        for i in range(100):  # 100 files renamed in one by one, and a whole folder of 100 moved in
            os.rename(staging / f"single {i:03d}.m4a", root / f"single {i:03d}.m4a")
        os.rename(batch, root / "batch")
        wait_for(lambda: len(jobs_in(state, "done")) == 200, timeout=120, what="200 files done")
    names = [r["wav_name"] for r in funasr_server.requests]
    assert len(names) == 200 and len(set(names)) == 200
    done = jobs_in(state, "done")
    assert all(j.attempts == 1 and j.outputs for j in done)
    assert len(list(root.rglob("*.zh.srt"))) == 200


def test_once_processes_backlog_and_exits(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state, _ = _dirs(tmp_path)
    make_media(root / "a.mkv", [(500, 800)], 2000)
    started = time.monotonic()
    daemon = _daemon(root, state, funasr_server, once=True)
    assert daemon.run() == 0
    assert time.monotonic() - started >= SETTLE  # the backlog is settled too (a download may be running)
    assert daemon.watcher is None  # --once does not watch
    assert files_under(root) == ["a.funasr.json", "a.mkv", "a.zh.srt"]

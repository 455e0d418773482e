"""I/O robustness: codecs and containers met in real libraries, malformed settings and replies, output collisions,
stalled servers, file permissions. Real ffmpeg, the real test server, real files."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from funasr_subs.config import Settings
from funasr_subs.errors import CancelledError, ConfigError, ServerTimeoutError
from funasr_subs.pipeline import generate_subtitles, is_up_to_date, recognise_file
from funasr_subs.watch.daemon import WatchDaemon
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.watch_support import jobs_in, options, running, server_settings, wait_for

BURSTS = [(1000, 900), (3500, 1200)]


def fast(server: FunasrTestServer, **changes: object) -> Settings:
    return Settings(server=server.url, retries=0, connect_timeout=3, reply_timeout=10).replace(**changes)


def near(starts: list[int], wanted: list[int], tolerance: int = 100) -> bool:
    return all(min(abs(s - w) for s in starts) <= tolerance for w in wanted)


@pytest.mark.parametrize(
    ("name", "codec", "delay"),
    [
        ("broadcast.ts", None, 0),  # ADTS AAC, container start 1.4 s
        ("late.ts", None, 1500),  # ADTS AAC starting 1.5 s after the video
        ("song.aac", None, 0),  # raw ADTS
        ("film.mkv", "ac3", 0),
        ("film.mkv", "eac3", 0),
        ("film.mkv", "flac", 0),
    ],
)
def test_send_mp4_copies_common_codecs(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, name: str, codec: str | None, delay: int
) -> None:
    media = make_media(tmp_media_dir / name, bursts=BURSTS, duration_ms=7000, codec=codec, audio_delay_ms=delay)
    result = generate_subtitles(media, fast(funasr_server, send="mp4"))
    assert result.status == "done"
    assert funasr_server.requests[0]["wav_format"] == "mp4"
    assert near([c.start_ms for c in result.cues], [start + delay for start, _ in BURSTS])


def _upload_in_thread(
    server: FunasrTestServer, raw: Path, cancel: threading.Event, **changes: object
) -> tuple[threading.Thread, list[BaseException | None]]:
    outcome: list[BaseException | None] = []

    def upload() -> None:
        try:
            recognise_file(raw, fast(server, **changes), raw_pcm=True, cancel=cancel)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=upload, daemon=True)
    worker.start()
    return worker, outcome


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_a_server_that_stops_reading_mid_upload_cannot_hang_the_job(
    funasr_server: FunasrTestServer, tmp_path: Path, how: str
) -> None:
    raw = tmp_path / "long.pcm"
    raw.write_bytes(bytes(32_000_000))  # 1000 s of silence: far more than the socket buffers hold
    funasr_server.fault = "stall"
    cancel = threading.Event()
    worker, outcome = _upload_in_thread(funasr_server, raw, cancel, reply_timeout=1 if how == "timeout" else 600)
    if how == "cancel":
        assert funasr_server.wait_for_bytes(funasr_server.drop_after_bytes)
        cancel.set()
    worker.join(15)
    stuck = worker.is_alive()
    cancel.set()  # unblocks a client without a send timeout, so the failure below is reported, not hung
    worker.join(10)
    assert not stuck, "the job hung on a server that stopped reading"
    if how == "timeout":
        assert isinstance(outcome[0], ServerTimeoutError) and "stopped reading" in str(outcome[0]), outcome
    else:
        assert isinstance(outcome[0], CancelledError), outcome


@pytest.mark.parametrize("url", ["ws://127.0.0.1:99999", "ws://127.0.0.1:port", "ws://[::1", "wss://"])
def test_an_unusable_server_url_is_one_config_line_not_a_traceback(
    tmp_media_dir: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=2000)
    with pytest.raises(ConfigError, match="server URL"):
        Settings(server=url)
    code = main(["transcribe", "--server", url, "--retries", "0", str(media)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "server URL" in err, err
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == ["a.mkv"]


def test_files_that_would_write_the_same_subtitle_are_not_both_processed(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for season in ("S01", "S02"):
        (tmp_media_dir / season).mkdir()
    first = make_media(tmp_media_dir / "S01" / "ep01.mkv", bursts=BURSTS[:1], duration_ms=3000)
    second = make_media(tmp_media_dir / "S02" / "ep01.mkv", bursts=BURSTS, duration_ms=6000)
    out = tmp_path / "subs"
    out.mkdir()
    code = main(["transcribe", "--server", funasr_server.url, "-j", "2", "--output-dir", str(out), str(tmp_media_dir)])
    assert code == 1
    err = capsys.readouterr().err
    clash = [line for line in err.splitlines() if line.startswith(f"error: {second}:")]
    assert clash and str(first) in clash[0], err
    assert len(funasr_server.requests) == 1
    assert len(pysubs2.load(str(out / "ep01.zh.srt"))) == 1  # the first file's subtitle, not replaced


def test_a_file_named_twice_is_transcribed_once(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    code = main(["transcribe", "--server", funasr_server.url, "-j", "2", str(tmp_media_dir), str(media)])
    assert code == 0 and len(funasr_server.requests) == 1


@pytest.mark.parametrize("problem", ["tls-mismatch", "not-funasr"])  # (a server without times is used now)
def test_watch_waits_on_a_server_problem_instead_of_failing_every_file(
    funasr_server: FunasrTestServer, tmp_path: Path, problem: str
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    for name in ("a", "b", "c"):
        make_media(root / f"{name}.mkv", [(500, 800)], 2000)
    url = funasr_server.url
    if problem == "tls-mismatch":
        url = url.replace("ws://", "wss://")
    else:
        funasr_server.fault = "garbage"
    daemon = WatchDaemon(options((root,), state, once=True, jobs=1), server_settings(url))
    assert daemon.run() == 1  # --once: the files stay queued for the next run
    assert not jobs_in(state, "failed")  # nothing is wrong with the files: they wait for a fixed server
    assert len(jobs_in(state, "queued")) == 3
    assert len(funasr_server.requests) <= 1  # one file found the problem; the others were not sent


def test_written_files_follow_the_umask_and_keep_a_replaced_files_mode(
    funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    old = os.umask(0o027)  # a private library: no access for others
    try:
        result = generate_subtitles(media, fast(funasr_server))
    finally:
        os.umask(old)
    srt, sidecar = result.written[0], result.sidecar
    assert sidecar is not None
    assert stat.S_IMODE(srt.stat().st_mode) == 0o640 and stat.S_IMODE(sidecar.stat().st_mode) == 0o640
    srt.chmod(0o664)  # the user shares the subtitle with a group
    redone = generate_subtitles(media, fast(funasr_server, overwrite=True))
    assert redone.status == "done" and stat.S_IMODE(srt.stat().st_mode) == 0o664


@pytest.mark.parametrize(
    "content",
    [
        {"reply": {}, "media": {"name": "a.mkv", "size": "big"}},
        {"reply": {}, "media": ["a.mkv"]},
        {"reply": {}, "audio": {"offset_ms": "late"}},
        {"reply": {}, "outputs": ["a.zh.srt"]},
    ],
)
def test_a_damaged_sidecar_is_not_ours_rather_than_a_crash(
    funasr_server: FunasrTestServer, tmp_path: Path, content: dict[str, object]
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    media = make_media(root / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    (root / "a.funasr.json").write_text(json.dumps(content), encoding="utf-8")
    assert WatchDaemon(options((root,), state, once=True), server_settings(funasr_server.url)).run() == 0
    assert (root / "a.zh.srt").exists() and len(funasr_server.requests) == 1
    assert is_up_to_date(media, fast(funasr_server))


def test_reply_timeout_zero_leaves_only_the_duration_part(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    result = generate_subtitles(media, fast(funasr_server, reply_timeout=0, reply_timeout_ratio=2.0))
    assert result.status == "done"


def test_watch_resumes_by_itself_once_the_server_is_fixed(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    for name in ("a", "b"):
        make_media(root / f"{name}.mkv", [(500, 800)], 2000)
    funasr_server.fault = "garbage"  # something else answers on its port for now
    daemon = WatchDaemon(options((root,), state, backoff_base=0.1, backoff_cap=0.2), server_settings(funasr_server.url))
    with running(daemon):
        wait_for(lambda: daemon.backoff.delay > 0, what="the queue to wait for the server")
        assert not jobs_in(state, "failed")
        funasr_server.fault = None  # the admin starts the FunASR server there
        wait_for(lambda: len(jobs_in(state, "done")) == 2, what="both files done")
    assert (root / "a.zh.srt").exists() and (root / "b.zh.srt").exists()


def test_a_dangling_symlink_where_the_subtitle_goes_is_the_users(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, tmp_path: Path
) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    link = tmp_media_dir / "a.zh.srt"
    link.symlink_to(tmp_path / "unmounted" / "a.srt")  # the user's subtitle on a drive that is not mounted now
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped" and "--overwrite" in result.reason
    assert link.is_symlink() and funasr_server.requests == []

"""Media from outside is opened only as the single media file it is: an HLS playlist, an ffconcat script, a playlist
naming a FIFO or an image-sequence pattern never makes us read (and send to FunASR) another file of the host — through
the HTTP uploads, a webhook-queued file, and the command line (issue 19, "Broke" 1)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_subs.config import Settings
from funasr_subs.service import ServiceConfig, ServiceHandle
from funasr_subs.service.pathmap import PathMap
from funasr_subs.watch.daemon import WatchDaemon
from funasr_subs.watch.state import StateDB
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.servicekit import multipart, request, service
from tests.test_service_cli import COMMAND, clean_env
from tests.watch_support import options, server_settings

TOKEN = "references-test-token-0123456789"
AUTH = {"X-Api-Key": TOKEN}
SECRET_BURSTS = [(300, 700), (1500, 700), (2700, 700)]
#: Every answer comes well within this; on the old code the FIFO held the request for ffmpeg's 120 s stall limit.
QUICK = 20.0


def make_secret(folder: Path, name: str = "secret.ts") -> Path:
    """A real media file (MPEG-TS whatever its name) whose speech must never reach FunASR."""
    folder.mkdir(parents=True, exist_ok=True)
    return make_media(folder / name, SECRET_BURSTS, 3500, container="mpegts")


def png(folder: Path) -> bytes:
    """A real one-frame PNG (ffmpeg reads it as an image, which has no place among media containers)."""
    out = folder / "frame.png"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "color=s=16x16", "-frames:v", "1", str(out)],
        check=True,
        timeout=30,
    )
    return out.read_bytes()


def hls(target: Path) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:5,\n{target}\n#EXT-X-ENDLIST\n".encode()


def ffconcat(relative: str) -> bytes:
    return f"ffconcat version 1.0\nfile '{relative}'\n".encode()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    return make_secret(tmp_path / "private")


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


@pytest.fixture
def svc(funasr_server: FunasrTestServer, spool: Path) -> Iterator[ServiceHandle]:
    config = ServiceConfig(
        settings=Settings(server=funasr_server.url), port=0, upload_dir=spool, max_upload_mb=1, token=TOKEN
    )
    with service(config) as handle:
        yield handle


def _upload(svc: ServiceHandle, endpoint: str, name: str, data: bytes) -> tuple[int, str, float]:
    field, path = ("audio_file", "/asr?encode=true&output=srt") if endpoint == "asr" else ("file", endpoint)
    body, ctype = multipart([(field, name, "application/octet-stream", data)])
    started = time.monotonic()
    answer = request(svc, "POST", path, body, {"Content-Type": ctype, **AUTH}, timeout=QUICK + 10)
    return answer.status, answer.body.decode("utf-8", "replace"), time.monotonic() - started


@pytest.mark.parametrize("endpoint", ["asr", "/v1/audio/transcriptions"])
@pytest.mark.parametrize("kind", ["hls", "hls-named-mkv", "hls-fifo", "ffconcat", "image-pattern"])
def test_an_upload_naming_other_files_is_refused_and_nothing_reaches_funasr(
    svc: ServiceHandle, funasr_server: FunasrTestServer, spool: Path, secret: Path, kind: str, endpoint: str
) -> None:
    if kind == "hls":
        name, data = "list.m3u8", hls(secret)
    elif kind == "hls-named-mkv":
        name, data = "episode.mkv", hls(secret)  # ffmpeg goes by the content, not the name
    elif kind == "hls-fifo":
        fifo = secret.parent / "stuck.ts"
        os.mkfifo(fifo)
        name, data = "list.m3u8", hls(fifo)
    elif kind == "ffconcat":
        # a concat script reads files relative to itself: below the upload folder
        below = make_secret(spool / "below")
        name, data = "list.mkv", ffconcat(f"below/{below.name}")
    else:
        name, data = "frame%03d.png", png(secret.parent)  # a pattern in the client's name, an image inside
    status, text, took = _upload(svc, endpoint, name, data)
    assert 400 <= status < 500, (status, text)
    assert "refused" in text and "single media file" in text, text
    assert took < QUICK, f"answered after {took:.1f} s"
    assert funasr_server.files == [], "the secret's audio was sent to FunASR"
    assert "secret" not in text and str(secret.parent) not in text
    assert {p.name for p in spool.iterdir()} <= {"below"}, "the spool file is removed"


def test_a_webhook_queued_playlist_or_concat_script_in_a_root_is_refused_by_the_daemon(
    funasr_server: FunasrTestServer, tmp_path: Path, secret: Path
) -> None:
    """A file inside the library whose content is a playlist pointing outside every root (or a concat script): the
    webhook queues it (its name is an .mkv), and the daemon that runs it refuses it in one line, sending nothing."""
    root = tmp_path / "library"
    season = root / "Show" / "Season 01"
    season.mkdir(parents=True)
    make_secret(season / "extras", "secret.dat")  # below the script, under a name no scan takes
    (season / "E01.mkv").write_bytes(hls(secret))
    (season / "E02.mkv").write_bytes(ffconcat("extras/secret.dat"))
    state = tmp_path / "state"
    config = ServiceConfig(
        port=0, roots=(root,), path_map=PathMap.parse([]), state_dir=state, token=TOKEN, upload_dir=tmp_path
    )
    with StateDB(state) as db:
        with service(config, db) as svc:
            for name in ("E01.mkv", "E02.mkv"):
                body, ctype = multipart([("data", None, None, _emby(season / name))])
                answer = request(svc, "POST", "/webhook/emby", body, {"Content-Type": ctype, **AUTH})
                assert answer.status == 202, answer.body
        daemon = WatchDaemon(
            options((root,), state, once=True, jobs=1, settle=0, young=0), server_settings(funasr_server.url)
        )
        daemon.run()
        failed = {job.path.name: job.last_error or "" for job in db.jobs("failed")}
    assert set(failed) == {"E01.mkv", "E02.mkv"}, failed
    assert "'hls'" in failed["E01.mkv"] and "'concat'" in failed["E02.mkv"], failed
    assert funasr_server.files == []
    assert not list(season.glob("*.srt"))


def _emby(path: Path) -> bytes:
    item = {"Name": "x", "Id": "1", "Path": str(path), "Type": "Episode", "MediaType": "Video"}
    return json.dumps({"Event": "library.new", "Item": item}).encode()


#: Real media of each common kind, transcribed in the same run: the allow-list lets them through (by ffmpeg's own
#: report and by ffprobe alike).
REAL = ["a.mkv", "b.mp4", "c.wav", "d.mp3", "e.flac", "f.ogg", "g.ts", "h.avi", "i.m4a", "j.webm"]


@pytest.mark.parametrize("send", ["pcm", "mp4"])
def test_transcribe_refuses_playlists_concat_scripts_and_image_patterns_in_one_line_and_does_the_rest(
    funasr_server: FunasrTestServer, tmp_path: Path, secret: Path, send: str
) -> None:
    folder = tmp_path / "given"
    folder.mkdir()
    make_secret(folder / "near")
    files = {
        "list.m3u8": hls(secret),
        "playlist.ts": hls(secret),  # an MPEG-TS name: ffprobe's path
        "concat.mkv": ffconcat("near/secret.ts"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    for i in range(1, 4):
        (folder / f"shot{i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    pattern = folder / "shot%03d.png"
    pattern.write_bytes(b"\x89PNG\r\n\x1a\n")
    refused = [*files, pattern.name]
    for name in REAL:
        make_media(folder / name, [(300, 600)], 1500, container="mpegts" if name.endswith(".ts") else None)
    done = subprocess.run(
        [
            *COMMAND,
            "transcribe",
            "--server",
            funasr_server.url,
            "--send",
            send,
            *(str(folder / n) for n in refused + REAL),
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(refused), done.stderr
    assert all("refused" in line and "single media file" in line for line in errors), done.stderr
    assert "Traceback" not in done.stderr
    assert len(funasr_server.files) == len(REAL), "only the real files' audio was sent"
    assert sorted(p.name for p in folder.glob("*.srt")) == sorted(n.rsplit(".", 1)[0] + ".zh.srt" for n in REAL)

"""Today's new ways in, attacked from outside (the "attack" session): funasr-server answering in pieces, with a
redirect, with an error in a 200, with far more text than the audio holds; SIGTERM during a media-only sync. Real
espeak-ng speech, the real stand-ins, the real CLI (in-process and installed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from funasr_subs.cli import main
from tests.faults import assert_interrupted, clean_env, command, descendants, finish, popen_cli, reaped
from tests.other_servers import FunasrHttpServer
from tests.speech import ZH_SENTENCES, build_speech, espeak_available, write_speech
from tests.watch_support import wait_for


@pytest.fixture
def film(tmp_media_dir: Path) -> Path:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    return write_speech(tmp_media_dir / "talk.mkv", build_speech(ZH_SENTENCES[:4], pauses_ms=(700, 900)))


def _failed(capsys: pytest.CaptureFixture[str], http_api: FunasrHttpServer, film: Path) -> str:
    """The one error line of a transcription of ``film`` by ``http_api`` that must fail, nothing written."""
    code = main(["transcribe", "--retries", "0", "--server", http_api.url, str(film)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in film.parent.iterdir()) == [film.name]  # nothing half-written
    return errors[0]


def test_answers_that_arrive_in_pieces_are_read_whole(film: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """aiohttp's ``read(n)`` returns what has arrived: /health in 7-byte pieces was 'neither funasr-server nor a
    FunASR websocket server', a transcription's answer 'not JSON' (a proxy, chunked answers, a slow link)."""
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        http_api.drip = 7
        code = main(["transcribe", "--retries", "0", "--server", http_api.url, str(film)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert http_api.transcriptions and "-->" in film.with_name("talk.zh.srt").read_text(encoding="utf-8")


def test_far_more_text_than_the_audio_holds_is_refused_at_once(film: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Text without times is spread over the speech: 10 MB of it for a few seconds was 280,000 cues and minutes of
    work, exit 0. It is held to what speech can hold, as timed replies are."""
    body = json.dumps({"text": "你" * 3_000_000, "language": "zh", "segments": []}, ensure_ascii=False).encode()
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        http_api.answer = (200, {"Content-Type": "application/json"}, body)
        began = time.monotonic()
        error = _failed(capsys, http_api, film)
    assert "3000000 words for" in error and "more than speech holds" in error, error
    assert time.monotonic() - began < 20


def test_a_redirect_is_named_with_where_it_leads(film: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        http_api.answer = (307, {"Location": "https://elsewhere.example/v1/audio/transcriptions"}, b"")
        error = _failed(capsys, http_api, film)
    assert "HTTP 307, a redirect to 'https://elsewhere.example/v1/audio/transcriptions'" in error, error


def test_an_error_in_a_200_answer_names_the_server_and_what_it_said(
    film: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        http_api.answer = (200, {"Content-Type": "application/json"}, b'{"detail": "CUDA out of memory"}')
        error = _failed(capsys, http_api, film)
    assert http_api.url in error and "'CUDA out of memory'" in error, error


@pytest.mark.parametrize(
    ("sig", "sigint_ignored"), [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)]
)
def test_a_signal_during_a_media_only_sync_is_exit_130_and_stops_ffmpeg(
    tmp_path: Path, sig: signal.Signals, sigint_ignored: bool
) -> None:
    """``sync --method pattern`` on media alone decodes it with ffmpeg: SIGTERM killed the process by the signal
    (exit -15) and left ffmpeg decoding; it is Ctrl-C's exit 130 now, ffmpeg stopped, nothing written. Also in a
    background job of a script, which inherits SIGINT ignored: SIGTERM was passed on as a SIGINT, and did nothing."""
    media = tmp_path / "silence.flac"  # an hour: ffmpeg is still decoding when the signal comes
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3600", "-c:a",
         "flac", str(media)], check=True, capture_output=True,
    )  # fmt: skip
    subtitle = tmp_path / "film.srt"
    subtitle.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello.\n", encoding="utf-8")
    argv = ["sync", "--method", "pattern", str(subtitle), str(media), "-o", str(tmp_path / "out.srt")]
    if sigint_ignored:
        proc = subprocess.Popen(
            [*command(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(tmp_path),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip
    else:
        proc = popen_cli(*argv, env=clean_env(tmp_path))
    with reaped(proc):
        wait_for(lambda: proc.poll() is not None or "ffmpeg" in map(_named, descendants(proc.pid)), 30, "ffmpeg")
        assert proc.poll() is None, "it ended before ffmpeg was seen"
        os.kill(proc.pid, signal.SIGSTOP)  # (held still, its ffmpeg blocks on the full pipe: it cannot finish first)
        children = descendants(proc.pid)
        proc.send_signal(sig)
        os.kill(proc.pid, signal.SIGCONT)
        err = finish(proc, 30)
    assert_interrupted(proc, err)
    left = {pid: Path(f"/proc/{pid}/stat").read_text() for pid in children if Path(f"/proc/{pid}").exists()}
    assert not left, left
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".srt") == ["film.srt"]


def _named(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def test_a_pool_whose_websocket_server_is_down_sends_the_speech_segments_to_funasr_server(
    film: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whole files go only to websocket servers: with the one in the pool down, the file failed ('no FunASR server
    at ws://…') although funasr-server was up beside it. Its speech segments go to funasr-server now."""
    with socket.socket() as closed, FunasrHttpServer(models=("sensevoice",)) as http_api:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
        down = f"ws://127.0.0.1:{closed.getsockname()[1]}"
        code = main(["transcribe", "--retries", "0", "--server", down, "--server", http_api.url, str(film)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert http_api.transcriptions and "-->" in film.with_name("talk.zh.srt").read_text(encoding="utf-8")

"""Which server answered: a FunASR server that is not the offline one, or no FunASR at all, is named in one line
(exit 2, in under a second, nothing sent, nothing written); the 2pass server keeps working and is named."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.other_servers import FunasrHttpServer, RealtimeServer, TwoPassServer
from tests.servicekit import StandIn

BURSTS = [(1000, 800), (3000, 1500)]


def transcribe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], float]:
    """The CLI in this process: (exit code, its error lines, seconds taken)."""
    began = time.monotonic()
    code = main(["transcribe", "--retries", "0", *args])
    seconds = time.monotonic() - began
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.splitlines() if "error" in line], seconds


def refused_in_one_line(media: Path, code: int, errors: list[str], seconds: float, *words: str) -> None:
    assert code == 2, errors
    assert len(errors) == 1, errors
    assert all(word in errors[0] for word in words), errors[0]
    assert seconds < 1.0, seconds
    assert sorted(p.name for p in media.parent.iterdir()) == [media.name]  # nothing written


@pytest.fixture
def media(tmp_media_dir: Path) -> Path:
    return make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=5000)


def test_funasr_realtime_server_is_named(media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RealtimeServer() as realtime:
        code, errors, seconds = transcribe(capsys, "--server", realtime.url, str(media))
    refused_in_one_line(media, code, errors, seconds, "funasr-realtime-server", "funasr-wss-server", realtime.url)
    assert realtime.sent == ['{"event": "stopped"}']  # it answered the probe, and was sent no audio
    assert not any(isinstance(m, bytes) for conn in realtime.messages for m in conn)


def test_funasr_server_on_a_websocket_url_is_named_with_the_url_to_use(
    media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        url = "ws://" + http_api.url.split("://", 1)[1]
        code, errors, seconds = transcribe(capsys, "--server", url, str(media))
    refused_in_one_line(
        media, code, errors, seconds, "funasr-server's HTTP API", "sensevoice", f"--server {http_api.url}"
    )
    assert ("GET", "/health") in http_api.requests and http_api.transcriptions == []


def test_an_http_url_to_the_websocket_server_says_use_ws(
    funasr_server: FunasrTestServer, media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{funasr_server.port}"
    code, errors, seconds = transcribe(capsys, "--server", url, str(media))
    refused_in_one_line(
        media, code, errors, seconds, "C++ websocket server", f"--server ws://127.0.0.1:{funasr_server.port}"
    )
    assert funasr_server.requests == []


def test_the_2pass_server_works_with_pcm_and_is_named(media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with TwoPassServer() as two_pass:
        code = main(["transcribe", "--server", two_pass.url, "--send", "pcm", str(media)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("FunASR's 2pass server") == 1, err
    cues = pysubs2.load(str(media.with_name("a.zh.srt")))
    assert [abs(c.start - start) <= 100 for c, (start, _) in zip(cues, BURSTS, strict=True)] == [True, True]


def test_the_2pass_server_given_a_container_is_named(media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with TwoPassServer() as two_pass:
        code, errors, seconds = transcribe(capsys, "--server", two_pass.url, "--send", "mp4", str(media))
    refused_in_one_line(media, code, errors, seconds, "2pass server", "--send pcm", "funasr-wss-server")


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def tcp_echo() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_tcp_echo_service_is_not_funasr(tcp_echo: str, media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, errors, seconds = transcribe(capsys, "--server", tcp_echo, str(media))
    refused_in_one_line(media, code, errors, seconds, "not HTTP", "not FunASR")
    assert "TLS" not in errors[0]


def test_a_web_server_answering_404_is_not_funasr(media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with StandIn({}) as web:  # 404 to everything, /health included
        url = "ws://" + web.url.split("://", 1)[1]
        code, errors, seconds = transcribe(capsys, "--server", url, str(media))
    refused_in_one_line(media, code, errors, seconds, "HTTP 404", "not FunASR")
    assert [seen.path for seen in web.seen] == ["/", "/health"]


def test_a_silent_python_server_of_the_offline_protocol_is_still_used(
    media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """FunASR's Python websocket server is not websocketpp: it is asked ``STOP``, says nothing, and is used."""
    with FunasrTestServer(server_header="Python/3.11 websockets/13.1") as python_server:
        code = main(["transcribe", "--server", python_server.url, str(media)])
        assert code == 0, capsys.readouterr().err
        assert python_server.messages[0] == "STOP" and len(python_server.files) == 1  # the probe, then the file
    assert len(pysubs2.load(str(media.with_name("a.zh.srt")))) == 2


# --- the daemon and the service name the server before its first job ---------------------------------------------
def test_watch_names_a_realtime_server_before_sending_it_audio(tmp_path: Path) -> None:
    """Before, ``watch`` sent the file to funasr-realtime-server (which takes it and never answers) and waited for a
    reply until stopped; now the first job probes the server, says what it is in one line, and keeps the file
    queued."""
    import subprocess
    import sys

    lib = tmp_path / "lib"
    lib.mkdir()
    make_media(lib / "a.m4a", bursts=BURSTS, duration_ms=5000)
    argv = ["watch", "--once", "--settle", "0", "--state-dir", str(tmp_path / "state"), str(lib)]
    with RealtimeServer() as realtime:
        done = subprocess.run(
            [sys.executable, "-m", "funasr_subs", *argv, "--server", realtime.url],
            capture_output=True,
            text=True,
            timeout=60,  # the old behaviour: no end until the reply timeout, long after this
        )
    assert done.returncode == 1, done.stderr
    named = [line for line in done.stderr.splitlines() if "funasr-realtime-server" in line]
    assert len(named) == 1 and "funasr-wss-server" in named[0], done.stderr
    assert not any(isinstance(m, bytes) for conn in realtime.messages for m in conn)  # no audio went there
    assert sorted(p.name for p in lib.iterdir()) == ["a.m4a"]


def test_serve_names_a_realtime_server_at_the_first_request(tmp_path: Path) -> None:
    import requests

    from funasr_subs.config import Settings
    from funasr_subs.service import ServiceConfig
    from tests.servicekit import service

    clip = make_media(tmp_path / "a.m4a", bursts=BURSTS, duration_ms=5000)
    with RealtimeServer() as realtime:
        config = ServiceConfig(settings=Settings(server=realtime.url, retries=0), port=0, upload_dir=tmp_path)
        with service(config) as svc:
            reply = requests.post(
                f"{svc.url}/v1/audio/transcriptions",
                data={"model": "whisper-1"},
                files={"file": (clip.name, clip.read_bytes(), "audio/mp4")},
                timeout=30,
            )
    assert reply.status_code >= 500, reply.text
    assert "funasr-realtime-server" in reply.json()["error"]["message"], reply.text
    assert not any(isinstance(m, bytes) for conn in realtime.messages for m in conn)

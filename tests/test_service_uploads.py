"""Uploads over real sockets: streamed intact to FunASR, spool files always removed, names both ways, the result
cache, a client that hangs up, SIGTERM mid-upload."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funasr_subs.config import Settings
from funasr_subs.service import ServiceConfig, ServiceHandle
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_media
from tests.servicekit import multipart, request, service
from tests.test_service_cli import COMMAND, clean_env


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


@pytest.fixture
def svc(funasr_server: FunasrTestServer, spool: Path) -> Iterator[ServiceHandle]:
    config = ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=spool, max_upload_mb=2)
    with service(config) as handle:
        yield handle


def read_replies(sock: socket.socket, n: int) -> list[tuple[int, bytes]]:
    """``n`` HTTP/1.1 responses (each with a Content-Length) read from a raw socket, in order."""
    data = b""
    out: list[tuple[int, bytes]] = []
    while len(out) < n:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection after {len(out)} replies"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
        while len(data) < length:
            data += sock.recv(65536)
        out.append((int(lines[0].split()[1]), data[:length]))
        data = data[length:]
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.binary(min_size=1, max_size=40_000),
    field_text=st.text(max_size=100),
    seed=st.integers(0, 2**16),
    trap=st.sampled_from([b"", b"\r\n--", b"\r\n--bound", b"--boundary"]),
)
def test_any_bytes_in_any_send_sizes_reach_funasr_intact(
    svc: ServiceHandle, funasr_server: FunasrTestServer, spool: Path, payload: bytes, field_text: str, seed: int,
    trap: bytes,
) -> None:  # fmt: skip
    boundary = "boundary" + os.urandom(4).hex()
    data = trap + payload + trap + os.urandom(8)  # unique audio: the result cache must not answer
    body, ctype = multipart(
        [("language", None, None, b"zh"), ("junk", "j", None, field_text.encode()), ("audio_file", "a", None, data)],
        boundary,
    )
    head = f"POST /asr?encode=false&output=json HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    wire = head.encode() + body + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"  # the next request right behind it
    rng = random.Random(seed)
    before = len(funasr_server.files)
    with socket.create_connection((svc.host, svc.port), timeout=30) as sock:
        at = 0
        while at < len(wire):
            step = rng.randint(1, 5000)
            sock.sendall(wire[at : at + step])
            at += step
        (status, reply), (health, _) = read_replies(sock, 2)
    assert status == 200, reply
    assert health == 200, "the body must be read exactly: the next request on the connection is intact"
    assert len(funasr_server.files) == before + 1
    assert funasr_server.files[-1].sha256 == hashlib.sha256(data).hexdigest()
    assert not list(spool.iterdir())


def test_form_errors_leave_no_spool_file(svc: ServiceHandle, spool: Path) -> None:
    big, ctype = multipart([("language", None, None, b"x" * (1024 * 1024 + 1)), ("audio_file", "a", None, b"12")])
    assert request(svc, "POST", "/asr?encode=false", big, {"Content-Type": ctype}).status == 413
    dup, ctype = multipart([("audio_file", "a", None, b"1" * 5000), ("audio_file", "b", None, b"2")])
    answer = request(svc, "POST", "/asr?encode=false", dup, {"Content-Type": ctype})
    assert answer.status == 400 and "more than one" in answer.json()["error"]
    cut, ctype = multipart([("audio_file", "a", None, b"x" * 100_000)])
    answer = request(svc, "POST", "/asr?encode=false", cut[:50_000], {"Content-Type": ctype})
    assert answer.status == 400 and "ended" in answer.json()["error"]
    assert not list(spool.iterdir())


def test_non_latin1_upload_name_comes_back_in_rfc5987_form(svc: ServiceHandle, tmp_path: Path) -> None:
    """A Chinese file name used to break the Content-Disposition header after the whole job ran (empty reply)."""
    pcm = decode_pcm(make_media(tmp_path / "a.wav", bursts=[(300, 600)], duration_ms=1500))
    name = "中文节目 第1集.m4a"
    boundary = os.urandom(8).hex()
    part = (  # as python-requests sends a non-ASCII name: UTF-8 inside the quotes
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio_file"; filename="{name}"\r\n\r\n'.encode()
        + pcm
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = request(
        svc, "POST", "/asr?encode=false&output=srt", part, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert answer.status == 200 and answer.body.strip(), answer.body
    disposition = answer.headers["content-disposition"]
    assert disposition.isascii()
    assert "filename*=UTF-8''" + urllib.parse.quote(name + ".srt", safe="") in disposition
    assert 'filename="' in disposition


def test_same_audio_again_is_answered_from_the_cache(
    svc: ServiceHandle, funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    pcm = decode_pcm(make_media(tmp_path / "a.wav", bursts=[(300, 600)], duration_ms=1500))
    body, ctype = multipart([("audio_file", "audio_file", None, pcm)])
    first = request(svc, "POST", "/asr?encode=false&output=srt", body, {"Content-Type": ctype})
    again = request(svc, "POST", "/asr?encode=false&output=vtt", body, {"Content-Type": ctype})
    assert first.status == 200 and again.status == 200 and again.body.startswith(b"WEBVTT")
    assert len(funasr_server.files) == 1, "Bazarr's retry of the same audio must not start from zero"
    other, ctype = multipart([("audio_file", "audio_file", None, pcm + bytes(3200))])
    assert request(svc, "POST", "/asr?encode=false", other, {"Content-Type": ctype}).status == 200
    assert len(funasr_server.files) == 2


def test_a_client_that_hangs_up_frees_its_slot(funasr_server: FunasrTestServer, spool: Path, tmp_path: Path) -> None:
    """Bazarr's read timeout ends the request: the job stops (its FunASR connection closes) and the one slot is
    free for the next request, instead of being held until the server's reply timeout."""
    funasr_server.fault = "hang"  # never answers
    settings = Settings(server=funasr_server.url, reply_timeout=600)
    pcm = decode_pcm(make_media(tmp_path / "a.wav", bursts=[(300, 600)], duration_ms=1500))
    with service(ServiceConfig(settings=settings, port=0, upload_dir=spool, asr_jobs=1)) as svc:
        body, ctype = multipart([("audio_file", "audio_file", None, pcm)])
        sock = socket.create_connection((svc.host, svc.port), timeout=30)
        head = f"POST /asr?encode=false HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}"
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        assert funasr_server.wait_until(lambda: any(f.audio_bytes == len(pcm) for f in funasr_server.files), 30)
        sock.close()  # Bazarr gives up
        assert funasr_server.wait_until(lambda: all(c.closed for c in funasr_server.connections), 30)
        funasr_server.fault = None
        other, ctype = multipart([("audio_file", "audio_file", None, pcm + bytes(3200))])
        answer = request(svc, "POST", "/asr?encode=false", other, {"Content-Type": ctype}, timeout=60)
    assert answer.status == 200
    assert not list(spool.iterdir())


def test_sigterm_during_an_upload_removes_the_spool_file(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    argv = [*COMMAND, "serve", "--port", "0", "--upload-dir", str(spool), "--state-dir", str(tmp_path / "state")]
    proc = subprocess.Popen(argv, env=clean_env(tmp_path), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    port = None
    for line in proc.stderr:
        if "listening on" in line:
            port = int(line.split("listening on http://127.0.0.1:")[1].split()[0])
            break
    assert port is not None
    boundary = "b0undary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="audio_file"; filename="a.pcm"\r\n\r\n'.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /asr?encode=false HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
            + head
            + bytes(4 * 1024 * 1024)  # 4 of the 100 MB announced, then silence
        )
        deadline = time.monotonic() + 30
        while not list(spool.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)  # polls a folder: there is no event for "the server created a file"
        assert list(spool.iterdir()), "the upload must be spooling"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    proc.stderr.close()
    assert code == 0
    assert not list(spool.iterdir()), "SIGTERM must not leave the half-received upload behind"


def test_missing_upload_dir_is_refused_at_start(tmp_path: Path) -> None:
    argv = [*COMMAND, "serve", "--port", "0", "--upload-dir", str(tmp_path / "nope")]
    argv += ["--state-dir", str(tmp_path / "state")]
    proc = subprocess.run(argv, env=clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"upload folder {tmp_path / 'nope'} does not exist" in proc.stderr


def test_keep_alive_responses_are_not_held_back(svc: ServiceHandle) -> None:
    """Nagle plus delayed ACK held every keep-alive response ~40 ms; TCP_NODELAY sends it at once."""
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=30)
    times = []
    for _ in range(15):
        started = time.perf_counter()
        conn.request("POST", "/webhook/jellyfin", body=json.dumps({"NotificationType": "Nope"}).encode())
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200
    conn.close()
    assert sorted(times)[len(times) // 2] < 0.03, times


def test_listen_backlog_takes_a_burst(svc: ServiceHandle) -> None:
    """``ss`` shows a listening socket's backlog as Send-Q: 5 made bursts of connections wait 1 s SYN retries."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{svc.port}"], capture_output=True, text=True, check=True).stdout
    backlog = int(out.split()[2])
    assert backlog >= 128, out


class _Statuses(logging.Handler):
    """The status of every request the service logs, for the test to wait on (one access line per request)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.lines.append(record.getMessage())
            self.changed.notify_all()

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        with self.changed:
            self.changed.wait_for(lambda: any(needle in line for line in self.lines), timeout)
            return next((line for line in self.lines if needle in line), "")


@pytest.mark.parametrize(
    ("path", "ctype", "body"),
    [
        (
            "/asr?encode=false",
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="audio_file"; filename="a"\r\n\r\n' + b"\0" * 60_000,
        ),
        (
            "/v1/audio/transcriptions",
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + b"\0" * 60_000,
        ),
        ("/webhook/jellyfin", "application/json", b'{"NotificationType": "ItemAdded", "ItemId": "' + b"a" * 60_000),
    ],
    ids=["asr", "openai", "jellyfin"],
)
def test_a_client_that_hangs_up_mid_body_is_499_not_a_fault_of_ours(
    svc: ServiceHandle, spool: Path, path: str, ctype: str, body: bytes
) -> None:
    """A body cut short by the client (Content-Length says more): 499 in the log, no spool file (was: 507 'cannot
    store the upload' for uploads, a 500 with a traceback for a webhook)."""
    statuses = _Statuses()
    gate_log = logging.getLogger("funasr_subs.service.gate")
    gate_log.addHandler(statuses)
    level = gate_log.level
    gate_log.setLevel(logging.INFO)
    try:
        with socket.create_connection((svc.host, svc.port), timeout=30) as sock:
            head = (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body) * 2}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
        line = statuses.wait_for(f"POST {path.split('?')[0]}")
    finally:
        gate_log.removeHandler(statuses)
        gate_log.setLevel(level)
    assert line.endswith("ms)") and "-> 499 " in line, statuses.lines
    assert not any("internal error" in x for x in statuses.lines)
    assert list(spool.iterdir()) == []

"""The HTTP layer over real sockets: routing, body limits, malformed requests, tokens and bind rules."""

from __future__ import annotations

import base64
import re
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from funasr_subs import __version__
from funasr_subs.errors import ConfigError
from funasr_subs.service import ServiceConfig, ServiceHandle, start_service
from funasr_subs.watch.state import StateDB
from tests.servicekit import Reply, Seen, StandIn, json_reply, multipart, request, service

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


@pytest.fixture
def svc(spool: Path) -> Iterator[ServiceHandle]:
    with service(ServiceConfig(port=0, upload_dir=spool, max_upload_mb=1)) as handle:
        yield handle


def raw_exchange(
    handle: ServiceHandle, head: bytes, body_part: bytes = b"", *, timeout: float = 5
) -> tuple[bytes, float]:
    """Send request headers (and a few body bytes), return everything the server sends until it closes."""
    started = time.monotonic()
    with socket.create_connection((handle.host, handle.port), timeout=timeout) as sock:
        sock.sendall(head + body_part)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - started


def test_health_is_json(svc: ServiceHandle) -> None:
    answer = request(svc, "GET", "/health")
    assert answer.status == 200 and answer.json()["status"] == "ok"
    assert answer.headers["content-type"] == "application/json"


def test_unknown_route_is_404_with_the_known_ones(svc: ServiceHandle) -> None:
    answer = request(svc, "GET", "/nope")
    assert answer.status == 404
    assert "POST /asr" in answer.json()["error"]


def test_wrong_method_is_405_with_allow(svc: ServiceHandle) -> None:
    answer = request(svc, "GET", "/asr")
    assert answer.status == 405 and answer.headers["allow"] == "POST"


def test_one_gigabyte_upload_is_refused_before_reading_it(svc: ServiceHandle, spool: Path) -> None:
    head = (
        b"POST /asr?encode=false&output=srt HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=abc\r\nContent-Length: 1073741824\r\n\r\n"
    )
    reply, elapsed = raw_exchange(svc, head, b'--abc\r\nContent-Disposition: form-data; name="audio_file"\r\n\r\n')
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert b"1073741824" in reply and b"Connection: close" in reply
    assert elapsed < 3, "the server must answer at once, not wait for a gigabyte"
    assert not list(spool.iterdir()), "nothing may be spooled"
    assert request(svc, "GET", "/health").status == 200


def test_expect_100_continue_is_answered_with_413_instead(svc: ServiceHandle) -> None:
    head = (
        b"POST /asr HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: multipart/form-data; boundary=abc\r\nContent-Length: 1073741824\r\n\r\n"
    )
    reply, _ = raw_exchange(svc, head)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert b"100 Continue" not in reply


def test_chunked_body_is_411(svc: ServiceHandle) -> None:
    head = b"POST /webhook/jellyfin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply, _ = raw_exchange(svc, head, b"2\r\n{}\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411 ")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: abc",
        b"Content-Length: 1_0",  # int() accepted these: a proxy and we would disagree on where the body ends
        b"Content-Length: +2",
        b"Content-Length: 2\r\nContent-Length: 2",
        b"Content-Length: 2\r\nContent-Length: 3",
        b"Content-Length: 2, 2",
    ],
)
def test_bad_content_length_is_400(svc: ServiceHandle, spool: Path, framing: bytes) -> None:
    head = b"POST /webhook/jellyfin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + b"\r\n\r\n"
    reply, _ = raw_exchange(svc, head, b"{}")
    assert re.match(rb"HTTP/1\.[01] 400 ", reply), reply[:200]
    assert b"202" not in reply.split(b"\r\n")[0]


@pytest.mark.parametrize(
    ("path", "body", "ctype", "needle"),
    [
        ("/asr?output=srt", b'{"audio": 1}', "application/json", "multipart/form-data"),
        (
            "/asr?output=srt",
            b'--b\r\nContent-Disposition: form-data; name="audio_file"\r\n\r\nabc',
            "multipart/form-data; boundary=b",
            "ended",
        ),
        ("/asr?output=srt", multipart([("other", None, None, b"x")])[0], None, "audio_file"),
        ("/asr?output=docx", multipart([("audio_file", "a", None, b"x")])[0], None, "output='docx'"),
        ("/asr?task=translate", multipart([("audio_file", "a", None, b"x")])[0], None, "translate"),
        ("/asr?encode=maybe", multipart([("audio_file", "a", None, b"x")])[0], None, "boolean"),
        ("/asr", multipart([("audio_file", "a", None, b"")])[0], None, "empty"),
        ("/webhook/jellyfin", b"{not json", "application/json", "not valid JSON"),
        ("/webhook/jellyfin", b"[1, 2]", "application/json", "JSON object"),
        ("/webhook/plex", multipart([("thumb", "t.jpg", "image/jpeg", b"\xff\xd8")])[0], None, "'payload'"),
        ("/webhook/emby", b"--b\r\nno-colon-header\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b", "header"),
    ],
)
def test_malformed_requests_are_4xx_with_a_reason(
    svc: ServiceHandle, path: str, body: bytes, ctype: str | None, needle: str
) -> None:
    if ctype is None:
        boundary = body[2 : body.index(b"\r\n")].decode()
        ctype = f"multipart/form-data; boundary={boundary}"
    answer = request(svc, "POST", path, body, {"Content-Type": ctype})
    assert 400 <= answer.status < 500, answer.body
    assert needle in answer.json()["error"]


def test_upload_over_the_configured_limit_is_413(svc: ServiceHandle) -> None:
    body, ctype = multipart([("audio_file", "a", None, bytes(1024 * 1024 + 10))])
    answer = request(svc, "POST", "/asr?encode=false", body, {"Content-Type": ctype})
    assert answer.status == 413 and "limit" in answer.json()["error"]


def test_status_without_state_db_is_503() -> None:
    with service(ServiceConfig(port=0, token=TOKEN)) as svc:
        assert request(svc, "GET", "/status", headers={"X-Api-Key": TOKEN}).status == 503


def test_status_lists_the_queue_to_the_token_only(tmp_path: Path) -> None:
    media = tmp_path / "a.mkv"
    media.write_bytes(b"x")
    with StateDB(tmp_path / "state") as db:
        db.enqueue(media, source="test")
        with service(ServiceConfig(port=0, token=TOKEN), db) as svc:
            data = request(svc, "GET", "/status", headers={"X-Api-Key": TOKEN}).json()
        with service(ServiceConfig(port=0), db) as svc:  # no token configured (the loopback default): nobody
            open_data = request(svc, "GET", "/status").json()
    assert data["counts"]["queued"] == 1 and data["queued"][0]["path"] == str(media)
    assert data["daemon_alive"] is False
    assert set(open_data) == {"version", "service"}, "the queue (file names) is not shown without a token"


# --- tokens and bind rules --------------------------------------------------------------------------------------
def _loopback_alias_available() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


needs_alias = pytest.mark.skipif(not _loopback_alias_available(), reason="127.0.0.2 cannot be bound here")


def test_non_local_bind_without_token_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="token is required"):  # refused before anything is bound
        start_service(ServiceConfig(host="0.0.0.0", port=0))


def test_short_token_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        start_service(ServiceConfig(port=0, token="short"))


@needs_alias
def test_token_required_off_localhost() -> None:
    with service(ServiceConfig(host="127.0.0.2", port=0, token=TOKEN)) as svc:
        assert svc.url.startswith("http://127.0.0.2:")
        missing = request(svc, "GET", "/status")
        hook = request(svc, "POST", "/webhook/emby", b"{}", {"Content-Type": "application/json"})
        wrong = request(svc, "GET", "/status", headers={"X-Api-Key": TOKEN + "x"})
        wrong_query = request(svc, "GET", "/status?token=nope")
        # the token check comes before the body: an unauthenticated 1 GB upload is refused at once
        upload = request(svc, "POST", "/asr", b"x", {"Content-Length": "1073741824", "Content-Type": "text/plain"})
        ok = [
            request(svc, "GET", "/status", headers={"X-Api-Key": TOKEN}),
            request(svc, "GET", "/status", headers={"Authorization": f"Bearer {TOKEN}"}),
            request(
                svc,
                "GET",
                "/status",
                headers={"Authorization": "Basic " + base64.b64encode(f"bazarr:{TOKEN}".encode()).decode()},
            ),
            request(svc, "GET", f"/status?token={TOKEN}"),
        ]
        health = request(svc, "GET", "/health")
    assert wrong.status == 401 and wrong_query.status == 401 and upload.status == 401 and hook.status == 401
    assert hook.headers["www-authenticate"].startswith("Bearer")
    # Bazarr's "Test Connection" (GET /status, no credentials): the version only, never the queue
    assert missing.status == 200 and missing.json() == {"version": __version__, "service": "funasr-subs"}
    assert [a.status for a in ok] == [503] * 4  # authenticated: past the token check (no state DB here)
    assert health.status == 200, "/health stays open for container health checks"


@pytest.mark.parametrize(
    "head",
    [
        b"GET /status HTTP/1.1\r\nX-Api-Key: \xff\xfe\xc3(\r\n",
        b"GET /status HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n",
        b"GET /status?token=%ED%A0%80%ff HTTP/1.1\r\n",
        b"GET /status HTTP/1.1\r\nAuthorization: Basic \xff\xfe\r\n",
    ],
)
def test_a_token_of_non_utf8_bytes_is_401_without_a_traceback(
    spool: Path, head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with service(ServiceConfig(port=0, upload_dir=spool, token=TOKEN)) as svc:
        reply, _ = raw_exchange(svc, head + b"Host: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 401 "), reply[:200]
    assert not [r for r in caplog.records if r.exc_info], "a wrong token is a refusal, not an internal error"


# --- connections that send nothing: header deadline and a bound on how many are held -----------------------------
def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def test_a_connection_that_never_completes_its_headers_is_closed(spool: Path) -> None:
    config = ServiceConfig(port=0, upload_dir=spool, header_timeout=0.5)
    with service(config) as svc:
        silent = socket.create_connection((svc.host, svc.port), timeout=5)
        slow = socket.create_connection((svc.host, svc.port), timeout=5)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the blank line that ends the headers never comes
        with silent, slow:
            started = time.monotonic()
            assert _closed_by_server(silent, 5) and _closed_by_server(slow, 5)
            assert time.monotonic() - started < 4
        assert request(svc, "GET", "/health").status == 200


def _count_closed(socks: list[socket.socket], want: int, within: float) -> int:
    """Wait (at most ``within`` s) until the server has closed ``want`` of ``socks``; returns how many it closed."""
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        while len(closed) < want and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                sock = cast(socket.socket, key.fileobj)
                try:
                    data = sock.recv(4096)
                except ConnectionError:
                    data = b""
                if not data:
                    closed.add(sock)
                    sel.unregister(sock)
    return len(closed)


def test_held_open_connections_are_bounded_and_a_new_client_is_served(spool: Path) -> None:
    config = ServiceConfig(port=0, upload_dir=spool, max_connections=8)
    with service(config) as svc:
        held = [socket.create_connection((svc.host, svc.port), timeout=5) for _ in range(30)]
        try:
            for sock in held:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            refused = _count_closed(held, 30 - 8, 10)
            answer = request(svc, "GET", "/health", timeout=5)  # the longest-idle one makes room
            closed = _count_closed(held, 30 - 8 + 1, 10)
        finally:
            for sock in held:
                sock.close()
    assert refused == 30 - 8, f"{30 - refused} of 30 idle connections stay open; at most 8 may"
    assert answer.status == 200
    assert closed == 30 - 8 + 1, "a new client closes the longest-idle connection"


def test_at_the_limit_with_every_connection_busy_a_newcomer_gets_503(tmp_path: Path, spool: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_lookup(seen: Seen) -> Reply:  # Jellyfin takes its time: the webhook request keeps running meanwhile
        entered.set()
        release.wait(10)
        return json_reply({}, 404)

    payload = b'{"NotificationType": "ItemAdded", "ItemId": "abc", "ItemType": "Movie"}'
    with StandIn() as jellyfin, StateDB(tmp_path / "state") as db:
        jellyfin.routes[("GET", "/Items/abc")] = jellyfin.routes[("GET", "/Items")] = slow_lookup
        config = ServiceConfig(
            port=0, upload_dir=spool, max_connections=1, jellyfin_url=jellyfin.url, jellyfin_api_key="key"
        )
        with service(config, db) as svc, socket.create_connection((svc.host, svc.port), timeout=10) as busy:
            busy.sendall(
                b"POST /webhook/jellyfin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
            )
            assert entered.wait(10)
            reply, _ = raw_exchange(svc, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            release.set()
            busy_reply = busy.recv(4096)
    assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
    assert b"too many open connections" in reply
    assert busy_reply.startswith(b"HTTP/1.1 "), "the busy request is not the one closed"

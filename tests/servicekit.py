"""Test helpers for the HTTP service: a recording stand-in media server, multipart bodies, raw HTTP calls."""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from funasr_subs.service import ServiceConfig, ServiceHandle, start_service


@dataclass
class Seen:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, str, bytes]  # status, content type, body
HeadedReply = tuple[int, str, bytes, dict[str, str]]  # ... and more headers (a redirect's Location)
Responder = Callable[[Seen], Reply | HeadedReply]


@dataclass
class StandIn:
    """A real HTTP server on 127.0.0.1:0 answering from ``routes[(method, path)]`` and recording every request."""

    routes: dict[tuple[str, str], Responder] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    parts.path,
                    urllib.parse.parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                stand_in.seen.append(seen)
                responder = stand_in.routes.get((self.command, parts.path))
                status, ctype, body, *more = responder(seen) if responder else (404, "text/plain", b"not found")
                self.send_response(status)
                for name, value in (more[0] if more else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def json_reply(data: Any, status: int = 200) -> Reply:
    return status, "application/json", json.dumps(data).encode()


Part = tuple[str, str | None, str | None, bytes]  # name, filename, content type, data


def multipart(parts: Sequence[Part], boundary: str | None = None) -> tuple[bytes, str]:
    """A body shaped like python-requests/urllib3 builds it (what Bazarr and most senders emit)."""
    boundary = boundary or os.urandom(16).hex()
    out = b""
    for name, filename, ctype, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    handle: ServiceHandle | tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 30,
) -> Answer:
    host, port = (handle.host, handle.port) if isinstance(handle, ServiceHandle) else handle
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


@contextmanager
def service(config: ServiceConfig, state_db: Any = None) -> Iterator[ServiceHandle]:
    handle = start_service(config, state_db)
    try:
        yield handle
    finally:
        handle.shutdown()

"""The HTTP service on the stdlib ``ThreadingHTTPServer``: routing, token checks, body limits, error replies.

Every request is checked before its body is read: route (404/405), token (401), then Content-Length against the
route's limit (411/413) — so a 1 GB upload is refused after its headers. A response sent before the body was read
closes the connection after a short lingering drain, so the client sees the reply instead of a reset.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from funasr_subs import __version__
from funasr_subs.errors import ConfigError
from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.responses import Query, RequestError, Response, Route, error_response, json_response
from funasr_subs.service.routes import ROUTES
from funasr_subs.service.security import (
    TOKEN_PARAM,
    check_token_setting,
    presented_tokens,
    resolve_roots,
    token_matches,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 1.0


@dataclass
class ServiceState:
    """What handlers share: the config, resolved roots, the state DB and a stop signal."""

    config: ServiceConfig
    roots: tuple[Path, ...]
    state_db: Any | None  # funasr_subs.watch.state.StateDB (duck-typed: enqueue/status/daemon_alive)
    stopping: threading.Event = field(default_factory=threading.Event)
    asr_slots: threading.BoundedSemaphore = field(init=False)
    _db_pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.asr_slots = threading.BoundedSemaphore(self.config.asr_jobs)
        # One thread owns every state-DB call: SQLite connections are per thread, request threads are not reused.
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="funasr-subs-http-db")

    def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._db_pool.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        self._db_pool.shutdown(wait=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: ServiceState) -> None:
        self.state = state
        infos = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
        self.address_family = infos[0][0]
        super().__init__(address, RequestHandler)


class _CountingReader:
    """Reads from the socket, remembering how much of the declared body is left."""

    def __init__(self, raw: Any, length: int) -> None:
        self.raw = raw
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.left:
            size = self.left
        data: bytes = self.raw.read(size) if size else b""
        self.left -= len(data)
        return data


class RequestHandler(BaseHTTPRequestHandler):
    """Dispatches to the route table; every outcome is one JSON (or subtitle) response and one log line."""

    protocol_version = "HTTP/1.1"
    server_version = f"funasr-subs/{__version__}"
    timeout = 120  # seconds a client may stay silent mid-request
    server: _Server
    body: _CountingReader

    # --- plumbing -------------------------------------------------------------------------------------------
    @property
    def state(self) -> ServiceState:
        return self.server.state

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _route(self) -> tuple[Route, Query]:
        """Route, token and Content-Length checks: everything decidable before reading the body."""
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        methods = ROUTES.get(parts.path.rstrip("/") or "/")
        if methods is None:
            known = ", ".join(sorted(f"{m} {p}" for p, ms in ROUTES.items() for m in ms))
            raise RequestError(404, f"no such endpoint {parts.path!r}; known: {known}")
        route = methods.get(self.command)
        if route is None:
            allow = ", ".join(sorted(methods))
            raise RequestError(
                405, f"{self.command} is not allowed on {parts.path}: use {allow}", headers=[("Allow", allow)]
            )
        token = self.state.config.token
        if token and not route.public and not token_matches(token, presented_tokens(self.headers, query)):
            log.warning(
                "refused %s %s from %s: missing or wrong token", self.command, parts.path, self.client_address[0]
            )
            raise RequestError(
                401,
                "missing or wrong token: send X-Api-Key, Authorization: Bearer, user:TOKEN@ in the URL, or ?token=",
                headers=[("WWW-Authenticate", 'Bearer realm="funasr-subs"')],
            )
        length = self._content_length()
        if route.body_limit is not None:
            if length is None:
                raise RequestError(411, "send a Content-Length (chunked request bodies are not supported)")
            limit = route.body_limit(self.state.config)
            if length > limit:
                raise RequestError(
                    413, f"the body is {length} bytes, over this endpoint's limit of {limit} bytes (max_upload_mb)"
                )
        return route, query

    def _content_length(self) -> int | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            length = int(raw)
        except ValueError:
            raise RequestError(400, f"Content-Length {raw!r} is not a number") from None
        if length < 0:
            raise RequestError(400, f"Content-Length {raw!r} is negative")
        return length

    def handle_expect_100(self) -> bool:
        """Refuse before the client sends the body (``Expect: 100-continue``), else invite it."""
        try:
            self._route()
        except RequestError as exc:
            self.body = _CountingReader(self.rfile, 0)
            self._send(error_response(exc), started=time.monotonic(), unread=False)
            self.close_connection = True
            return False
        return super().handle_expect_100()

    def _declares_body(self) -> bool:
        length = (self.headers.get("Content-Length") or "0").strip()
        return bool(self.headers.get("Transfer-Encoding")) or length != "0"

    def _dispatch(self) -> None:
        started = time.monotonic()
        self.body = _CountingReader(self.rfile, 0)
        reading = False
        try:
            route, query = self._route()
            self.body = _CountingReader(self.rfile, self._content_length() or 0)
            reading = True
            response = route.handler(self, query)
        except RequestError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("internal error on %s %s", self.command, self._log_path())
            response = json_response(500, {"error": "internal error: see the service log", "status": 500})
        unread = self.body.left > 0 if reading else self._declares_body()
        self._send(response, started=started, unread=unread)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _log_path(self) -> str:
        parts = urllib.parse.urlsplit(self.path)
        query = [(k, "***" if k == TOKEN_PARAM else v) for k, v in urllib.parse.parse_qsl(parts.query, True)]
        return parts.path + ("?" + urllib.parse.urlencode(query) if query else "")

    def _send(self, response: Response, *, started: float, unread: bool) -> None:
        if unread:  # the body was not (fully) read: the connection cannot carry another request
            self.close_connection = True
        self.send_response(response.status)
        for key, value in response.headers:
            self.send_header(key, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()
        level = logging.INFO if response.status < 500 else logging.WARNING
        log.log(
            level,
            "%s %s %s -> %d (%.0f ms)",
            self.client_address[0],
            self.command,
            self._log_path(),
            response.status,
            (time.monotonic() - started) * 1000,
        )
        if unread:
            self._linger()

    def _linger(self) -> None:
        """Half-close, then drop what the client is still sending for a moment, so it reads our reply."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS / 4)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES and time.monotonic() < deadline:
                chunk = self.connection.recv(64 * 1024)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass


@dataclass
class ServiceHandle:
    """A running service: ``url``, ``port``, and ``shutdown()`` (idempotent; cancels running /asr jobs)."""

    server: _Server
    thread: threading.Thread
    state: ServiceState
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def shutdown(self) -> None:
        if self.state.stopping.is_set():
            return
        self.state.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.state.close()
        log.info("HTTP service on %s stopped", self.url)

    def __enter__(self) -> ServiceHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def start_service(config: ServiceConfig, state_db: Any | None = None) -> ServiceHandle:
    """Bind and serve in a background thread; returns at once. Raises ConfigError (bind rules, roots).

    ``state_db`` is a ``funasr_subs.watch.state.StateDB`` (webhooks queue into it, ``/status`` reads it); without one
    those endpoints answer 503.
    """
    check_token_setting(config.host, config.token)
    roots = resolve_roots(config.roots)
    state = ServiceState(config=config, roots=roots, state_db=state_db)
    try:
        server = _Server((config.host, config.port), state)
    except OSError as exc:
        state.close()
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[0], server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="funasr-subs-http")
    thread.daemon = True
    thread.start()
    handle = ServiceHandle(server=server, thread=thread, state=state, host=str(host), port=int(port))
    where = ", ".join(map(str, roots)) or "none (webhooks refuse every path)"
    log.info("HTTP service listening on %s (token %s; roots: %s)", handle.url, "on" if config.token else "off", where)
    return handle

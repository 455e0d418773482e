"""The websocket client: one connection per file, big frames, one reply awaited, the client closes."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    SecurityError,
)

from funasr_subs.aio import bounded
from funasr_subs.errors import (
    ConfigError,
    NotFunasrError,
    ProtocolError,
    ReplyTimeoutError,
    ServerTimeoutError,
    ServerUnavailableError,
    TLSMismatchError,
    WrongServerError,
)
from funasr_subs.protocol import END_MESSAGE, decode_reply
from funasr_subs.recognition.identify import HTTP_WAIT, check_websocket, identify_http, two_pass_error

log = logging.getLogger(__name__)

#: Replies are ~0.6 MB per hour of speech; websockets' 1 MiB default would refuse a two-hour film's.
MAX_REPLY_BYTES = 256 * 1024 * 1024
_2PASS_PCM_ONLY = "ONLY SUPPORT PCM"
CLOSE_TIMEOUT = 2.0  # seconds to wait for the server's half of the closing handshake


@dataclass(frozen=True, slots=True)
class ServerConfig:
    url: str
    insecure: bool = False
    ca_file: Path | None = None
    connect_timeout: float = 10.0


def ssl_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    """None for ws:// and http://; for wss:// and https:// a verifying context, unless --insecure (the FunASR
    image's expired cert)."""
    if urlsplit(cfg.url).scheme not in ("wss", "https"):
        return None
    ctx = ssl.create_default_context()
    if cfg.ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(cfg.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--ca-file {cfg.ca_file} cannot be used: {exc}") from None
    if cfg.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _plain_url(url: str) -> str:
    return "ws://" + url.split("://", 1)[1]


def _tls_url(url: str) -> str:
    return "wss://" + url.split("://", 1)[1]


def explain_connect_error(cfg: ServerConfig, exc: BaseException) -> Exception:
    """Map what the network said to an error that tells the user which switch to try."""
    url = cfg.url
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSMismatchError(
            f"the TLS certificate of {url} is not trusted ({exc.verify_message}); the FunASR image ships an "
            "expired self-signed one: add --insecure, or --ca-file FILE to trust yours"
        )
    if isinstance(exc, ssl.SSLError):
        return TLSMismatchError(
            f"TLS handshake with {url} failed ({exc.reason or exc}): the server probably speaks plain websocket "
            f"(started with --certfile 0): try --server {_plain_url(url)}"
        )
    if isinstance(exc, SecurityError) and "redirect" in str(exc):
        return NotFunasrError(
            f"{url} answers the websocket with HTTP redirects ({exc}): a redirect loop, or one to where it cannot "
            "follow: a web server or proxy listens there, not FunASR; check --server (its host and port)"
        )
    if isinstance(exc, InvalidStatus) and 300 <= exc.response.status_code < 400:
        return NotFunasrError(
            f"{url} answered the websocket with a redirect (HTTP {exc.response.status_code}) that cannot be "
            "followed: a web server or proxy listens there, not FunASR; check --server"
        )
    if isinstance(exc, InvalidStatus) and 400 <= exc.response.status_code < 500:
        server = exc.response.headers.get("Server", "")
        named = f", server: {server[:40]}" if server else ""
        return NotFunasrError(
            f"{url} refused the websocket (HTTP {exc.response.status_code}{named}): a web server listens there, "
            "not FunASR; check --server (its host and port)"
        )
    if isinstance(exc, InvalidStatus):  # 5xx: a proxy whose server is still starting may answer so
        return ServerUnavailableError(
            f"{url} refused the websocket (HTTP {exc.response.status_code}): is this a FunASR server?"
        )
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, ValueError):
        # bytes came back, but not an HTTP answer (a TCP echo, another protocol); TLS would have sent none or binary
        return NotFunasrError(
            f"{url} answered the websocket handshake with something that is not HTTP ({exc.__cause__}): another "
            "kind of service listens there, not FunASR; check --server (its host and port)"
        )
    if isinstance(exc, InvalidMessage | InvalidHandshake | EOFError | ConnectionClosed | ConnectionResetError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE)
    ):
        if urlsplit(url).scheme == "ws":
            return TLSMismatchError(
                f"{url} closed the connection during the websocket handshake: the server probably speaks TLS "
                f"(FunASR's default): try --server {_tls_url(url)} --insecure"
            )
        return TLSMismatchError(
            f"{url} closed the connection during the TLS handshake: the server probably speaks plain websocket "
            f"(started with --certfile 0): try --server {_plain_url(url)}"
        )
    if isinstance(exc, TimeoutError):
        return ServerTimeoutError(
            f"no answer from {url} within {cfg.connect_timeout:g} s: is the server up and the port right? "
            "(--connect-timeout)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return ServerUnavailableError(
            f"no FunASR server at {url} (connection refused): start it (see README) or check --server"
        )
    if isinstance(exc, OSError):
        return ServerUnavailableError(f"cannot reach {url}: {exc.strerror or exc}: check --server and the network")
    return ServerUnavailableError(f"cannot connect to {url}: {exc}")


async def open_connection(cfg: ServerConfig) -> ClientConnection:
    """Open the websocket (no compression, no pings, large incoming limit) or raise a mapped error. An ``http://``
    URL, or an HTTP answer to the upgrade, is asked what it is (funasr-server's HTTP API is named)."""
    wait = min(cfg.connect_timeout, HTTP_WAIT)
    if urlsplit(cfg.url).scheme in ("http", "https"):
        raise await identify_http(cfg.url, cfg.url, wait)
    try:
        return await connect(
            cfg.url,
            ssl=ssl_context(cfg),
            open_timeout=cfg.connect_timeout,
            max_size=MAX_REPLY_BYTES,
            compression=None,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT,
            user_agent_header="funasr-subs",
        )
    except InvalidURI as exc:
        if exc.uri != cfg.url:  # a redirect's Location, not the URL we were given
            raise NotFunasrError(
                f"{cfg.url} redirects the websocket to {exc.uri[:200]!r}, which is not a websocket URL: a web server "
                "or proxy listens there, not FunASR; check --server"
            ) from None
        raise ConfigError(
            f"server URL {cfg.url!r} is not a websocket URL (ws://host:port or wss://host:port)"
        ) from None
    except InvalidStatus as exc:
        found = await identify_http(cfg.url, cfg.url, wait) if exc.response.status_code < 500 else None
        if isinstance(found, WrongServerError):
            raise found from None
        raise explain_connect_error(cfg, exc) from exc
    except (OSError, ssl.SSLError, InvalidHandshake, InvalidMessage, EOFError, ConnectionClosed, TimeoutError) as exc:
        raise explain_connect_error(cfg, exc) from exc


async def _upload(
    ws: ClientConnection,
    start: str,
    chunks: AsyncIterator[bytes],
    on_bytes: Callable[[int], None] | None,
    send_timeout: float | None,
) -> None:
    # each send waits until the socket takes the frame: a server that stops reading would block it forever
    await bounded(ws.send(start), send_timeout)
    async for chunk in chunks:
        await bounded(ws.send(chunk), send_timeout)
        if on_bytes is not None:
            on_bytes(len(chunk))


def _two_pass(raw: str | bytes) -> dict[str, Any] | None:
    """A 2pass server's message that may come while the audio streams in: a ``2pass-online`` partial, or a
    ``2pass-offline`` result (it sends one per voice segment); None for anything else."""
    if not isinstance(raw, str) or "2pass" not in raw:
        return None
    try:
        data = decode_reply(raw)
    except ProtocolError:
        return None
    mode = str(data.get("mode") or "")
    return data if mode.startswith("2pass") and not data.get("is_final") else None


async def _watch(ws: ClientConnection, parts: list[dict[str, Any]]) -> str | bytes:
    """Messages during the upload: a 2pass server's results are kept in ``parts`` (its partials dropped); the first
    other message is returned."""
    while True:
        raw = await ws.recv()
        two_pass = _two_pass(raw)
        if two_pass is None:
            return raw
        if not str(two_pass.get("mode")).endswith("online"):
            parts.append(two_pass)


async def _upload_watched(
    ws: ClientConnection,
    start: str,
    chunks: AsyncIterator[bytes],
    on_bytes: Callable[[int], None] | None,
    send_timeout: float | None,
    parts: list[dict[str, Any]],
) -> str | bytes | None:
    """The upload, while watching for a message: a server answers only after the end message, so a message that
    comes before it (an answer to part of the audio at most, or the 2pass server's refusal of mp4) stops the upload
    and is returned. A 2pass server's per-segment results go to ``parts``."""
    watch = asyncio.ensure_future(_watch(ws, parts))
    upload = asyncio.ensure_future(_upload(ws, start, chunks, on_bytes, send_timeout))
    try:
        await asyncio.wait({watch, upload}, return_when=asyncio.FIRST_COMPLETED)
        if not upload.done() and watch.exception() is None:
            return watch.result()
        await upload  # (when the watch ended by the connection closing, the upload says how)
        await asyncio.sleep(0)  # one turn of the loop: a message that came with the last frame is seen too
        if watch.done() and not watch.cancelled() and watch.exception() is None:
            return watch.result()
        return None
    finally:
        for task in (watch, upload):
            task.cancel()  # recv() is cancel-safe; the connection is closed after an early message anyway
        await asyncio.gather(watch, upload, return_exceptions=True)


async def _receive_reply(ws: ClientConnection, parts: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The offline server's single reply; a 2pass server's ``2pass-offline`` replies (``parts``: those that came
    during the upload) up to ``is_final``."""
    while True:
        raw = await ws.recv()
        if isinstance(raw, str) and _2PASS_PCM_ONLY in raw:
            raise two_pass_error(url)
        reply = decode_reply(raw)
        mode = str(reply.get("mode") or "")
        if mode.endswith("online"):
            continue
        if not mode.startswith("2pass"):
            if parts and not reply.get("text"):  # a 2pass final marker after offline parts
                break
            return reply  # the offline server: exactly one reply, is_final is always false
        parts.append(reply)
        if reply.get("is_final"):
            break
    return {"mode": "2pass-offline", "session": parts, "is_final": True}


async def exchange(
    ws: ClientConnection,
    start: str,
    chunks: AsyncIterator[bytes],
    *,
    url: str,
    reply_timeout: float,
    on_bytes: Callable[[int], None] | None = None,
    send_timeout: float | None = None,
) -> dict[str, Any]:
    """Send one file and wait for its reply; the caller closes ``ws``. ``send_timeout``: longest wait for the
    server to take one frame (None: no limit)."""
    try:
        parts: list[dict[str, Any]] = []
        early = await _upload_watched(ws, start, chunks, on_bytes, send_timeout, parts)
        if early is None:
            await bounded(ws.send(END_MESSAGE), send_timeout)
    except TimeoutError:
        raise ReplyTimeoutError(
            f"{url} stopped reading the upload for {send_timeout:.0f} s: the server may be stuck or overloaded; "
            "try again later or raise --reply-timeout"
        ) from None
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code == 1009:
            raise ProtocolError("the server refused a frame as too big (1009): report this as a bug") from None
        raise ServerUnavailableError(
            f"{url} dropped the connection during the upload: check that the server is still running (its log says "
            "why it closed: out of memory? restarted?) and that no proxy or firewall between cuts long uploads"
        ) from None
    if early is not None:
        ws.transport.abort()  # the upload stopped mid-frame: no clean close is possible (nor owed)
        if isinstance(early, str) and _2PASS_PCM_ONLY in early:
            raise two_pass_error(url)
        snippet = early[:60] if isinstance(early, str) else f"{len(early)} bytes of binary data"
        raise ProtocolError(f"{url} replied before the upload ended, to part of the audio at most ({snippet!r})")
    try:
        reply = await bounded(_receive_reply(ws, parts, url), reply_timeout)
    except TimeoutError:
        raise ReplyTimeoutError(
            f"{url} sent no reply within {reply_timeout:.0f} s after the upload: the server may be overloaded or "
            "stuck; try again later or raise --reply-timeout"
        ) from None
    except ConnectionClosed:
        raise ServerUnavailableError(f"{url} closed the connection before replying (did the server crash?)") from None
    if "session" in reply:
        _name_two_pass(url, len(reply["session"]))
    return reply


_TWO_PASS_NAMED: set[str] = set()
_TWO_PASS_LOCK = threading.Lock()


def _name_two_pass(url: str, parts: int) -> None:
    """Say once per server and process that it is the 2pass server (it works, per voice segment, PCM only)."""
    with _TWO_PASS_LOCK:
        first = url not in _TWO_PASS_NAMED
        _TWO_PASS_NAMED.add(url)
    if first:
        log.info(
            "%s is FunASR's 2pass server (funasr-wss-server-2pass): used in offline mode, PCM only, one result per "
            "voice segment (%d in this file); funasr-wss-server is the one made for files", url, parts
        )  # fmt: skip


async def close_quietly(ws: ClientConnection) -> None:
    """Close ``ws``; a server that stopped reading (close() would wait for it forever) gets its socket cut."""
    try:
        await bounded(ws.close(), CLOSE_TIMEOUT)
    except asyncio.CancelledError:  # cancelled while closing: the socket is still cut, then the cancel goes on
        ws.transport.abort()
        raise
    except Exception:
        ws.transport.abort()


async def probe_server(url: str, insecure: bool, ca_file: Path | None, connect_timeout: float) -> None:
    """Open a websocket to ``url``, see which server it is (identify.py) and close it again: raises the mapped error
    when that fails or the server is not one funasr-subs can use."""
    ws = await open_connection(ServerConfig(url, insecure, ca_file, connect_timeout))
    try:
        await check_websocket(ws, url)
    finally:
        await close_quietly(ws)

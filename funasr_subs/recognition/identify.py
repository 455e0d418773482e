"""Which server answered: FunASR's C++ websocket runtime, ``funasr-realtime-server``, ``funasr-server``'s HTTP API,
or a service that is not FunASR; and one line saying what to run instead.

Told apart from what each one does on the first exchange (FunASR source, snapshot 2026-08-21, v1.4.3):

- the C++ servers (``funasr-wss-server``, ``funasr-wss-server-2pass``) are built on websocketpp, which answers the
  upgrade with ``Server: WebSocket++/0.8.2`` (its ``user_agent``; FunASR's ``runtime/websocket`` never sets another):
  nothing more is asked of them. The 2pass server is named later, by its ``2pass-*`` replies (client.py);
- any other websocket server is sent the text ``STOP``: ``funasr-realtime-server`` answers it with
  ``{"event": "stopped"}`` even before a session (``funasr/bin/realtime_ws.py``, ``handle_client``, lines 1123-1142);
  FunASR's Python websocket server and the C++ servers read it as bad JSON and say nothing (a probe connection only);
  anything else that answers is not FunASR;
- ``funasr-server`` (FastAPI under uvicorn, ``funasr/bin/_server_app.py``) has no websocket route, so the upgrade
  fails with an HTTP status; its ``GET /health`` answers ``{"status": "ok", "device", "models_loaded"}`` (lines
  554-559);
- an ``http://`` URL that reaches a websocket server is answered ``426 Upgrade Required`` (websocketpp, and Python's
  websockets) or names a websocket library in ``Server``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from funasr_subs.errors import (
    FunasrSubsError,
    NotFunasrError,
    ServerTimeoutError,
    ServerUnavailableError,
    WrongServerError,
)

log = logging.getLogger(__name__)

#: The ``Server`` header of FunASR's C++ servers (websocketpp's default user agent).
CPP_SERVER_HEADER = "WebSocket++"
#: The command funasr-realtime-server answers at once, whatever its state.
PROBE_COMMAND = "STOP"
#: How long a silent answer to the probe command is waited for (a realtime server answers within a round trip).
PROBE_WAIT = 0.5
#: The longest wait for the HTTP answer that names funasr-server.
HTTP_WAIT = 2.0
GUIDE = "docs/transcribe.md#servers"
_RUN_INSTEAD = f"run FunASR's file transcription server funasr-wss-server (see {GUIDE}) and point --server at it"


def realtime_error(url: str) -> WrongServerError:
    return WrongServerError(
        f"{url} is funasr-realtime-server (FunASR's live streaming server: START/STOP commands), which does not "
        f"transcribe files: {_RUN_INSTEAD} (ws://host:10095)"
    )


def funasr_server_error(url: str, models: list[str]) -> WrongServerError:
    """funasr-server's HTTP API reached through a websocket URL: say the URL that speaks to it."""
    loaded = f", models loaded: {', '.join(models)}" if models else ""
    return WrongServerError(
        f"{url} is funasr-server's HTTP API (OpenAI-compatible{loaded}), not a websocket server: use --server "
        f"{http_url(url)} (see {GUIDE})"
    )


def two_pass_error(url: str) -> WrongServerError:
    return WrongServerError(
        f"{url} is FunASR's 2pass server (funasr-wss-server-2pass), which takes PCM only: use --send pcm, or "
        f"run funasr-wss-server (see {GUIDE})"
    )


def websocket_url(url: str) -> str:
    """``http://h:p/x`` → ``ws://h:p/x`` (https → wss)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="wss" if parts.scheme == "https" else "ws"))


def http_url(url: str) -> str:
    """``ws://h:p/x`` → ``http://h:p`` (wss → https): where funasr-server's API is."""
    parts = urlsplit(url)
    return urlunsplit(("https" if parts.scheme in ("wss", "https") else "http", parts.netloc, "", "", ""))


def health_url(url: str) -> str:
    """funasr-server's ``/health`` on the host and port of ``url`` (ws → http, wss → https)."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme in ("wss", "https") else "http"
    return urlunsplit((scheme, parts.netloc, "/health", "", ""))


def probe_answer_error(url: str, raw: str | bytes) -> FunasrSubsError:
    """What a websocket server's answer to ``STOP`` says it is (pure)."""
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("event") == "stopped":
            return realtime_error(url)
        snippet = raw[:60].replace("\n", " ")
    else:
        snippet = f"{len(raw)} bytes of binary data"
    return NotFunasrError(
        f"{url} is a websocket service that is not FunASR (it answered {PROBE_COMMAND!r} with {snippet!r}): "
        "check --server (its host and port)"
    )


def funasr_server_models(status: int, body: bytes) -> list[str] | None:
    """The models an answer to ``GET /health`` says funasr-server has loaded; None when it is not funasr-server's
    answer (pure)."""
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else None
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict) or "models_loaded" not in data:
        return None
    models = data.get("models_loaded")
    return [str(m) for m in models] if isinstance(models, list) else []


def http_answer_error(url: str, status: int, headers: Mapping[str, str], body: bytes) -> FunasrSubsError:
    """What an HTTP answer to ``GET /health`` says the server is, when funasr-subs cannot use it there (pure).
    ``url``: what the user gave (a websocket URL whose upgrade was refused is named by the caller unless this is
    funasr-server)."""
    server = headers.get("Server", "")
    models = funasr_server_models(status, body)
    scheme = urlsplit(url).scheme
    if models is not None and scheme in ("ws", "wss"):
        return funasr_server_error(url, models)
    if scheme in ("http", "https") and (status == 426 or "websocket" in server.lower()):
        kind = "FunASR's C++ websocket server" if CPP_SERVER_HEADER in server else "a websocket server"
        return NotFunasrError(f"{url} is {kind}, not an HTTP API: use --server {websocket_url(url)}")
    named = f", server: {server[:40]}" if server else ""
    return NotFunasrError(
        f"{url} answers HTTP {status}{named} and is neither funasr-server nor a FunASR websocket server: {_RUN_INSTEAD}"
    )


async def check_websocket(ws: ClientConnection, url: str) -> None:
    """After the handshake: raise WrongServerError / NotFunasrError when ``ws`` is not a server funasr-subs can use.
    Costs nothing for FunASR's C++ servers; at most PROBE_WAIT for other websocket servers."""
    server = ws.response.headers.get("Server", "") if ws.response is not None else ""
    if CPP_SERVER_HEADER in server:
        log.debug("%s: FunASR's C++ websocket server (%s)", url, server)
        return
    try:
        await ws.send(PROBE_COMMAND)
        async with asyncio.timeout(PROBE_WAIT):
            raw = await ws.recv()
    except TimeoutError:
        log.debug("%s: silent to %r: a server of FunASR's offline protocol (%s)", url, PROBE_COMMAND, server)
        return
    except ConnectionClosed:
        return  # (FunASR's Python server ends a connection that sent bad JSON)
    raise probe_answer_error(url, raw)


async def identify_http(url: str, given: str, timeout: float) -> FunasrSubsError:
    """The error that says what answers HTTP at ``url`` (``GET /health``); ``given``: the URL the user wrote."""
    import aiohttp

    target = health_url(url)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(target, allow_redirects=False, ssl=False) as answer,
        ):
            body = await answer.content.read(64 * 1024)
            return http_answer_error(given, answer.status, answer.headers, body)
    except TimeoutError:
        return ServerTimeoutError(f"no answer from {given} within {timeout:g} s: is the server up and the port right?")
    except aiohttp.ClientConnectorError as exc:
        return ServerUnavailableError(f"no server at {given} ({exc.os_error.strerror or exc}): check --server")
    except aiohttp.ClientError as exc:
        return NotFunasrError(f"{given} does not answer HTTP ({type(exc).__name__}): check --server")

"""Stand-ins for the FunASR servers that are not the C++ offline server, built from FunASR's source (snapshot
2026-08-21, v1.4.3; file and line cited at each): enough of each for a client to tell which one answered.

- :class:`RealtimeServer`: ``funasr-realtime-server`` (``funasr/bin/realtime_ws.py``), its text commands;
- :class:`TwoPassServer`: ``funasr-wss-server-2pass`` (``runtime/websocket/bin/websocket-server-2pass.cpp``) given
  ``mode: "offline"``;
- :class:`FunasrHttpServer`: ``funasr-server``'s HTTP API (``funasr/bin/_server_app.py`` under uvicorn).

Each runs on 127.0.0.1 port 0 in a thread, records what it received, and is used as a context manager.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.fake_recognition import PeakMeter, build_reply, detect_bursts, sentences_for

#: websocketpp's default user agent, which it sends as ``Server`` (FunASR's C++ servers never set another).
WEBSOCKETPP = "WebSocket++/0.8.2"
#: realtime_ws.py line 1099: the answer to COMMIT when the server runs its own voice detection (the default).
COMMIT_NEEDS_CLIENT_MODE = "COMMIT requires --endpoint-mode client"
#: websocket-server-2pass.cpp line 266: the final answer to any wav_format but pcm.
PCM_ONLY = "ERROR. Real-time transcription service ONLY SUPPORT PCM stream."


class _WebsocketStandIn:
    """A websockets server in a thread; ``messages``: every message received, per connection."""

    server_header: str | None = None

    def __init__(self) -> None:
        self.messages: list[list[str | bytes]] = []
        self.sent: list[str] = []
        self._lock = threading.Lock()
        self.port = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> _WebsocketStandIn:
        kwargs: dict[str, Any] = {"server_header": self.server_header} if self.server_header else {}
        self._server = serve(self._connection, "127.0.0.1", 0, max_size=None, compression=None, **kwargs)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._thread.join(10)

    def _connection(self, ws: ServerConnection) -> None:
        got: list[str | bytes] = []
        with self._lock:
            self.messages.append(got)
        with contextlib.suppress(ConnectionClosed):
            self.handle(ws, got)

    def send(self, ws: ServerConnection, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        with self._lock:
            self.sent.append(text)
        ws.send(text)

    def handle(self, ws: ServerConnection, got: list[str | bytes]) -> None:
        raise NotImplementedError


class RealtimeServer(_WebsocketStandIn):
    """``funasr-realtime-server`` as ``handle_client`` (realtime_ws.py lines 1036-1161) answers: START, HOTWORDS:,
    LANGUAGE:, COMMIT and STOP are text commands, each answered with an ``event``; audio counts only between START
    and STOP; any other text (a JSON object, as the C++ servers take) matches no command and is ignored. Python's
    websockets library answers the upgrade (its own ``Server`` header). The recogniser is left out: STOP after
    audio answers ``{"sentences": [], ...}`` shaped as ``_build_response`` (lines 888-904)."""

    def handle(self, ws: ServerConnection, got: list[str | bytes]) -> None:
        active = False
        samples = 0
        for message in ws:
            got.append(message)
            if isinstance(message, bytes):
                if active:  # line 1143: audio outside a session is dropped
                    samples += len(message) // 2
                continue
            cmd = message.strip()
            upper = cmd.upper()
            if upper == "START":
                active, samples = True, 0
                self.send(ws, {"event": "started"})
            elif upper.startswith("HOTWORDS:"):
                words = [w.strip() for w in cmd[9:].split(",") if w.strip()]
                self.send(ws, {"event": "hotwords_set", "hotwords": words})
            elif upper.startswith("LANGUAGE:"):
                self.send(ws, {"event": "language_set", "language": cmd[9:].strip()})
            elif upper == "COMMIT":
                self.send(ws, {"event": "error", "error": COMMIT_NEEDS_CLIENT_MODE})
            elif upper == "STOP":  # lines 1123-1142: a final result when audio came, then "stopped" in any case
                if active and samples:
                    duration_ms = samples * 1000 // 16000
                    self.send(ws, {"sentences": [], "partial": "", "partial_start_ms": 0,
                                   "duration_ms": duration_ms, "is_final": True})  # fmt: skip
                active = False
                self.send(ws, {"event": "stopped"})


class TwoPassServer(_WebsocketStandIn):
    """``funasr-wss-server-2pass`` given ``mode: "offline"`` (websocket-server-2pass.cpp): the JSON keys of the
    first message are kept (lines 462-530); without ``chunk_size`` the online handle is never made and nothing is
    ever answered (``do_decoder`` returns at once, line 164); the audio is buffered; ``{"is_speaking": false}``
    decodes it (line 544): PCM gives one ``2pass-offline`` result per voice segment, ``is_final`` true only on the
    last; any other ``wav_format`` gets the text ``ONLY SUPPORT PCM`` with ``is_final`` true (lines 263-275).
    Bad JSON ends the connection's service (line 451: ``is_eof``). "Recognition" is the offline stand-in's. (The
    real server decodes PCM while it streams in and sends a finished segment's result at once, lines 580-630; here
    every result comes after the end message: ``tests/test_reply_checks.py`` covers results during the upload.)"""

    server_header = WEBSOCKETPP

    def handle(self, ws: ServerConnection, got: list[str | bytes]) -> None:
        state: dict[str, Any] = {"wav_name": "wav-default-id", "wav_format": "pcm"}
        meter = PeakMeter()
        online = False
        for message in ws:
            got.append(message)
            if isinstance(message, bytes):
                if state["wav_format"] == "pcm":
                    meter.feed(message)
                continue
            try:
                msg = json.loads(message)
            except ValueError:
                break  # is_eof: nothing more is read or answered on this connection
            for key in ("wav_name", "mode", "wav_format"):
                if key in msg:
                    state[key] = msg[key]
            if isinstance(msg.get("chunk_size"), list) and len(msg["chunk_size"]) == 3 and msg["chunk_size"][1]:
                online = True
            if msg.get("is_speaking") is False and online:
                self._finish(ws, state, meter)
        for _ in ws:  # until the client closes
            pass

    def _finish(self, ws: ServerConnection, state: dict[str, Any], meter: PeakMeter) -> None:
        name = state["wav_name"]
        if state["wav_format"] not in ("pcm", "PCM"):
            self.send(ws, {"is_final": True, "text": PCM_ONLY, "wav_name": name})
            return
        bursts = detect_bursts(meter.finish())
        if not bursts:
            self.send(ws, {"is_final": True, "mode": "2pass-offline", "text": "", "wav_name": name})
            return
        for i, burst in enumerate(bursts):
            reply = build_reply(name, sentences_for([burst])) | {"mode": "2pass-offline"}
            self.send(ws, reply | {"is_final": i == len(bursts) - 1})


class FunasrHttpServer:
    """``funasr-server``'s HTTP API as uvicorn serves ``create_app`` (_server_app.py): ``GET /health`` (lines
    554-559), ``GET /v1/models`` (lines 547-552), unknown paths 404 ``{"detail": "Not Found"}`` (FastAPI), and a
    websocket upgrade 403 with no body (no websocket route: Starlette closes it, uvicorn answers 403). ``Server:
    uvicorn``. ``requests``: (method, path) of each request."""

    def __init__(self, models: tuple[str, ...] = ("sensevoice",)) -> None:
        self.models = models
        self.requests: list[tuple[str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def version_string(self) -> str:
                return "uvicorn"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                stand_in.requests.append(("GET", self.path))
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._answer(403, b"")
                elif self.path == "/health":
                    models = list(stand_in.models)
                    self._answer(200, json.dumps({"status": "ok", "device": "cpu", "models_loaded": models}).encode())
                elif self.path == "/v1/models":
                    data = [{"id": n, "object": "model"} for n in ("fun-asr-nano", "sensevoice", "paraformer")]
                    self._answer(200, json.dumps({"object": "list", "data": data}).encode())
                else:
                    self._answer(404, b'{"detail":"Not Found"}')

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FunasrHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

"""Stand-ins for the FunASR servers that are not the C++ offline server, built from FunASR's source (snapshot
2026-08-21, v1.4.3; file and line cited at each): enough of each for a client to tell which one answered.

- :class:`RealtimeServer`: ``funasr-realtime-server`` (``funasr/bin/realtime_ws.py``), its text commands;
- :class:`TwoPassServer`: ``funasr-wss-server-2pass`` (``runtime/websocket/bin/websocket-server-2pass.cpp``) given
  ``mode: "offline"``;
- :class:`FunasrHttpServer`: ``funasr-server``'s HTTP API (``funasr/bin/_server_app.py`` under uvicorn).

Each runs on 127.0.0.1 port 0 in a thread, records what it received, and is used as a context manager.
"""

from __future__ import annotations

import argparse
import contextlib
import email.policy
import io
import json
import re
import signal
import ssl
import threading
import wave
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.fake_recognition import PeakMeter, build_reply, detect_bursts, sensevoice_reply, sentences_for

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


#: _server_app.py line 34: the language tags SenseVoice puts in its text (read before the tags are removed).
_LANGUAGE_TAG = re.compile(r"<\|(zh|en|yue|ja|ko)\|>")
#: _server_app.py lines 428 and 437: every ``<|...|>`` tag is removed from the text.
_ANY_TAG = re.compile(r"<\|[^|]*\|>")
#: _server_app.py lines 227-238: the models served through AutoModel (``FALLBACK_CONFIGS``).
FALLBACK_MODELS = ("sensevoice", "paraformer")
#: _server_app.py lines 374-378: a VAD region of 0.3 s or less is not recognised by Fun-ASR-Nano.
NANO_MIN_SEGMENT_S = 0.3


def split_for_segments(text: str, max_chars: int = 80) -> list[str]:
    """``_split_text_for_openai_segments`` (_server_app.py lines 55-88): words (split at spaces) gathered up to
    ``max_chars``, a part closed early after ``.!?;:`` once half full; text without spaces (Chinese) is one word,
    and any part over ``max_chars`` makes the whole text cut every ``max_chars`` characters."""
    text = text.strip()
    if not text:
        return []
    words = text.split()
    parts: list[str] = []
    current: list[str] = []
    for word in words:
        if current and len(" ".join([*current, word])) > max_chars:
            parts.append(" ".join(current))
            current = []
        current.append(word)
        if word[-1:] in ".!?;:" and len(" ".join(current)) >= max_chars // 2:
            parts.append(" ".join(current))
            current = []
    if current:
        parts.append(" ".join(current))
    if any(len(part) > max_chars for part in parts):
        return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    return parts


def estimated_segments(text: str, duration: float) -> list[dict[str, Any]]:
    """``build_openai_fallback_segments`` (_server_app.py lines 91-113): the duration shared among the parts by
    their length in characters, times rounded to 1 ms: no relation to where anything was said."""
    parts = split_for_segments(text)
    if not parts:
        return []
    if len(parts) == 1 or duration <= 0:
        return [{"start": 0.0, "end": max(float(duration), 0.0), "text": parts[0]}]
    total = sum(len(p) for p in parts)
    out, consumed, previous = [], 0, 0.0
    for i, part in enumerate(parts):
        consumed += len(part)
        end = float(duration) if i == len(parts) - 1 else float(duration) * consumed / total
        end = max(end, previous)
        out.append({"start": round(previous, 3), "end": round(end, 3), "text": part})
        previous = end
    return out


class FunasrHttpServer:
    """``funasr-server``'s HTTP API as uvicorn serves ``create_app`` (_server_app.py): ``GET /health`` (lines
    554-559), ``GET /v1/models`` (lines 547-552), unknown paths 404 ``{"detail": "Not Found"}`` (FastAPI), and a
    websocket upgrade 403 with no body (no websocket route: Starlette closes it, uvicorn answers 403). ``Server:
    uvicorn``. ``requests``: (method, path) of each request.

    ``POST /v1/audio/transcriptions`` (lines 463-512): a multipart form with ``file`` (read as soundfile reads it:
    a WAV here; anything else fails inside the model, a 500), ``model`` (400 ``Unknown model`` for another, line
    505), ``language``, ``response_format`` (``json`` → ``{"text"}``, ``text`` → a JSON string, ``verbose_json`` →
    ``build_openai_verbose_json``, lines 189-210). "Recognition" is the C++ stand-in's (tests/fake_recognition.py:
    loud runs of the audio received become sentences):

    - ``sensevoice`` (``_process_fallback``, lines 408-455): SenseVoice's text in the request's ``language`` (none
      or ``auto``: ``language=``, Chinese unless told, as FunasrTestServer's), its first language tag read (line
      420), every tag removed; no ``sentence_info``, so the
      segments are :func:`estimated_segments` of the file's duration (``sf.info``, line 413);
    - ``paraformer``: the Paraformer stand-in's text with punctuation, estimated segments, language ``unknown``
      unless asked (lines 45-52: no tag to read);
    - ``fun-asr-nano`` on vLLM (``models`` lists ``"fun-asr-nano (vLLM)"``; ``_process_vllm``, lines 347-406): one
      segment per VAD region longer than 0.3 s with its real times, and ``words`` timed within it (``token``,
      ``start_time`` + the region's start); without vLLM it is answered as Paraformer is (the fallback path).

    ``transcriptions``: the form of each transcription request (without the file) and the audio's duration in ms.
    ``fail``: that many transcription requests answer ``500 Internal Server Error`` (as uvicorn does when the model
    raises) before it works again; ``garbage``: they answer 200 with an HTML page; ``models``: what /health lists
    as loaded (``"fun-asr-nano (vLLM)"`` for Nano)."""

    def __init__(
        self,
        models: tuple[str, ...] = ("sensevoice",),
        ssl_context: ssl.SSLContext | None = None,
        port: int = 0,
        language: str | tuple[str, ...] = "zh",
    ) -> None:
        self.models = models
        self.language = language  # what SenseVoice asked auto (or nothing) hears, as FunasrTestServer's language
        self.tls = ssl_context is not None  # https:// (uvicorn --ssl-certfile): the handshake on accept
        self.requests: list[tuple[str, str]] = []
        self.transcriptions: list[dict[str, Any]] = []
        self.fail = 0
        self.garbage = False  # transcriptions answer 200 with a body that is not JSON (a proxy's page, a bug)
        self._lock = threading.Lock()
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

            def do_POST(self) -> None:
                stand_in.requests.append(("POST", self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/audio/transcriptions":
                    self._answer(404, b'{"detail":"Not Found"}')
                    return
                status, answer = stand_in.transcribe(self.headers.get("Content-Type", ""), body)
                if stand_in.garbage:
                    self._answer(200, b"<html>Bad Gateway</html>", "text/html")
                elif status == 500:
                    self._answer(500, b"Internal Server Error", "text/plain; charset=utf-8")
                else:
                    self._answer(status, json.dumps(answer, ensure_ascii=False).encode())

            def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._httpd.server_address[1]}"

    def transcribe(self, content_type: str, body: bytes) -> tuple[int, Any]:
        """(status, answer) for one ``POST /v1/audio/transcriptions``."""
        form = _multipart(content_type, body)
        if "file" not in form:  # FastAPI's validation of File(...)
            return 422, {"detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required"}]}
        fields = {k: v.decode("utf-8") for k, v in form.items() if k != "file"}
        model = fields.get("model", "fun-asr-nano")
        language = fields.get("language") or None
        response_format = fields.get("response_format", "json")
        with self._lock:
            failing = self.fail > 0
            self.fail -= 1 if failing else 0
        if model not in ("fun-asr-nano", *FALLBACK_MODELS):
            return 400, {"detail": f"Unknown model '{model}'. Available: fun-asr-nano, custom, sensevoice, paraformer"}
        try:
            with wave.open(io.BytesIO(form["file"])) as wav:
                if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, 16000):
                    raise wave.Error("the stand-in reads 16 kHz mono s16 only")
                pcm = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError):
            return 500, None
        duration = len(pcm) / 32000
        with self._lock:
            self.transcriptions.append(fields | {"duration_ms": round(duration * 1000)})
        if failing:
            return 500, None
        meter = PeakMeter()
        meter.feed(pcm)
        bursts = detect_bursts(meter.finish())
        if model == "fun-asr-nano" and "fun-asr-nano (vLLM)" in self.models:
            result = _nano(bursts, duration)
        else:  # (Fun-ASR-Nano without vLLM runs through AutoModel too, lines 305-323 and 478-489: estimated)
            result = _fallback(model, bursts, language, duration, self.language)
        if response_format == "verbose_json":  # build_openai_verbose_json, lines 189-210
            segments = [
                {"id": i, "start": seg["start"], "end": seg["end"], "text": seg["text"], "words": seg.get("words", [])}
                for i, seg in enumerate(result["segments"])
            ]
            asked = language if language and language.strip().lower() != "auto" else None
            said = asked or result.get("language") or "unknown"
            return 200, {"task": "transcribe", "language": said, "duration": result["duration"],
                         "text": result["text"], "segments": segments}  # fmt: skip
        if response_format == "text":
            return 200, result["text"]
        return 200, {"text": result["text"]}

    def __enter__(self) -> FunasrHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a ``multipart/form-data`` body (the email parser reads MIME multipart)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def _fallback(
    model: str, bursts: list[tuple[int, int]], language: str | None, duration: float, heard: str | tuple[str, ...]
) -> dict[str, Any]:
    """``_process_fallback`` (lines 408-455) for SenseVoice and Paraformer: text, estimated segments; SenseVoice's
    language the first tag of its text (``extract_language_from_asr_text``, lines 37-42, at line 420)."""
    if model == "sensevoice":  # SenseVoice's "auto" hears ``heard``, as the C++ stand-in does
        raw = sensevoice_reply("x", bursts, language or "auto", True, heard)["text"]
    else:
        raw = build_reply("x", sentences_for(bursts), timestamps=False)["text"]
    found = _LANGUAGE_TAG.search(raw)
    text = _ANY_TAG.sub("", raw).strip()
    return {"text": text, "segments": estimated_segments(text, duration) if text else [], "duration": duration,
            "language": found.group(1) if found else None}  # fmt: skip


def _nano(bursts: list[tuple[int, int]], duration: float) -> dict[str, Any]:
    """``_process_vllm`` (lines 347-406): a segment per VAD region over 0.3 s, its words timed within it (the
    engine's ``timestamps`` moved by the region's start, lines 392-397)."""
    segments: list[dict[str, Any]] = []
    for start, end in bursts:
        if (end - start) / 1000 <= NANO_MIN_SEGMENT_S:
            continue
        said = sentences_for([(start, end)])
        words = [{"word": tok, "start": a / 1000, "end": b / 1000}
                 for s in said for tok, (a, b) in zip(s.tokens, s.times, strict=True)]  # fmt: skip
        text = "".join("".join(s.tokens) + s.punc for s in said)
        segments.append({"text": text, "start": start / 1000, "end": end / 1000, "words": words})
    return {"text": "".join(s["text"] for s in segments), "segments": segments, "duration": duration}


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.other_servers``: funasr-server's stand-in in the foreground, until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="funasr-server's HTTP API stand-in (tests/other_servers.py)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (funasr-server's 8000)")
    parser.add_argument(
        "--model", default="sensevoice", help="what /health lists: sensevoice, paraformer or 'fun-asr-nano (vLLM)'"
    )
    args = parser.parse_args(argv)
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # (the server's threads inherit it: the signal waits for us)
    with FunasrHttpServer(models=(args.model,), port=args.port) as server:
        print(f"funasr-server stand-in ({args.model}) on {server.url}", flush=True)
        signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A FunASR ``funasr-wss-server`` (offline mode) stand-in for tests: real websockets, energy-based "recognition"."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.fake_recognition import (
    FRAME_MS,
    SHAPES,
    SPOILS,
    THRESHOLD,
    PeakMeter,
    Segment,
    Shape,
    build_reply,
    check_message,
    detect_bursts,
    dump_reply,
    ffmpeg_peaks,
    habitual,
    lose_stretch,
    parse_hotwords,
    sensevoice_reply,
    sentences_for,
    spoiled_reply,
)
from tests.tls_certs import make_expired_cert, make_self_signed_cert, server_ssl_context

__all__ = [
    "FAULTS",
    "SHAPES",
    "ConnectionRecord",
    "FileRecord",
    "FunasrTestServer",
    "PeakMeter",
    "Segment",
    "build_reply",
    "check_message",
    "detect_bursts",
    "dump_reply",
    "make_expired_cert",
    "make_self_signed_cert",
    "sentences_for",
    "server_ssl_context",
]

log = logging.getLogger(__name__)

MAX_FRAME = 32_000_000
FaultName = Literal[
    "refuse",
    "hang",
    "drop",
    "garbage",
    "slow",
    "stall",
    "early",
    # a well-formed but wrong reply (fake_recognition.spoiled_reply)
    "other_file",
    "huge_times",
    "negative_times",
    "repeat_times",
    "many_tokens",
    "deep_json",
    "inf_time",
    "empty",
    # a plausible reply that lacks the words of a stretch of the audio (``lose_at_ms``, ``lose_ms``)
    "lose",
]
Fault = FaultName | None
FAULTS: tuple[str, ...] = get_args(FaultName)


# ---------------------------------------------------------------- records


@dataclass
class ConnectionRecord:
    """What one websocket connection did."""

    index: int
    frame_sizes: list[int] = field(default_factory=list)
    close_code: int | None = None  # the code the peer closed with (1006 = no close frame)
    closed: bool = False


@dataclass
class FileRecord:
    """One file (first message .. is_speaking false) as received, and the reply built for it."""

    connection: int
    request: dict[str, Any]
    audio_bytes: int = 0
    sha256: str = ""
    reply: dict[str, Any] | None = None  # what the server built (sent only when ``sent``)
    bursts: list[tuple[int, int]] = field(default_factory=list)
    sent: bool = False  # False under the hang/garbage faults, or when the client left before a slow reply


class _FileState:
    def __init__(self, conn: int, request: dict[str, Any], spool_dir: Path, frame_ms: int = FRAME_MS) -> None:
        self.frame_ms = frame_ms
        self.record = FileRecord(connection=conn, request=request)
        self.params: dict[str, Any] = {
            "wav_format": "pcm",
            "wav_name": "wav-default-id",
            "itn": True,
            "audio_fs": 16000,
        }
        self.spool_dir = spool_dir
        self.meter: PeakMeter | None = None
        self.spool: Any = None
        self.hash = hashlib.sha256()

    def apply(self, msg: dict[str, Any]) -> None:
        for key in ("wav_format", "wav_name", "itn", "audio_fs", "svs_lang", "svs_itn"):
            if key in msg:
                self.params[key] = msg[key]

    def add_audio(self, data: bytes) -> None:
        self.record.audio_bytes += len(data)
        self.hash.update(data)
        if self.params["wav_format"] == "pcm":
            if self.meter is None:
                self.meter = PeakMeter(self.params["audio_fs"], self.frame_ms)
            self.meter.feed(data)
        else:
            if self.spool is None:
                self.spool = tempfile.NamedTemporaryFile(dir=self.spool_dir, delete=False)  # noqa: SIM115
            self.spool.write(data)

    def decode(self) -> list[int] | None:
        """Blocking: peaks of everything received (runs in an executor for non-pcm)."""
        self.record.sha256 = self.hash.hexdigest()
        if self.meter is not None:
            return self.meter.finish()
        if self.spool is None:
            return None
        self.spool.close()
        try:
            return ffmpeg_peaks(Path(self.spool.name), self.frame_ms)
        finally:
            os.unlink(self.spool.name)

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.close()
            with contextlib.suppress(OSError):
                os.unlink(self.spool.name)


# ---------------------------------------------------------------- the server


class FunasrTestServer:
    """A real websockets server on 127.0.0.1 behaving like ``funasr-wss-server`` in offline mode.

    ``fault``: None | "refuse" | "hang" | "drop" | "garbage" | "slow" | "stall" | "early" | one of SPOILS (settable
    at any time); "drop" and "stall" act after ``drop_after_bytes`` of audio: "stall" stops reading, like a frozen
    server process. "early" answers the first message at once (no words: no audio has come) and stops reading;
    the SPOILS send a wrong reply in place of the right one (docs/development.md lists them).
    ``shape``: reply shape variant (see SHAPES); ``timestamps=False`` mimics a server without the timestamp model;
    ``model="sensevoice"`` one that runs SenseVoice (tagged text, no times, the request's ``svs_lang``/``svs_itn``;
    asked ``auto``, the ``language`` it is told the speech is in: one, or one per burst in turn, ``"nospeech"`` for
    sound SenseVoice hears no speech in).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        timestamps: bool = True,
        shape: Shape = "normal",
        slow_seconds: float = 2.0,
        drop_after_bytes: int = 65_536,
        instant: bool = False,
        frame_ms: int = FRAME_MS,
        rtf: float = 0.0,
        slots: int = 1,
        habits: bool = False,
        lose_at_ms: int | None = None,
        lose_ms: int = 40_000,
        lose_requests: int | None = None,
        lose_then: Literal["words", "nothing"] = "words",
        model: Literal["paraformer", "sensevoice"] = "paraformer",
        language: str | tuple[str, ...] = "zh",
        server_header: str = "WebSocket++/0.8.2",
    ) -> None:
        self.model = model
        self.language = language  # SenseVoice asked svs_lang auto hears this (burst i: language[i % len]; "nospeech")
        self.host = "127.0.0.1"
        self.port = port
        self.ssl_context = ssl_context
        self.timestamps = timestamps
        self.shape: Shape = shape
        self.slow_seconds = slow_seconds
        self.drop_after_bytes = drop_after_bytes
        self.frame_ms = frame_ms  # the "recogniser's" time resolution (1 for tests of millisecond timing)
        self.instant = instant  # benchmarks: skip decoding non-pcm audio, answer at once with one 0-1000 ms sentence
        self.rtf = rtf  # answer after rtf x seconds of audio received (0: at once), like a real decoder's speed
        self.slots = max(1, slots)  # with rtf: requests decoded at once; the others wait their turn
        self.habits = habits  # token times like FunASR's: running on into pauses (fake_recognition.habitual)
        self.lose_at_ms = lose_at_ms  # fault "lose": where the lost stretch starts (None: at 40 % of the audio)
        self.lose_ms = lose_ms  # fault "lose": how long it is
        # fault "lose": how many requests lose the stretch (None: every one); the requests after them are answered
        # in full ("words": a stretch sent again is recovered) or with no words at all ("nothing": it stays lost)
        self.lose_requests = lose_requests
        self.lose_then = lose_then
        self.losing = 0  # requests answered with the stretch lost so far
        # the C++ server is built on websocketpp, whose handshake names it so (funasr-subs reads it); FunASR's Python
        # server answers with Python's websockets library's own name
        self.server_header = server_header
        self.active = 0  # requests open now (first message received, no reply sent yet)
        self.max_active = 0  # the most requests open at once
        self._decoding: asyncio.Semaphore | None = None
        self._live: set[ServerConnection] = set()
        self._fault: Fault = None
        self.requests: list[dict[str, Any]] = []
        self.messages: list[Any] = []  # every text message received (parsed; bad JSON kept as str)
        self.violations: list[str] = []
        self.errors: list[str] = []  # server-side log of bad JSON etc.
        self.connections: list[ConnectionRecord] = []
        self.files: list[FileRecord] = []
        self.replies: list[str] = []  # raw reply texts sent
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[Server] = []
        self._listening: Server | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- lifecycle
    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> FunasrTestServer:
        """Start listening (same port as before when restarted). Returns self."""
        if self._thread is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="funasr-test-server-")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"funasr-test-server-{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        if self._fault == "refuse":
            self._call(self._unlisten())
        return self

    def stop(self) -> None:
        """Close every connection (1001) and the listener; join the thread."""
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._shutdown(), timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        self._thread = None
        self._loop = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def kill(self) -> None:
        """Die like a crashed process: every connection cut without a close frame, no longer listening
        (``fault = None`` brings it back on the same port)."""
        self.fault = "refuse"
        self._call(self._abort_all())

    async def _abort_all(self) -> None:
        for ws in list(self._live):
            ws.transport.abort()

    def __enter__(self) -> FunasrTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def fault(self) -> Fault:
        return self._fault

    @fault.setter
    def fault(self, value: Fault) -> None:
        if value not in (None, *FAULTS):
            raise ValueError(f"unknown fault {value!r}")
        old, self._fault = self._fault, value
        if self._loop is None:
            return
        if value == "refuse" and old != "refuse":
            self._call(self._unlisten())
        elif old == "refuse" and value != "refuse":
            self._call(self._listen())

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        assert self._loop is not None
        if threading.current_thread() is self._thread:
            raise RuntimeError("FunasrTestServer: change faults / stop from the test's thread, not the server's")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _listen(self) -> None:
        server = await serve(
            self._handle,
            self.host,
            self.port,
            ssl=self.ssl_context,
            max_size=MAX_FRAME,
            max_queue=64,
            compression=None,
            ping_interval=None,
            close_timeout=2,
            server_header=self.server_header,
        )
        self.port = server.sockets[0].getsockname()[1]
        self._listening = server
        self._servers.append(server)

    async def _unlisten(self) -> None:
        if self._listening is not None:
            self._listening.server.close()  # stop accepting; live connections continue
            self._listening = None

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close(close_connections=True)
        for server in self._servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 10)
        self._servers.clear()
        self._listening = None

    # -- waiting helpers (no sleeps)
    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` (evaluated under the server's lock) is true; False on timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        return self.wait_until(lambda: len(self.requests) >= n, timeout)

    def wait_for_replies(self, n: int, timeout: float = 10.0) -> bool:
        return self.wait_until(lambda: len(self.replies) >= n, timeout)

    def wait_for_connections(self, n: int, timeout: float = 10.0) -> bool:
        return self.wait_until(lambda: len(self.connections) >= n, timeout)

    def wait_for_closed(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until ``n`` connections have ended (by whoever)."""
        return self.wait_until(lambda: sum(c.closed for c in self.connections) >= n, timeout)

    def wait_for_bytes(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``n`` audio bytes have arrived over all connections."""
        return self.wait_until(lambda: sum(sum(c.frame_sizes) for c in self.connections) >= n, timeout)

    @property
    def frame_sizes(self) -> list[list[int]]:
        """Binary frame sizes received, one list per connection."""
        with self._cond:
            return [list(c.frame_sizes) for c in self.connections]

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock while records change, then wake every waiter."""
        with self._cond:
            yield
            self._cond.notify_all()

    # -- one connection
    async def _handle(self, ws: ServerConnection) -> None:
        with self._cond:
            conn = ConnectionRecord(index=len(self.connections))
            self.connections.append(conn)
            self._cond.notify_all()
        self._live.add(ws)
        state: _FileState | None = None
        opened = False  # this connection's request counts in ``active``
        dead = False  # bad JSON or a "crash": ignore everything from now on
        hotwords: dict[str, int] | None = None  # read once per connection
        received = 0
        try:
            async for message in ws:
                if dead:
                    continue
                if isinstance(message, bytes):
                    with self._changing():
                        conn.frame_sizes.append(len(message))
                    received += len(message)
                    if self._fault == "drop" and received >= self.drop_after_bytes:
                        log.info("test server: fault 'drop' after %d bytes", received)
                        ws.transport.abort()
                        break
                    if self._fault == "stall" and received >= self.drop_after_bytes:
                        log.info("test server: fault 'stall' after %d bytes: no longer reading", received)
                        ws.transport.pause_reading()  # like a frozen server: the client's socket buffers fill up
                        await ws.wait_closed()
                        break
                    if state is None:
                        assert self._tmp is not None
                        state = _FileState(conn.index, {}, Path(self._tmp.name), self.frame_ms)
                    state.add_audio(message)
                    continue
                try:
                    msg = json.loads(message)
                except ValueError:
                    with self._changing():
                        self.messages.append(message)
                        self.errors.append(f"bad JSON: {message[:80]!r}")
                    log.warning("test server: bad JSON %r; ignoring the rest of this connection", message[:80])
                    dead = True
                    continue
                fatal, soft = check_message(msg)
                first = state is None or not state.record.request
                with self._changing():
                    self._record_message(msg, first, fatal, soft)
                if fatal:
                    log.warning("test server: type violation %s; connection no longer answered", fatal)
                    dead = True
                    continue
                assert isinstance(msg, dict) and self._tmp is not None
                if state is None:
                    state = _FileState(conn.index, msg, Path(self._tmp.name), self.frame_ms)
                elif first:
                    state.record.request = msg
                if not opened:
                    opened = True
                    with self._changing():
                        self.active += 1
                        self.max_active = max(self.max_active, self.active)
                state.apply(msg)
                if hotwords is None and isinstance(msg.get("hotwords"), str):
                    hotwords = parse_hotwords(msg["hotwords"])
                if self._fault == "early" and msg.get("is_speaking") is True:
                    await self._answer_early(ws, state)
                    state = None
                    break
                if msg.get("is_speaking") is False:
                    done, state = state, None
                    try:
                        await self._answer(ws, done, hotwords or {})
                    finally:
                        if opened:
                            opened = False
                            with self._changing():
                                self.active -= 1
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)
            if opened:
                with self._changing():
                    self.active -= 1
            if state is not None:
                state.discard()
            code = ws.close_code
            with self._changing():
                conn.close_code = code
                conn.closed = True

    def _record_message(self, msg: Any, first: bool, fatal: list[str], soft: list[str]) -> None:
        self.messages.append(msg)
        if first and isinstance(msg, dict):
            self.requests.append(msg)
        self.violations.extend(fatal)
        self.violations.extend(soft)

    async def _answer_early(self, ws: ServerConnection, state: _FileState) -> None:
        """The "early" fault: a reply before any audio, then no more reading (the upload stalls unless it is small)."""
        text = dump_reply(build_reply(str(state.params["wav_name"]), []))
        with contextlib.suppress(ConnectionClosed):
            await ws.send(text)
        state.discard()
        with self._changing():
            state.record.sent = True
            self.files.append(state.record)
            self.replies.append(text)
        ws.transport.pause_reading()
        await ws.wait_closed()

    async def _answer(self, ws: ServerConnection, state: _FileState, hotwords: dict[str, int]) -> None:
        if self.instant and state.meter is None and state.record.audio_bytes:
            state.discard()
            state.record.sha256 = state.hash.hexdigest()
            peaks: list[int] | None = [THRESHOLD + 1] * 100  # one 1 s "sentence", no decoding
        else:
            peaks = await asyncio.get_running_loop().run_in_executor(None, state.decode)
        if self.rtf > 0:
            if self._decoding is None:
                self._decoding = asyncio.Semaphore(self.slots)
            faked = self.instant and state.meter is None  # not decoded: about 128 kb/s
            seconds = state.record.audio_bytes / 16000 if faked else len(peaks or []) * self.frame_ms / 1000
            async with self._decoding:  # one request per slot at a time, like the server's decoder threads
                # (a client that leaves ends the wait: the test server has no real decode to finish)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), self.rtf * seconds)
        bursts = detect_bursts(peaks, frame_ms=self.frame_ms) if peaks else []
        if self.model == "sensevoice":  # the C++ server's defaults: "auto" and true (websocket-server.cpp 168-169)
            params = state.params
            lang, itn = str(params.get("svs_lang", "auto")), bool(params.get("svs_itn", True))
            reply = sensevoice_reply(str(params["wav_name"]), bursts, lang, itn, self.language)
        else:
            segments = sentences_for(bursts, next(iter(hotwords), ""))
            duration_ms = len(peaks or []) * self.frame_ms
            if self.habits:  # timed as the server hears the whole audio; a lost stretch then loses its words
                segments = habitual(segments, duration_ms)
            if self._fault == "lose":
                if self.lose_requests is None or self.losing < self.lose_requests:
                    self.losing += 1
                    at = self.lose_at_ms if self.lose_at_ms is not None else duration_ms * 2 // 5
                    segments = lose_stretch(segments, at, at + self.lose_ms)
                elif self.lose_then == "nothing":
                    segments = []
            reply = build_reply(str(state.params["wav_name"]), segments, timestamps=self.timestamps, shape=self.shape)
        record = state.record
        record.bursts, record.reply = bursts, reply
        text = dump_reply(reply)
        if self._fault in SPOILS:
            text = spoiled_reply(self._fault, str(state.params["wav_name"]), sentences_for(bursts))  # type: ignore[arg-type]
        if self._fault == "garbage":
            text = "<html><body>502 Bad Gateway</body></html>\x00not json"
        if self._fault == "slow":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ws.wait_closed(), self.slow_seconds)
        delivered = False
        if self._fault != "hang" and ws.close_code is None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(text)
                delivered = True
        record.sent = delivered and text.startswith("{")
        with self._changing():
            self.files.append(record)
            if delivered:
                self.replies.append(text)


def default_port(environ: Mapping[str, str]) -> int:
    """Where funasr-subs would look: the port of ``FUNASR_SUBS_SERVER`` when it names one, else FunASR's 10095."""
    with contextlib.suppress(ValueError):
        port = urlsplit(environ.get("FUNASR_SUBS_SERVER", "")).port
        if port:
            return port
    return 10095


def _stop_or_more(stopping: list[int], replies: list[str], seen: int) -> bool:
    return bool(stopping) or len(replies) > seen


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.funasr_server --port 10095``: run the test server in the foreground for demos."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=default_port(os.environ),
        help="port on 127.0.0.1 (default: the port of $FUNASR_SUBS_SERVER if set, so funasr-subs finds it; else 10095)",
    )
    parser.add_argument("--tls", action="store_true", help="serve wss:// with a fresh self-signed certificate")
    parser.add_argument("--fault", choices=FAULTS, default=None)
    parser.add_argument("--shape", choices=SHAPES, default="normal")
    parser.add_argument("--no-timestamps", action="store_true", help="act like a server without the timestamp model")
    parser.add_argument(
        "--model", choices=["paraformer", "sensevoice"], default="paraformer", help="sensevoice: tagged text, no times"
    )
    parser.add_argument(
        "--language", default="zh", help="with --model sensevoice: what svs_lang auto hears (zh, yue, en, ja, ko; "
        "several, comma-separated: one per burst in turn)",
    )  # fmt: skip
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--instant", action="store_true", help="do not decode non-pcm audio; answer at once")
    parser.add_argument("--rtf", type=float, default=0.0, help="answer after RTF x the seconds of audio received")
    parser.add_argument("--slots", type=int, default=1, help="with --rtf: requests decoded at once (1)")
    parser.add_argument("--habits", action="store_true", help="time tokens like FunASR: running on into pauses")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections and every reply")
    args = parser.parse_args(argv)
    # quiet by default: it usually runs in the background of the terminal the user works in
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    # Ctrl-C and `kill %1` (SIGTERM) only set a flag under the server's (reentrant) lock and wake the wait below: a
    # KeyboardInterrupt raised at an arbitrary point could leave that lock held and hang the shutdown
    stopping: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = None
        if args.tls:
            cert, key = make_self_signed_cert(Path(tmp))
            ctx = server_ssl_context(cert, key)
            log.info("self-signed certificate: %s (use --ca-file with it, or --insecure)", cert)
        server = FunasrTestServer(
            port=args.port,
            ssl_context=ctx,
            timestamps=not args.no_timestamps,
            model=args.model,
            language=tuple(part.strip() for part in args.language.split(",") if part.strip()) or "zh",
            shape=args.shape,
            slow_seconds=args.slow_seconds,
            instant=args.instant,
            rtf=args.rtf,
            slots=args.slots,
            habits=args.habits,
        )
        server.fault = args.fault

        def stop(signum: int, frame: object) -> None:
            with server._cond:
                stopping.append(signum)
                server._cond.notify_all()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with server:
                log.info("FunASR test server listening on %s (Ctrl-C to stop)", server.url)
                seen = 0
                while not stopping:
                    server.wait_until(functools.partial(_stop_or_more, stopping, server.replies, seen), timeout=3600)
                    for text in server.replies[seen:]:
                        log.info("reply: %s", text)
                    seen = len(server.replies)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())

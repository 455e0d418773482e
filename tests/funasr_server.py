"""A FunASR ``funasr-wss-server`` (offline mode) stand-in for tests: real websockets, energy-based "recognition"."""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

MAX_FRAME = 32_000_000
FRAME_MS = 10
THRESHOLD = 1000  # peak amplitude (of 32767) above which a 10 ms frame counts as "speech"
MERGE_GAP_MS = 150
MIN_BURST_MS = 100
TOKEN_MS = 200
COMMA_AFTER_MS = 2000
POOL = "锄禾日当午汗滴下土谁知盘中餐粒皆辛苦春眠不觉晓处闻啼鸟夜来风雨声花落多少"  # no 达摩院 etc.
SPLIT_MARKS = "，。？、,?"

Fault = Literal["refuse", "hang", "drop", "garbage", "slow"] | None
Shape = Literal[
    "normal",
    "stamp_sents_string",
    "numeric_strings",
    "stamp_sents_empty",
    "timestamp_list",
    "timestamp_int",
    "no_punc",
    "leading_punc",
]
FAULTS = ("refuse", "hang", "drop", "garbage", "slow")
SHAPES = (
    "normal",
    "stamp_sents_string",
    "numeric_strings",
    "stamp_sents_empty",
    "timestamp_list",
    "timestamp_int",
    "no_punc",
    "leading_punc",
)


# ---------------------------------------------------------------- pure parts


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_message(msg: object) -> tuple[list[str], list[str]]:
    """Return (fatal, non_fatal) protocol violations of one text message, as the C++ server would meet them."""
    if not isinstance(msg, dict):
        return [f"message is a JSON {type(msg).__name__}, not an object"], []
    fatal: list[str] = []
    soft: list[str] = []
    for key in ("mode", "wav_name", "wav_format"):
        if key in msg and not isinstance(msg[key], str):
            fatal.append(f"{key} must be a string, got {msg[key]!r}")
    if "audio_fs" in msg and (not _is_int(msg["audio_fs"]) or msg["audio_fs"] <= 0):
        fatal.append(f"audio_fs must be a positive integer, got {msg['audio_fs']!r}")
    for key in ("itn", "is_speaking"):
        if key in msg and not isinstance(msg[key], bool):
            fatal.append(f"{key} must be a boolean, got {msg[key]!r}")
    if "chunk_size" in msg:
        cs = msg["chunk_size"]
        if not (isinstance(cs, list) and len(cs) == 3 and all(_is_int(v) for v in cs)):
            fatal.append(f"chunk_size must be a list of 3 integers, got {cs!r}")
    if "hotwords" in msg:
        hw = msg["hotwords"]
        if not isinstance(hw, str):
            fatal.append(f"hotwords must be a string holding a JSON object, got {type(hw).__name__} {hw!r}")
        else:
            soft.extend(_hotword_problems(hw))
    return fatal, soft


def _hotword_problems(text: str) -> list[str]:
    if not text.strip():
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return [f"hotwords string is not JSON ({text[:60]!r}): hotwords dropped"]
    if not isinstance(parsed, dict):
        return [f"hotwords JSON is not an object ({text[:60]!r}): hotwords dropped"]
    bad = [k for k, v in parsed.items() if not _is_int(v)]
    if bad:
        return [f"hotword weights must be integers (bad: {bad[:5]!r}): all hotwords dropped (#2805)"]
    return []


def parse_hotwords(text: str) -> dict[str, int]:
    """The hotwords the server would use from a ``hotwords`` string ({} when it would drop them)."""
    if _hotword_problems(text) or not text.strip():
        return {}
    parsed: dict[str, int] = json.loads(text)
    return parsed


class PeakMeter:
    """Incremental peak amplitude per 10 ms frame of s16le mono audio at ``rate`` Hz (pure Python, C-speed slices).

    Only every ``step``-th sample is looked at (about 4 kHz): an hour of 16 kHz audio takes under a second.
    """

    def __init__(self, rate: int = 16000) -> None:
        self.rate = rate
        self.step = max(1, rate // 4000)
        self.peaks: list[int] = []
        self._carry = b""
        self._base = 0  # index of the first sample in _carry

    def feed(self, data: bytes) -> None:
        buf = self._carry + data if self._carry else data
        n = len(buf) // 2
        samples = array.array("h")
        samples.frombytes(memoryview(buf)[: n * 2])
        if sys.byteorder == "big":
            samples.byteswap()
        pos = 0
        peaks = self.peaks
        rate, step = self.rate, self.step
        while True:
            end = (len(peaks) + 1) * rate // 100 - self._base
            if end > n:
                break
            frame = samples[pos:end:step]
            peaks.append(max(max(frame), -min(frame)) if frame else 0)
            pos = end
        self._base += pos
        self._carry = bytes(buf[pos * 2 :])

    def finish(self) -> list[int]:
        """Flush a trailing partial frame and return the peaks."""
        n = len(self._carry) // 2
        if n:
            samples = array.array("h")
            samples.frombytes(self._carry[: n * 2])
            if sys.byteorder == "big":
                samples.byteswap()
            frame = samples[:: self.step]
            self.peaks.append(max(max(frame), -min(frame)))
            self._carry = b""
        return self.peaks


def detect_bursts(peaks: list[int], threshold: int = THRESHOLD) -> list[tuple[int, int]]:
    """Loud runs of 10 ms frames as (start_ms, end_ms): gaps < 150 ms merged, runs < 100 ms dropped."""
    runs: list[list[int]] = []
    for k, peak in enumerate(peaks):
        if peak <= threshold:
            continue
        if runs and (k - runs[-1][1] - 1) * FRAME_MS < MERGE_GAP_MS:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return [(a * FRAME_MS, (b + 1) * FRAME_MS) for a, b in runs if (b + 1 - a) * FRAME_MS >= MIN_BURST_MS]


@dataclass(frozen=True)
class Segment:
    """One punctuation-delimited piece: tokens with [start, end] ms and the closing mark."""

    tokens: tuple[str, ...]
    times: tuple[tuple[int, int], ...]
    punc: str


def sentences_for(bursts: Iterable[tuple[int, int]], hotword: str = "") -> list[Segment]:
    """Turn bursts into segments: N = dur // 200 tokens each, a "，" mid-way in bursts over 2 s, "。" at the end."""
    segments: list[Segment] = []
    counter = 0
    hot = _hotword_tokens(hotword)
    for start, end in bursts:
        dur = end - start
        n = max(1, dur // TOKEN_MS)
        times = tuple((start + i * dur // n, start + (i + 1) * dur // n) for i in range(n))
        tokens = [POOL[(counter + i) % len(POOL)] for i in range(n)]
        counter += n
        if hot and not segments:
            tokens[: len(hot)] = hot[:n]
        if dur > COMMA_AFTER_MS and n >= 2:
            half = n // 2
            segments.append(Segment(tuple(tokens[:half]), times[:half], "，"))
            segments.append(Segment(tuple(tokens[half:]), times[half:], "。"))
        else:
            segments.append(Segment(tuple(tokens), times, "。"))
    return segments


def _hotword_tokens(word: str) -> list[str]:
    if not word:
        return []
    if all("\u4e00" <= ch <= "\u9fff" for ch in word):
        return list(word)
    return [word]


def build_reply(
    wav_name: str, segments: list[Segment], *, timestamps: bool = True, shape: Shape = "normal"
) -> dict[str, Any]:
    """The offline server's single reply for one file, as a dict (serialise with ``dump_reply``)."""
    reply: dict[str, Any] = {"is_final": False, "mode": "offline", "wav_name": wav_name}
    if not segments:
        reply["text"] = ""
        return reply
    if shape == "no_punc":
        merged = Segment(tuple(t for s in segments for t in s.tokens), tuple(t for s in segments for t in s.times), "")
        segments = [merged]
    text = "".join("".join(s.tokens) + s.punc for s in segments)
    reply["text"] = text
    if not timestamps:
        return reply
    pairs = [list(t) for s in segments for t in s.times]
    sents: list[dict[str, Any]] = [
        {
            "end": s.times[-1][1],
            "punc": s.punc,
            "start": s.times[0][0],
            "text_seg": " ".join(s.tokens),
            "ts_list": [list(t) for t in s.times],
        }
        for s in segments
    ]
    reply["timestamp"] = json.dumps(pairs, separators=(",", ":"))
    reply["stamp_sents"] = sents
    if shape == "leading_punc":
        reply["text"] = "，" + text
        sents.insert(0, {"end": -1, "punc": "，", "start": -1, "text_seg": "", "ts_list": []})
    elif shape == "numeric_strings":
        for sent in sents:
            sent["start"], sent["end"] = str(sent["start"]), str(sent["end"])
    elif shape == "stamp_sents_string":
        # image 0.4.0 (#1220): a Python-repr-like string with single quotes and string start/end
        items = [
            f"{{'text_seg': '{s['text_seg']}', 'punc': '{s['punc']}', 'start': '{s['start']}', "
            f"'end': '{s['end']}', 'ts_list': {json.dumps(s['ts_list'])}}}"
            for s in sents
        ]
        reply["stamp_sents"] = "[" + ", ".join(items) + "]"
    elif shape == "stamp_sents_empty":
        reply["stamp_sents"] = ""
    elif shape == "timestamp_list":
        reply["timestamp"] = pairs
    elif shape == "timestamp_int":
        reply["timestamp"] = 0
    return reply


def dump_reply(reply: dict[str, Any]) -> str:
    """Serialise like nlohmann::json: keys sorted, compact, UTF-8 kept."""
    return json.dumps(reply, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def ffmpeg_peaks(path: Path) -> list[int] | None:
    """Decode a file to 16 kHz mono s16le with real ffmpeg and meter it; None when ffmpeg decoded nothing."""
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", str(path)]
    argv += ["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"]
    meter = PeakMeter(16000)
    got = 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        err_reader = threading.Thread(target=proc.stderr.read, daemon=True)
        err_reader.start()
        while chunk := proc.stdout.read(1 << 16):
            got += len(chunk)
            meter.feed(chunk)
        proc.wait()
        err_reader.join()
    if proc.returncode != 0 and got == 0:
        log.info("test server: ffmpeg could not decode %s (exit %s)", path, proc.returncode)
        return None
    return meter.finish()


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
    def __init__(self, conn: int, request: dict[str, Any], spool_dir: Path) -> None:
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
        for key in ("wav_format", "wav_name", "itn", "audio_fs"):
            if key in msg:
                self.params[key] = msg[key]

    def add_audio(self, data: bytes) -> None:
        self.record.audio_bytes += len(data)
        self.hash.update(data)
        if self.params["wav_format"] == "pcm":
            if self.meter is None:
                self.meter = PeakMeter(self.params["audio_fs"])
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
            return ffmpeg_peaks(Path(self.spool.name))
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

    ``fault``: None | "refuse" | "hang" | "drop" | "garbage" | "slow" (settable at any time).
    ``shape``: reply shape variant (see SHAPES); ``timestamps=False`` mimics a server without the timestamp model.
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
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.ssl_context = ssl_context
        self.timestamps = timestamps
        self.shape: Shape = shape
        self.slow_seconds = slow_seconds
        self.drop_after_bytes = drop_after_bytes
        self.instant = instant  # benchmarks: skip decoding non-pcm audio, answer at once with one 0-1000 ms sentence
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
        state: _FileState | None = None
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
                    if state is None:
                        assert self._tmp is not None
                        state = _FileState(conn.index, {}, Path(self._tmp.name))
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
                    state = _FileState(conn.index, msg, Path(self._tmp.name))
                elif first:
                    state.record.request = msg
                state.apply(msg)
                if hotwords is None and isinstance(msg.get("hotwords"), str):
                    hotwords = parse_hotwords(msg["hotwords"])
                if msg.get("is_speaking") is False:
                    done, state = state, None
                    await self._answer(ws, done, hotwords or {})
        except ConnectionClosed:
            pass
        finally:
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

    async def _answer(self, ws: ServerConnection, state: _FileState, hotwords: dict[str, int]) -> None:
        if self.instant and state.meter is None and state.record.audio_bytes:
            state.discard()
            state.record.sha256 = state.hash.hexdigest()
            peaks: list[int] | None = [THRESHOLD + 1] * 100  # one 1 s "sentence", no decoding
        else:
            peaks = await asyncio.get_running_loop().run_in_executor(None, state.decode)
        bursts = detect_bursts(peaks) if peaks else []
        reply = build_reply(
            str(state.params["wav_name"]),
            sentences_for(bursts, next(iter(hotwords), "")),
            timestamps=self.timestamps,
            shape=self.shape,
        )
        record = state.record
        record.bursts, record.reply = bursts, reply
        text = dump_reply(reply)
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


def make_self_signed_cert(directory: Path, *, common_name: str = "127.0.0.1", days: int = 30) -> tuple[Path, Path]:
    """Create a self-signed certificate (SAN 127.0.0.1/localhost) with the ``openssl`` CLI: (certfile, keyfile)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI not found: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
    argv += ["-days", str(days), "-subj", f"/CN={common_name}"]
    argv += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(argv, check=True, capture_output=True)
    return cert, key


_CA_CONFIG = """[ ca ]
default_ca = CA_default
[ CA_default ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
copy_extensions = copy
unique_subject = no
[ policy_any ]
commonName = supplied
"""


def make_expired_cert(directory: Path, *, common_name: str = "alibaba") -> tuple[Path, Path]:
    """Like the FunASR docker image's certificate: self-signed, CN=alibaba, expired 2024-06-17 (via ``openssl ca``)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI not found: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.cnf").write_text(_CA_CONFIG, encoding="ascii")
    (directory / "index.txt").write_text("", encoding="ascii")
    (directory / "serial").write_text("01\n", encoding="ascii")
    cert, key = directory / "expired-cert.pem", directory / "expired-key.pem"
    req = ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", "req.csr"]
    req += ["-subj", f"/CN={common_name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(req, check=True, capture_output=True, cwd=directory)
    sign = ["openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", str(key), "-in", "req.csr"]
    sign += ["-out", str(cert), "-startdate", "20230617000000Z", "-enddate", "20240617000000Z"]
    subprocess.run(sign, check=True, capture_output=True, cwd=directory)
    return cert, key


def server_ssl_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A server-side TLS context for ``FunasrTestServer(ssl_context=...)``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.funasr_server --port 10095``: run the test server in the foreground for demos."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=10095)
    parser.add_argument("--tls", action="store_true", help="serve wss:// with a fresh self-signed certificate")
    parser.add_argument("--fault", choices=FAULTS, default=None)
    parser.add_argument("--shape", choices=SHAPES, default="normal")
    parser.add_argument("--no-timestamps", action="store_true", help="act like a server without the timestamp model")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--instant", action="store_true", help="do not decode non-pcm audio; answer at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = server_ssl_context(*make_self_signed_cert(Path(tmp))) if args.tls else None
        server = FunasrTestServer(
            port=args.port,
            ssl_context=ctx,
            timestamps=not args.no_timestamps,
            shape=args.shape,
            slow_seconds=args.slow_seconds,
            instant=args.instant,
        )
        server.fault = args.fault
        with server:
            log.info("FunASR test server listening on %s (Ctrl-C to stop)", server.url)
            seen = 0
            try:
                while True:
                    server.wait_for_replies(seen + 1, timeout=3600)
                    for text in server.replies[seen:]:
                        log.info("reply: %s", text)
                    seen = len(server.replies)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

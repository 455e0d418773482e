"""One file's recognition over the pool: the one function the pipeline calls.

A file goes to one server as one request, or (``--split-minutes``, PCM only) is cut at silences into pieces that go
to different servers at once and whose replies are merged. Servers whose replies have no times (funasr-server's
HTTP API, SenseVoice: backend.py) are sent the file's speech segments one by one, and their text is timed by the
speech heard in each (segments.py); a whole file goes only to servers that give times while there is one.

Each request takes a slot from the pool; a request that fails because of its server is retried alone, on another
server when there is one (a server that timed out or answered garbage is not asked again for that piece). Pieces
wait in memory only while a slot can take them.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from funasr_subs.config import Settings
from funasr_subs.errors import (
    CancelledError,
    ConfigError,
    FunasrSubsError,
    NoTimestampsError,
    ProtocolError,
    ReplyTimeoutError,
    ServerError,
)
from funasr_subs.media.activity import Speech
from funasr_subs.media.vad import Listener
from funasr_subs.model import Transcript
from funasr_subs.protocol import (
    FRAME_BYTES,
    Order,
    parse_reply_counted,
    parse_session_counted,
    split_tokens,
    start_message,
    strip_tags,
)
from funasr_subs.recognition.backend import Backend, Request, WebsocketBackend, is_http
from funasr_subs.recognition.merge import merge_replies
from funasr_subs.recognition.pcmspool import decode_to_file, send_all
from funasr_subs.recognition.pool import Exhausted, Pool, Server
from funasr_subs.recognition.segments import TIMING, Piece, is_untimed, plan_pieces, timed_reply
from funasr_subs.recognition.split import BYTES_PER_MS, SAMPLE_RATE, Chunk, PcmSplitter, SoundMeter, window_ms
from funasr_subs.recognition.verify import SOUND_MS, Sent, reply_problem, suspiciously_empty, text_problem

log = logging.getLogger(__name__)

#: ``--split-minutes`` when it is not set and there is more than one server.
DEFAULT_SPLIT_MINUTES = 10.0


class ChunkStream(Protocol):
    def chunks(self) -> AsyncIterator[bytes]: ...


StreamOpener = Callable[[], AbstractAsyncContextManager[ChunkStream]]


@dataclass(frozen=True)
class AudioSource:
    """What to send: ``open()`` starts the byte stream again for every attempt (ffmpeg, or a raw PCM file)."""

    open: StreamOpener
    wav_format: str  # "pcm" (s16le 16 kHz mono: can be split) or a container the server decodes ("mp4")
    duration_ms: int
    #: A container upload: the same audio as PCM, decoded beside the upload for the speech activity (None: not heard)
    listen: StreamOpener | None = None


@dataclass(frozen=True)
class PieceInfo:
    """Where one piece of the audio went (recorded in the sidecar when a file was split)."""

    offset_ms: int
    duration_ms: int
    server: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset_ms": self.offset_ms,
            "duration_ms": self.duration_ms,
            "server": self.server,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class Recognised:
    reply: dict[str, Any]  # one reply, shaped as one server sends it (merged when split)
    transcript: Transcript  # times relative to the audio sent
    pieces: tuple[PieceInfo, ...]
    speech: Speech | None = None  # heard in the PCM sent, or decoded beside (times relative to it); None: not heard


class FileChunks:
    """A raw PCM file read in frames, with the same interface as FfmpegStream; ``start``/``length`` (bytes): only
    that part of it."""

    def __init__(self, path: Path, start: int = 0, length: int | None = None) -> None:
        self.path = path
        self.start = start
        self.length = length

    async def __aenter__(self) -> FileChunks:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        left = self.length
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            while block := fh.read(FRAME_BYTES if left is None else min(FRAME_BYTES, left)):
                if left is not None:
                    left -= len(block)
                yield block


class MemoryChunks:
    """A piece held in memory, sent in frames."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aenter__(self) -> MemoryChunks:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), FRAME_BYTES):
            yield bytes(view[start : start + FRAME_BYTES])


def transcript_of(reply: Mapping[str, Any]) -> Transcript:
    """The reply parsed (ProtocolError / NoTimestampsError when it is not usable)."""
    return _counted(reply)[0]


def _counted(reply: Mapping[str, Any]) -> tuple[Transcript, Order]:
    """The reply parsed, and what had to be put in order."""
    if "session" in reply:
        return parse_session_counted(reply["session"])
    return parse_reply_counted(reply)


def split_ms(settings: Settings, servers: int) -> int:
    """Target piece length in ms; 0 = no split (the default for one server)."""
    minutes = settings.split_minutes
    if minutes is None:
        minutes = DEFAULT_SPLIT_MINUTES if servers > 1 else 0.0
    return round(minutes * 60_000) if minutes > 0 else 0


def even_target(duration_ms: int, target_ms: int, slots: int) -> int:
    """A piece length that spreads the file evenly over the pool: as many pieces as ``target_ms`` asks for,
    rounded up to a multiple of the slots (a 24-minute file on 4 servers: 4 pieces of 6, not 10 + 10 + 4)."""
    pieces = -(-duration_ms // target_ms)
    pieces = -(-pieces // slots) * slots
    return -(-duration_ms // pieces)


def backend_for(url: str, settings: Settings) -> Backend:
    """The backend that speaks to ``url``: ``http(s)://`` is funasr-server's HTTP API, ``ws(s)://`` the C++ one."""
    if is_http(url):
        from funasr_subs.recognition.httpapi import HttpBackend  # (aiohttp, ~0.1 s, only where it is used)

        return HttpBackend(url, settings)
    return WebsocketBackend(url, settings)


_UNTIMED: set[str] = set()  # websocket servers that answered text without times (SenseVoice), in this process
_UNTIMED_LOCK = threading.Lock()


def _segments_only(urls: list[str], settings: Settings) -> bool:
    """True when every server is sent speech segments (segment-timed): funasr-server, or a websocket server that
    answered text without times before."""
    with _UNTIMED_LOCK:
        return all(backend_for(url, settings).segmented or url in _UNTIMED for url in urls)


class _Untimed(Exception):
    """A whole-file request came back as text without times: the file is recognised again, segment-timed."""

    def __init__(self, url: str, error: NoTimestampsError) -> None:
        super().__init__(error.message)
        self.url = url
        self.error = error


def _fresh(error: FunasrSubsError) -> FunasrSubsError:
    """A new exception like ``error`` (one stored by the pool may be raised by several jobs and threads)."""
    try:
        return type(error)(error.message)
    except TypeError:
        return FunasrSubsError(error.message)


async def _until(cancelled: Callable[[], bool]) -> None:
    """Returns when ``cancelled()`` is true (the caller's token offers nothing to await, so it is polled)."""
    while not cancelled():
        await asyncio.sleep(0.1)


async def recognise(
    audio: AudioSource,
    settings: Settings,
    pool: Pool,
    *,
    wav_name: str,
    on_bytes: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_uploaded: Callable[[], None] | None = None,
) -> Recognised:
    """Recognise ``audio`` on the pool's servers. ``on_bytes(n)``: n bytes sent (negative: an attempt's bytes that
    will be sent again). ``on_uploaded()``: all the audio is sent (a split file: every piece is handed out); it
    may be called again by a retry. With ``settings.speech_activity``, PCM is listened to on its way (the first
    whole pass), or a container upload's ``audio.listen`` beside it, for :attr:`Recognised.speech`. Raises the
    FunasrSubsError of the last failure, or CancelledError."""
    job = _Job(settings, pool, wav_name, on_bytes or (lambda n: None), on_uploaded or (lambda: None))
    work = asyncio.ensure_future(job.run(audio))
    if cancelled is None:
        return await work
    stopper = asyncio.ensure_future(_until(cancelled))
    try:
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if work not in done:
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        raise CancelledError("cancelled; nothing was written")
    return work.result()


class _Job:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        wav_name: str,
        on_bytes: Callable[[int], None],
        on_uploaded: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.on_bytes = on_bytes
        self.on_uploaded = on_uploaded
        self.wav_name = wav_name
        self.listen = settings.speech_activity
        self.speech: Speech | None = None  # from the first pass that sent the whole audio

    def listener(self) -> Listener | None:
        """A listener for a pass over the whole PCM, when speech activity is wanted and not heard yet."""
        return Listener() if self.listen and self.speech is None else None

    def heard(self, speech: Speech) -> None:
        """A pass over the whole audio is complete: its speech activity stands (the first one only)."""
        if self.speech is None:
            self.speech = speech

    def start_message(self, wav_format: str) -> str:
        """The first message of every request (hotwords go with every piece)."""
        s = self.settings
        return start_message(
            wav_name=self.wav_name,
            wav_format=wav_format,
            audio_fs=SAMPLE_RATE,
            itn=s.itn,
            hotwords=s.hotwords,
            svs_lang=s.language,
        )

    async def run(self, audio: AudioSource) -> Recognised:
        urls = [s.url for s in self.pool.servers]
        if audio.wav_format != "pcm" and all(is_http(url) for url in urls):
            raise ConfigError(f"{', '.join(urls)}: funasr-server is sent speech segments cut from PCM: drop --send mp4")
        if audio.wav_format == "pcm" and _segments_only(urls, self.settings):
            return await self._segmented(audio)
        for _ in self.pool.servers:
            try:
                return await self._whole(audio)
            except _Untimed as untimed:
                with _UNTIMED_LOCK:
                    _UNTIMED.add(untimed.url)
                log.info(
                    "%s sends text without times (SenseVoice?): whole files go to servers that give times; when "
                    "none is left, cues are timed by speech activity, each speech segment sent alone", untimed.url,
                )  # fmt: skip
            except ServerError as exc:  # every server that takes whole files failed: the others take segments
                segmenting = [url for url in urls if _segments_only([url], self.settings)]
                if audio.wav_format != "pcm" or not segmenting:
                    raise
                log.info(
                    "%s: %s; its speech segments go one by one to %s instead",
                    self.wav_name, exc.message, ", ".join(segmenting),
                )  # fmt: skip
                break
            if _segments_only([s.url for s in self.pool.servers], self.settings):
                break
        return await self._segmented(audio)

    async def _segmented(self, audio: AudioSource) -> Recognised:
        """Segment-timed (segments.py): the PCM decoded to a temporary file while its speech is heard, then each
        stretch of speech sent alone; text without times is spread over its stretch's speech, real times win."""
        with tempfile.TemporaryDirectory(prefix="funasr-subs-") as folder:
            path = Path(folder) / "audio.pcm"
            speech = await decode_to_file(audio.open, path)
            self.heard(speech)
            pieces = plan_pieces(speech.intervals, path.stat().st_size // BYTES_PER_MS)
            log.debug("%s: %d speech segments to send", self.wav_name, len(pieces))

            async def one(piece: Piece) -> tuple[dict[str, Any], Transcript, PieceInfo]:
                def opener() -> FileChunks:
                    return FileChunks(path, piece.start_ms * BYTES_PER_MS, piece.duration_ms * BYTES_PER_MS)

                return await self._piece(opener, "pcm", piece.start_ms, piece.duration_ms, speech=piece.speech)

            self.on_uploaded()  # (the pieces are read from the file: the recognition stage starts now)
            results = await send_all(pieces, one, self.pool.capacity)
        if not results:
            reply: dict[str, Any] = {"mode": "offline", "text": "", "wav_name": self.wav_name, "timing": TIMING}
            return Recognised(reply, transcript_of(reply), (), self.speech)
        reply = merge_replies([r for r, _, _ in results], [i.offset_ms for _, _, i in results])  # (timing: kept)
        return Recognised(reply, transcript_of(reply), tuple(i for _, _, i in results), self.speech)

    async def _whole(self, audio: AudioSource) -> Recognised:
        target = split_ms(self.settings, len(self.pool))
        if target and audio.wav_format == "pcm" and audio.duration_ms > target + window_ms(target) // 2:
            return await self._split(audio, even_target(audio.duration_ms, target, self.pool.capacity))
        beside = self._beside(audio)
        try:
            reply, transcript, info = await self._piece(audio.open, audio.wav_format, 0, audio.duration_ms, whole=True)
            if beside is not None:
                await self._heard_beside(beside)
        finally:
            if beside is not None:
                await _stopped(beside)
        return Recognised(reply, transcript, (info,), self.speech)

    def _beside(self, audio: AudioSource) -> asyncio.Task[None] | None:
        """A container upload: its PCM decoded and heard beside it (started now; one decode for every attempt)."""
        if audio.listen is None or audio.wav_format == "pcm" or not self.listen or self.speech is not None:
            return None
        return asyncio.ensure_future(self._hear(audio.listen))

    async def _hear(self, open_pcm: StreamOpener) -> None:
        listener = Listener()
        async with open_pcm() as stream:
            async for chunk in stream.chunks():
                listener.feed(chunk)
        self.heard(listener.finish())

    async def _heard_beside(self, beside: asyncio.Task[None]) -> None:
        """The reply is in: the decode beside it finishes (bounded by ffmpeg's stall timeout); its failure is a
        warning, never the job's."""
        try:
            await beside
        except Exception as exc:  # a CancelledError (the job's) goes on
            why = exc.message if isinstance(exc, FunasrSubsError) else f"{type(exc).__name__}: {exc}"
            log.warning("warning: %s: no speech activity (%s); cue edges follow the token times", self.wav_name, why)

    async def _split(self, audio: AudioSource, target_ms: int) -> Recognised:
        splitter = PcmSplitter(target_ms)
        room = asyncio.Semaphore(self.pool.capacity + 1)  # pieces decoded ahead of a free slot: at most one
        tasks: list[asyncio.Task[tuple[dict[str, Any], Transcript, PieceInfo]]] = []

        async def one(chunk: Chunk) -> tuple[dict[str, Any], Transcript, PieceInfo]:
            try:
                return await self._piece(lambda: MemoryChunks(chunk.pcm), "pcm", chunk.offset_ms, chunk.duration_ms)
            finally:
                room.release()

        async def launch(chunks: list[Chunk]) -> None:
            for chunk in chunks:
                await room.acquire()
                for task in tasks:  # a piece that failed for good ends the file now, not after the decode
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        room.release()
                        await task
                tasks.append(asyncio.ensure_future(one(chunk)))

        listener = self.listener()
        try:
            async with audio.open() as stream:
                async for data in stream.chunks():
                    if listener is not None:
                        listener.feed(data)
                    await launch(splitter.feed(data))
            if listener is not None:
                self.heard(listener.finish())
            await launch(splitter.finish())
            self.on_uploaded()
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        reply = merge_replies([r for r, _, _ in results], [i.offset_ms for _, _, i in results])
        pieces = tuple(i for _, _, i in results)
        log.debug("%s: %d pieces on %s", self.wav_name, len(pieces), sorted({p.server for p in pieces}))
        return Recognised(reply, transcript_of(reply), pieces, self.speech)

    async def _piece(
        self,
        open_stream: StreamOpener,
        wav_format: str,
        offset_ms: int,
        duration_ms: int,
        *,
        whole: bool = False,
        speech: tuple[tuple[int, int], ...] | None = None,
    ) -> tuple[dict[str, Any], Transcript, PieceInfo]:
        """One request, retried alone on failure; returns its reply, parsed, and where it went. ``speech``: a
        speech segment's intervals (ms of the piece), over which text without times is spread; without it such
        a reply raises _Untimed.

        A reply that cannot be the answer to what was sent (verify.py) is its server's failure. A reply without
        words for audio with sound is kept, and another server asked: when that one hears words, the first is
        blamed; when it hears none either (music, noise), the empty reply stands."""
        settings, pool = self.settings, self.pool
        start = self.start_message(wav_format)
        reply_timeout = settings.reply_timeout + settings.reply_timeout_ratio * duration_ms / 1000
        budget = max(0, settings.retries) + len(pool) - 1  # failures allowed: each other server gets its chance
        exclude: set[str] = set()
        if speech is None:  # a whole file or a --split-minutes piece: not to a server sent only speech segments
            pcm = wav_format == "pcm"  # (an untimed server is then asked, and says so: NoTimestampsError)
            exclude |= {s.url for s in pool.servers if is_http(s.url) or (pcm and _segments_only([s.url], settings))}
        failures = 0
        last: FunasrSubsError | None = None
        empty: tuple[dict[str, Any], Transcript, PieceInfo, Server] | None = None  # waiting for a second opinion
        while True:
            try:
                patience = 0 if empty is not None else max(0, settings.retries)
                server = await pool.acquire(exclude=frozenset(exclude), patience=patience)
            except Exhausted as exc:
                if empty is not None:
                    return empty[:3]
                raise last if last is not None else _fresh(exc.error) from None
            sent = 0

            def counted(n: int) -> None:
                nonlocal sent
                sent += n
                self.on_bytes(n)

            began = time.monotonic()
            meter = SoundMeter(SOUND_MS) if wav_format == "pcm" else None
            listener = self.listener() if whole and wav_format == "pcm" else None
            try:
                done = self.on_uploaded if whole else None
                reply = await self._send(
                    server, open_stream, wav_format, start, reply_timeout, counted, done, meter, listener
                )
                ours = speech is not None and is_untimed(reply)  # times spread here: nothing of the server's to check
                named = str(reply.get("wav_name") or self.wav_name)
                if ours:
                    text = str(reply.get("text") or "")
                    words = len(split_tokens(strip_tags(text)[0]))
                    too_many = text_problem(words, Sent(self.wav_name, duration_ms))
                    if too_many is not None:
                        raise ProtocolError(f"{server.url} sent a reply that cannot be right: {too_many}")
                    reply = timed_reply(text, speech or (), self.wav_name)
                elif speech is not None and reply.get("text"):
                    with _UNTIMED_LOCK:  # its times win; a server restarted with a timed model is used whole again
                        _UNTIMED.discard(server.url)
                try:
                    transcript, order = _counted(reply)
                except NoTimestampsError as exc:
                    if wav_format != "pcm":  # (its server is not asked again: pool.PERMANENT_ERRORS)
                        raise
                    raise _Untimed(server.url, exc) from None
                facts = Sent(
                    self.wav_name,
                    sent // BYTES_PER_MS if meter is not None else duration_ms,
                    meter.sound_ms if meter is not None else None,
                )
                problem = reply_problem(transcript, order, facts) if not ours else None
                if ours and named != self.wav_name:
                    problem = f"answered for another file ({named[:60]!r}, not {self.wav_name[:60]!r})"
                if problem is not None:
                    raise ProtocolError(f"{server.url} sent a reply that cannot be right: {problem}")
            except ServerError as exc:
                pool.failed(server, exc)
                self.on_bytes(-sent)
                failures += 1
                last = exc
                if isinstance(exc, ReplyTimeoutError) or not exc.retryable:
                    exclude.add(server.url)  # busy with it still, or it would answer the same
                if failures > budget:
                    if empty is not None:
                        return empty[:3]
                    raise
                log.info("%s: %s; sending it again", self.wav_name, exc.message)
                continue
            except BaseException:
                pool.release(server)
                raise
            pool.succeeded(server, audio_ms=duration_ms, seconds=time.monotonic() - began)
            info = PieceInfo(offset_ms, duration_ms, server.url, failures + 1)
            if empty is None and len(pool) > 1 and suspiciously_empty(transcript, facts):
                log.info(
                    "%s: %s heard no words in audio with sound (from %s); asking another server",
                    self.wav_name, server.url, _clock(offset_ms),
                )  # fmt: skip
                empty = (reply, transcript, info, server)
                exclude.add(server.url)
                self.on_bytes(-sent)
                continue
            if empty is not None and transcript.tokens:
                quiet = empty[3]
                pool.blame(
                    quiet,
                    ProtocolError(f"{quiet.url} answered no words for audio in which {server.url} heard speech"),
                )
            return reply, transcript, info

    async def _send(
        self,
        server: Server,
        open_stream: StreamOpener,
        wav_format: str,
        start: str,
        reply_timeout: float,
        on_bytes: Callable[[int], None],
        uploaded: Callable[[], None] | None,
        meter: SoundMeter | None,
        listener: Listener | None,
    ) -> dict[str, Any]:
        s = self.settings
        send_timeout = s.reply_timeout if s.reply_timeout > 0 else reply_timeout
        request = Request(self.wav_name, wav_format, start, reply_timeout, send_timeout)
        # ffmpeg first: it starts decoding while the connection is made
        async with open_stream() as stream:
            chunks = _then(stream.chunks(), uploaded, meter, listener, self.heard)
            return await backend_for(server.url, s).send(request, chunks, on_bytes)


async def _then(
    chunks: AsyncIterator[bytes],
    done: Callable[[], None] | None,
    meter: SoundMeter | None = None,
    listener: Listener | None = None,
    heard: Callable[[Speech], None] = lambda speech: None,
) -> AsyncIterator[bytes]:
    """``chunks`` (each fed to ``meter`` and ``listener`` too), then ``heard(speech)`` and ``done()`` once the last
    one has been sent."""
    async for chunk in chunks:
        if meter is not None:
            meter.feed(chunk)
        if listener is not None:
            listener.feed(chunk)
        yield chunk
    if listener is not None:
        heard(listener.finish())
    if done is not None:
        done()


async def _stopped(task: asyncio.Task[None]) -> None:
    """``task`` ended (cancelled when it still runs: its ffmpeg is killed), and what it raised collected."""
    if not task.done():
        task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: asyncio does not log it as lost; _heard_beside has reported it


def _clock(ms: int) -> str:
    return f"{ms // 60_000}:{ms // 1000 % 60:02d}"


__all__ = [
    "BYTES_PER_MS",
    "AudioSource",
    "FileChunks",
    "PieceInfo",
    "Recognised",
    "recognise",
    "split_ms",
    "transcript_of",
]

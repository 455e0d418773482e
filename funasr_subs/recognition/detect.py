"""Which language is spoken: the first 30 s of a file sent as one request with ``svs_lang=auto`` (SenseVoice tells
the language of each speech segment; language.py reads it). whisper detects from its first 30 s too
(whisper-asr-webservice's ``language_detection``: ``whisper.pad_or_trim(audio)``).

The request goes through the pool like any piece of a file: a slot, a retry on another server when its server fails
(never more than one at a time), the pool told how it went."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from funasr_subs.config import Settings
from funasr_subs.errors import CancelledError, FunasrSubsError, ReplyTimeoutError, ServerError
from funasr_subs.media.ffmpeg import FfmpegStream, pcm_args
from funasr_subs.protocol import FRAME_BYTES, start_message
from funasr_subs.recognition.backend import Request
from funasr_subs.recognition.language import Spoken, spoken_language
from funasr_subs.recognition.pool import Exhausted, Pool
from funasr_subs.recognition.run import AudioSource, backend_for
from funasr_subs.recognition.split import BYTES_PER_MS, SAMPLE_RATE
from funasr_subs.recognition.stretch import pcm_file_source

log = logging.getLogger(__name__)

#: How much of the start of a file is listened to.
DETECT_MS = 30_000


def detection_source(path: Path, *, raw_pcm: bool) -> AudioSource:
    """The first :data:`DETECT_MS` of ``path``: read from a raw PCM file (s16le 16 kHz mono), else decoded by an
    ffmpeg that stops there (as stretch.stretch_source, but a file may be shorter: no length is expected of it)."""
    if raw_pcm:
        return pcm_file_source(path, 0, min(DETECT_MS, path.stat().st_size // BYTES_PER_MS))
    argv = pcm_args(path, None, pad_start=True, span=(0, DETECT_MS))

    def open_stream() -> FfmpegStream:
        return FfmpegStream(argv, path, chunk_bytes=FRAME_BYTES)

    return AudioSource(open_stream, "pcm", DETECT_MS)


async def detect_language(
    audio: AudioSource,
    settings: Settings,
    pool: Pool,
    *,
    wav_name: str,
    cancelled: Callable[[], bool] | None = None,
) -> Spoken | None:
    """The language spoken in ``audio`` (sent whole, as one request, ``svs_lang=auto``); None when no speech was
    heard in a language SenseVoice tells. Raises the FunASR error of the last failure, or CancelledError."""
    work = asyncio.ensure_future(_ask(audio, settings, pool, wav_name))
    stopper = asyncio.ensure_future(_until(cancelled)) if cancelled is not None else None
    try:
        await asyncio.wait({work} | ({stopper} if stopper else set()), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stopper is not None:
            stopper.cancel()
    if not work.done():
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        raise CancelledError("cancelled: the language was not detected")
    return work.result()


async def _until(cancelled: Callable[[], bool]) -> None:
    while not cancelled():
        await asyncio.sleep(0.1)


async def _ask(audio: AudioSource, settings: Settings, pool: Pool, wav_name: str) -> Spoken | None:
    auto = settings.replace(language="auto")  # (funasr-server is asked with language=auto too: httpapi.py)
    start = start_message(wav_name=wav_name, wav_format="pcm", audio_fs=SAMPLE_RATE, itn=settings.itn, svs_lang="auto")
    reply_timeout = settings.reply_timeout + settings.reply_timeout_ratio * audio.duration_ms / 1000
    send_timeout = settings.reply_timeout if settings.reply_timeout > 0 else reply_timeout
    request = Request(wav_name, audio.wav_format, start, reply_timeout, send_timeout)
    budget = max(0, settings.retries) + len(pool) - 1
    exclude: set[str] = set()
    failures = 0
    while True:
        try:
            server = await pool.acquire(exclude=frozenset(exclude))
        except Exhausted as exc:
            raise _fresh(exc.error) from None
        began = time.monotonic()
        try:
            async with audio.open() as stream:
                reply = await backend_for(server.url, auto).send(request, stream.chunks(), lambda n: None)
        except ServerError as exc:
            pool.failed(server, exc)
            failures += 1
            if isinstance(exc, ReplyTimeoutError) or not exc.retryable:
                exclude.add(server.url)
            if failures > budget:
                raise
            log.info("%s: %s; asking again", wav_name, exc.message)
            continue
        except BaseException:
            pool.release(server)
            raise
        pool.succeeded(server, audio_ms=audio.duration_ms, seconds=time.monotonic() - began)
        spoken = spoken_language(reply)
        log.debug("%s: %s heard %s", wav_name, server.url, spoken)
        return spoken


def _fresh(error: FunasrSubsError) -> FunasrSubsError:
    """A new exception like ``error`` (the pool keeps one that other jobs and threads may raise too)."""
    try:
        return type(error)(error.message)
    except TypeError:
        return FunasrSubsError(error.message)

"""One stretch of a file sent as its own request; a reply's lost stretches sent again that way and merged in.

:func:`recognise_stretch` is the reusable part: any stretch of the audio (a lost one here; a speech segment for a
backend without timestamps) goes through the pool like a piece of a split file — a slot, retries on another server,
the checks of ``verify.py`` — and comes back on the whole file's timeline. :func:`stretch_source` makes its audio
from the media file alone: ffmpeg seeks to the stretch (no decode of what comes before it, nothing kept in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from funasr_subs.config import Settings
from funasr_subs.errors import CancelledError, FunasrSubsError
from funasr_subs.media.activity import Interval
from funasr_subs.media.ffmpeg import FfmpegStream, pcm_args
from funasr_subs.media.info import AudioStream
from funasr_subs.protocol import FRAME_BYTES
from funasr_subs.recognition.lost import Recovery, in_pieces, lost_stretches, spans_text, with_margin
from funasr_subs.recognition.merge import insert_replies, shift_reply
from funasr_subs.recognition.pcmspool import send_all
from funasr_subs.recognition.pool import Pool
from funasr_subs.recognition.run import AudioSource, FileChunks, PieceInfo, Recognised, recognise, transcript_of
from funasr_subs.recognition.split import BYTES_PER_MS

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``source_for(start_ms, end_ms)``: the audio of that stretch of the audio sent (its own timeline).
SourceFor = Callable[[int, int], AudioSource]


def stretch_source(media: Path, stream: AudioStream | None, start_ms: int, end_ms: int) -> AudioSource:
    """PCM of ``start_ms``-``end_ms`` of ``media``'s (the player's) timeline, ``stream`` decoded by an ffmpeg that
    seeks there; opened only as the single media file it is (``media/inputs.py``)."""
    argv = pcm_args(media, stream, pad_start=True, span=(start_ms, end_ms))
    duration_ms = max(0, end_ms - start_ms)
    expect = duration_ms * BYTES_PER_MS

    def open_stream() -> FfmpegStream:
        return FfmpegStream(argv, media, chunk_bytes=FRAME_BYTES, expect_bytes=expect)

    return AudioSource(open_stream, "pcm", duration_ms)


def pcm_file_source(path: Path, start_ms: int, end_ms: int) -> AudioSource:
    """``start_ms``-``end_ms`` of a raw PCM file (s16le 16 kHz mono), read from there."""
    start = max(0, start_ms) * BYTES_PER_MS
    length = max(0, end_ms - start_ms) * BYTES_PER_MS
    return AudioSource(lambda: FileChunks(path, start, length), "pcm", length // BYTES_PER_MS)


async def recognise_stretch(
    audio: AudioSource,
    offset_ms: int,
    settings: Settings,
    pool: Pool,
    *,
    wav_name: str,
    cancelled: Callable[[], bool] | None = None,
) -> Recognised:
    """``audio`` (one stretch of a file, starting ``offset_ms`` into it) recognised as its own request on the pool,
    never split and not listened to; its reply, transcript and piece moved by ``offset_ms`` onto the file's
    timeline. Raises as :func:`~funasr_subs.recognition.run.recognise` does."""
    alone = settings.replace(speech_activity=False, split_minutes=0.0)
    got = await recognise(audio, alone, pool, wav_name=wav_name, cancelled=cancelled)
    pieces = tuple(PieceInfo(offset_ms, p.duration_ms, p.server, p.attempts) for p in got.pieces)
    return Recognised(shift_reply(got.reply, offset_ms), got.transcript.shifted(offset_ms), pieces, None)


async def recover(
    result: Recognised,
    duration_ms: int,
    settings: Settings,
    pool: Pool,
    source_for: SourceFor,
    *,
    wav_name: str,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[Recognised, Recovery | None]:
    """The stretches of ``result``'s speech without words (``lost.py``) sent again on their own, with a margin
    (``settings.resend_lost``; all at once, as the pool's slots allow), and their words merged into the reply.
    Returns the result with them, and what was recovered and what stays lost (None: nothing was lost; times of the
    audio sent). A reply without any word is left alone (music, or silence: ``run.py`` asks another server when it
    is suspicious; the pipeline says there was no speech). A stretch longer than ``lost.MOST_MS`` goes in pieces
    cut at pauses. A request that fails leaves its stretch lost (a warning says why); CancelledError is raised."""
    if result.speech is None or not result.transcript.tokens:  # no words at all: no speech, or another failure
        return result, None
    found = lost_stretches(result.speech.intervals, _times(result))
    if not found:
        return result, None
    if not settings.resend_lost:
        return result, Recovery(lost=tuple(found), resent=False)
    them = "it" if len(found) == 1 else "each"
    log.info("%s: no words for %s; sending %s again on its own", wav_name, spans_text(found), them)

    async def one(piece: Interval) -> Recognised | None:
        lo, hi = with_margin(piece, duration_ms)
        try:
            return await recognise_stretch(
                source_for(lo, hi), lo, settings, pool, wav_name=wav_name, cancelled=cancelled
            )
        except CancelledError:
            raise
        except FunasrSubsError as exc:
            log.warning("warning: %s: %s could not be sent again (%s)", wav_name, spans_text([piece]), exc.message)
            return None

    speech = result.speech.intervals
    sends = [(stretch, piece) for stretch in found for piece in in_pieces(stretch, speech)]
    again = await send_all([piece for _, piece in sends], one, pool.capacity)
    back = [(stretch, got) for (stretch, _), got in zip(sends, again, strict=True) if got and got.transcript.tokens]
    if not back:
        return result, Recovery(lost=tuple(found))
    reply = insert_replies(result.reply, [(got.reply, got.pieces[0].offset_ms) for _, got in back])
    merged = Recognised(reply, transcript_of(reply), result.pieces, result.speech)
    still = lost_stretches(speech, _times(merged))
    recovered = _minus(sorted({stretch for stretch, _ in back}), still)
    return merged, Recovery(recovered=tuple(recovered), lost=tuple(still))


def _times(result: Recognised) -> list[Interval]:
    return [(t.start_ms, t.end_ms) for t in result.transcript.tokens]


def _minus(spans: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    """``spans`` without the parts ``holes`` cover (both sorted, each without overlaps)."""
    out: list[Interval] = []
    for start, end in spans:
        cursor = start
        for lo, hi in holes:
            if hi <= cursor or lo >= end:
                continue
            if lo > cursor:
                out.append((cursor, lo))
            cursor = max(cursor, hi)
        if cursor < end:
            out.append((cursor, end))
    return out

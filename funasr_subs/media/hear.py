"""Speech activity of a media file on its own, without a server: ffmpeg decodes the chosen audio track to PCM and
the detector of :mod:`funasr_subs.media.vad` hears it (``sync --method pattern`` on media without a sidecar)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from funasr_subs.media.activity import Speech
from funasr_subs.media.ffmpeg import FfmpegStream, expected_bytes, pcm_args
from funasr_subs.media.probe import BYTES_PER_SECOND, audio_offset_ms, probe_async, select_audio
from funasr_subs.media.vad import Listener

log = logging.getLogger(__name__)

#: PCM read from ffmpeg at a time (2 s).
CHUNK_BYTES = 2 * BYTES_PER_SECOND


@dataclass(frozen=True)
class Heard:
    """The speech heard in a media file, on the player's timeline, and where its audio ends (ms)."""

    speech: Speech
    end_ms: int


async def hear(media: Path, track: str | None = None) -> Heard:
    """Decode ``media``'s audio (``track`` as ``--audio-track`` takes it) and hear the speech in it. Every wait is
    bounded (ffprobe's timeout, ffmpeg's stall timeout); ffmpeg ends on any exit."""
    info = await probe_async(media)
    stream = select_audio(info, track)
    offset = audio_offset_ms(info, stream)
    listener = Listener()
    async with FfmpegStream(
        pcm_args(media, stream),
        media,
        chunk_bytes=CHUNK_BYTES,
        expect_bytes=expected_bytes(info, stream, "pcm"),
    ) as decoded:
        async for chunk in decoded.chunks():
            listener.feed(chunk)
        heard_ms = decoded.bytes_read * 1000 // BYTES_PER_SECOND
    speech = listener.finish()
    log.debug("%s: %d stretches of speech heard in %d ms of audio", media, len(speech.intervals), heard_ms)
    return Heard(speech.shifted(offset), offset + heard_ms)

"""Media → the audio to send: which stream, the ffmpeg command that makes it, and where it starts.

Most files need one process: ffmpeg is started on ffmpeg's own pick of audio stream and reports what the file holds
before it writes any audio (:mod:`~funasr_subs.media.ffreport`). The facts are checked (``vet``: the skip rules, a
writable folder) and the stream the user or the skip rules want is chosen; when that is the one ffmpeg took, the running
ffmpeg is the first attempt's audio, otherwise it is stopped and the chosen stream's command runs instead. A late
audio start comes out of the same run: PCM is padded with silence to the container's timeline, and the mp4 we send
carries it as an empty edit (read from its head: :mod:`funasr_subs.media.mp4head`).

Containers whose timestamps ffmpeg shifts (MPEG-TS/PS, FLV: ``media.PROBED_SUFFIXES``, or any file whose report
shows such a container) are probed by ffprobe, as before: its stream start times are the only reliable source
there. So is, for PCM, a file of several streams whose container does not start at 0 (padding counts from 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from funasr_subs.errors import NoAudioError
from funasr_subs.media.ffmpeg import FfmpegStream, mp4_args, pcm_args
from funasr_subs.media.info import AudioStream, MediaInfo
from funasr_subs.media.probe import PROBED_SUFFIXES, audio_offset_ms, probe_async, select_audio

log = logging.getLogger(__name__)

#: ``vet(info)``: raises to stop before any audio is sent (a skip rule, an unwritable folder).
Vet = Callable[[MediaInfo], None]
#: ``prefer(info)``: the track to take (as ``--audio-track`` takes it), None for ffmpeg's own pick.
Prefer = Callable[[MediaInfo], str | None]


@dataclass(frozen=True)
class Opened:
    """The audio chosen for one file."""

    info: MediaInfo
    stream: AudioStream
    argv: list[str]  # the ffmpeg command of every attempt not made by ``running`` (a retry, another server)
    offset_ms: int  # how late the audio starts, when known now (ffprobe); 0 when it is padded or in the mp4 head
    delay_in_head: bool  # --send mp4 without ffprobe: the start delay is the empty edit of the mp4's head
    running: FfmpegStream | None  # started already with ``argv`` (its report read): the first attempt's audio
    probed: bool  # the facts came from ffprobe


def _args(media: Path, stream: AudioStream | None, send: str, *, padded: bool, report: bool = False) -> list[str]:
    if send == "pcm":
        return pcm_args(media, stream, pad_start=padded, report=report)
    return mp4_args(media, stream, report=report)


def first_args(media: Path, send: str) -> list[str] | None:
    """The first ffmpeg command for ``media`` (ffmpeg's own pick of stream, reporting its input), or None for a
    file that goes to ffprobe first. ``transcribe`` starts it early (:mod:`funasr_subs.media.early`)."""
    if media.suffix.lower() in PROBED_SUFFIXES:
        return None
    return _args(media, None, send, padded=True, report=True)


async def open_audio(
    media: Path,
    send: str,
    track: str | None,
    prefer: Prefer,
    vet: Vet,
    chunk_bytes: int,
    started: Callable[[], None] = lambda: None,
) -> Opened:
    """Find out what ``media`` holds and choose its audio (see the module docstring). ``started()`` is called once
    ffmpeg (or ffprobe) runs: work started there overlaps its start-up. Raises NotMediaError, NoAudioError, or
    whatever ``vet`` raises; never leaves an ffmpeg running when it raises."""
    argv = first_args(media, send)
    if argv is None:
        started()
        return await _probed(media, send, track, prefer, vet)
    running = FfmpegStream(argv, media, chunk_bytes=chunk_bytes, report=True)
    await running.__aenter__()
    try:
        started()
        report = await running.report()
        if report is None:  # an ffmpeg whose report this reader does not understand: ffprobe says it
            await running.close()
            return await _probed(media, send, track, prefer, vet)
        info = report.info
        log.debug(
            "%s: ffmpeg reports %s, %d audio stream(s), took #%s",
            media,
            info.format_name,
            len(info.audio),
            report.mapped,
        )
        if not info.audio:
            raise NoAudioError("has no audio stream: nothing to transcribe", path=media)
        # the padding counts from the container's start at 0 (see media.pcm_args); a container that starts
        # elsewhere (an MP3's encoder delay, an Opus pre-skip, a video stream before 0) is not padded: with one
        # stream its audio starts where the file does, with more the offsets come from ffprobe, as they always have
        alone = len(info.audio) == 1 and info.streams == 1
        padded = send == "pcm" and info.start_ms == 0
        if not report.timeline_known or (send == "pcm" and info.start_ms != 0 and not alone):
            log.debug("%s: %s from %d ms: the audio start comes from ffprobe", media, info.format_name, info.start_ms)
            await running.close()
            return await _probed(media, send, track, prefer, vet)
        vet(info)
        wanted = track if track is not None else prefer(info)
        mapped = next((a for a in info.audio if a.index == report.mapped), None)
        stream = mapped if wanted is None and mapped is not None else select_audio(info, wanted)
        keep = stream is mapped and (padded if send == "pcm" else stream.codec == "aac")
        if not keep:  # another stream, a codec the mp4 upload needs other options for, or no padding after all
            log.debug("%s: ffmpeg started again for stream #%s (it took #%s)", media, stream.index, report.mapped)
            await running.close()
        return Opened(
            info=info,
            stream=stream,
            argv=_args(media, stream, send, padded=padded),
            offset_ms=0,
            delay_in_head=send == "mp4",
            running=running if keep else None,
            probed=False,
        )
    except BaseException:
        await running.close()
        raise


async def _probed(media: Path, send: str, track: str | None, prefer: Prefer, vet: Vet) -> Opened:
    info = await probe_async(media)  # bounded, and killed at once when the job is cancelled
    vet(info)
    stream = select_audio(info, track if track is not None else prefer(info))
    return Opened(
        info=info,
        stream=stream,
        argv=_args(media, stream, send, padded=False),
        offset_ms=audio_offset_ms(info, stream),
        delay_in_head=False,
        running=None,
        probed=True,
    )


@dataclass(frozen=True)
class Decode:
    """A PCM decode of the chosen stream beside an upload in another form (``--send mp4``: the speech activity)."""

    argv: list[str]
    offset_ms: int  # where its first sample is on the media's timeline


def pcm_beside(media: Path, opened: Opened) -> Decode | None:
    """The PCM the ``--send pcm`` path would send for ``opened`` (same stream, same padding to the container's
    timeline, same one-media-file input options), to be heard beside an mp4 upload; None where that path would ask
    ffprobe for the start of the audio first (several streams in a container that does not start at 0)."""
    info, stream = opened.info, opened.stream
    if opened.probed:
        return Decode(pcm_args(media, stream), opened.offset_ms)
    if info.start_ms == 0:
        return Decode(pcm_args(media, stream, pad_start=True), 0)
    if len(info.audio) == 1 and info.streams == 1:  # its audio starts where the file does
        return Decode(pcm_args(media, stream), 0)
    log.debug("%s: %s from %d ms: speech activity is not heard beside the mp4", media, info.format_name, info.start_ms)
    return None

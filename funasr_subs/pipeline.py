"""The one orchestrator: media → audio → recognition → cues → writers. It alone writes files."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from funasr_subs import plugins, skiprules, speedbook, warmup
from funasr_subs.config import Settings, format_suffix
from funasr_subs.cues import build_cues
from funasr_subs.errors import (
    CancelledError,
    FunasrSubsError,
    MediaNotFoundError,
    NoSpeechError,
    NotMediaError,
    OutputError,
    OutputExistsError,
)
from funasr_subs.media.activity import Speech
from funasr_subs.media.audio import Vet, open_audio, pcm_beside
from funasr_subs.media.ffmpeg import FfmpegStream, expected_bytes
from funasr_subs.media.info import MediaInfo
from funasr_subs.media.mp4head import Priming, strip_priming
from funasr_subs.media.probe import BYTES_PER_SECOND, probe
from funasr_subs.model import Result, Timings, Transcript
from funasr_subs.names import shown
from funasr_subs.progress import RecognitionWait
from funasr_subs.protocol import FRAME_BYTES, gc_paused
from funasr_subs.recognition.lost import Recovery, spans_text
from funasr_subs.recognition.pool import Pool
from funasr_subs.recognition.run import AudioSource, FileChunks, recognise
from funasr_subs.recognition.stretch import pcm_file_source, recover, stretch_source
from funasr_subs.sidecar import Sidecar, media_stamp, merged_outputs, sidecar_path_for, try_read_sidecar
from funasr_subs.writers import (
    atomic_write_text,
    check_name_fits,
    check_replaceable,
    clean_stale_temps,
    digest,
    render,
)

log = logging.getLogger(__name__)

#: ``progress(stage, fraction)``; stages in order: "probe", "upload", "recognise", "write" (fraction 0.0-1.0).
ProgressCallback = Callable[[str, float], None]
STAGES = ("probe", "upload", "recognise", "write")


class CancelToken(Protocol):
    """Anything with ``is_set()`` (e.g. ``threading.Event``): when it returns True the job stops cleanly."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Recognition:
    """What the server said about one file, before any file is written."""

    transcript: Transcript  # times already shifted by offset_ms
    reply: dict[str, Any]
    offset_ms: int = 0
    duration_ms: int = 0
    audio: dict[str, Any] = field(default_factory=dict)
    speech: Speech | None = None  # speech heard in the audio sent, in the media's timeline (None: not listened)
    recovery: Recovery | None = None  # lost stretches sent again, and what stays lost (media timeline; None: none)


class _Progress:
    """Calls the user's callback, never letting it break the job (a failing callback is logged once)."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.failed = False

    def __call__(self, stage: str, fraction: float) -> None:
        if self.callback is None or self.failed:
            return
        try:
            self.callback(stage, min(1.0, max(0.0, fraction)))
        except Exception:
            self.failed = True
            log.warning("progress callback raised; it is ignored for the rest of this job", exc_info=True)


def _check_cancel(cancel: CancelToken | None, media: Path) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled; nothing was written", path=media)


def output_paths(media: Path, settings: Settings) -> dict[str, Path]:
    """Where each requested format goes: ``<stem>.<lang>.<ext>`` next to the media (or in --output-dir)."""
    folder = settings.output_dir if settings.output_dir is not None else media.parent
    tag = f".{settings.output_lang}" if settings.output_lang else ""
    return {fmt: folder / f"{media.stem}{tag}.{format_suffix(fmt)}" for fmt in settings.formats}


def is_up_to_date(media_path: Path | str, settings: Settings) -> bool:
    """True when every requested subtitle exists and the sidecar matches the media's current size and mtime."""
    media = Path(media_path)
    sidecar = try_read_sidecar(sidecar_path_for(media, settings.output_dir), reply=False)
    if sidecar is None or not sidecar.matches(media):
        return False
    return all(p.exists() for p in output_paths(media, settings).values())


def _blocking_output(media: Path, settings: Settings, previous: Sidecar | None) -> Path | None:
    """The first existing subtitle we may not replace (a user's file), or None."""
    if settings.overwrite:
        return None
    for path in output_paths(media, settings).values():
        taken = path.exists() or path.is_symlink()  # a dangling link (a drive not mounted now) is the user's too
        if taken and not (previous is not None and previous.wrote(path)):
            return path
    return None


def _may_replace(path: Path, settings: Settings, previous: Sidecar | None) -> bool:
    """Asked again at write time: a subtitle the user saved while the job ran is theirs."""
    return settings.overwrite or (previous is not None and previous.wrote(path))


def _skip_reason(media: Path, settings: Settings, previous: Sidecar | None) -> str | None:
    """Why the file is skipped (a subtitle of the user's in the way, or up to date), or None to transcribe it."""
    blocker = _blocking_output(media, settings, previous)
    if blocker is not None:
        return f"{blocker.name} exists and was not written by funasr-subs (use --overwrite to replace it)"
    if not settings.overwrite and previous is not None and is_up_to_date(media, settings):
        return "subtitles are up to date (use --overwrite to redo)"
    return None


def skip_reason(media_path: Path | str, settings: Settings, *, rules: bool = True) -> str | None:
    """What :func:`generate_subtitles` would decide before contacting the server, without doing anything: why the
    file would be skipped, or None when it would be transcribed (``--dry-run``). ``rules``: the skip rules too
    (they probe the file); ``transcribe`` does a file they reject, so its dry run leaves them out."""
    media = Path(media_path)
    previous = try_read_sidecar(sidecar_path_for(media, settings.output_dir), reply=False)
    reason = _skip_reason(media, settings, previous)
    if reason is None and rules:
        try:
            reason = _rule_skip(media, settings, previous, output_paths(media, settings))
        except FunasrSubsError:  # not media, no audio ...: the real run reports it
            return None
    return reason


# --- recognition ------------------------------------------------------------------------------------------
async def _recognise(
    media: Path,
    settings: Settings,
    *,
    raw_pcm: bool,
    progress: _Progress,
    cancel: CancelToken | None,
    pool: Pool | None,
    vet: Vet | None = None,
) -> Recognition:
    """Send one file and parse the reply. ``vet(info)`` sees the media facts before any audio is sent and may raise
    to stop there (the skip rules; see :func:`_generate`)."""
    audio: dict[str, Any]
    priming = [Priming()]  # --send mp4: the encoder delay the server will decode as audio (see mp4head)
    first: list[FfmpegStream | None] = [None]  # an ffmpeg started to report the facts, until an attempt takes it
    listen: Callable[[], Any] | None = None  # --send mp4: the PCM decode heard beside the upload
    listen_offset = 0  # where that PCM starts on the media's timeline
    if raw_pcm:
        size = media.stat().st_size
        duration_ms = size * 1000 // BYTES_PER_SECOND
        offset = 0
        wav_format = "pcm"
        total = size

        def open_stream() -> Any:
            return FileChunks(media)

        def stretch(start_ms: int, end_ms: int) -> AudioSource:
            return pcm_file_source(media, start_ms, end_ms)

        audio = {"raw_pcm": True}
    else:
        send = settings.send

        def prefer(info: MediaInfo) -> str | None:  # several streams: the model's language first
            if "audio-language" not in settings.skip:
                return None
            return skiprules.preferred_track(info, _audio_code(settings))

        def warm() -> None:  # what the cues will need, loaded while ffmpeg starts and the server works
            warmup.warm_up(chinese=settings.profile == "zh", listen=settings.speech_activity)

        opened = await open_audio(media, send, settings.audio_track, prefer, vet or _no_vet, FRAME_BYTES, warm)
        info, stream = opened.info, opened.stream
        offset = opened.offset_ms
        duration_ms = info.duration_ms
        wav_format = "pcm" if send == "pcm" else "mp4"
        total = max(1, expected_bytes(info, stream, send))
        pcm_bytes = max(0, info.duration_ms - offset) * BYTES_PER_SECOND // 1000 if send == "pcm" else 0
        # Opus's decoder applies its pre-skip itself (from the dOps box): its edit list is left alone
        zero_priming = stream.codec != "opus"

        def read_head(head: bytes) -> bytes:
            patched, found = strip_priming(head, zero=zero_priming)
            # the start delay (an empty edit) counts only when ffprobe did not give the offset already
            priming[0] = found if opened.delay_in_head else dataclasses.replace(found, delay_ms=0)
            return patched

        head_filter = read_head if send == "mp4" else None
        first[0] = opened.running

        def open_stream() -> Any:
            running, first[0] = first[0], None
            if running is not None:  # the ffmpeg that reported the facts: its audio is this attempt's
                running.expect_bytes, running.head_filter = pcm_bytes, head_filter
                return running
            return FfmpegStream(
                opened.argv, media, chunk_bytes=FRAME_BYTES, expect_bytes=pcm_bytes, head_filter=head_filter
            )

        def stretch(start_ms: int, end_ms: int) -> AudioSource:  # of the media's timeline
            return stretch_source(media, stream, start_ms, end_ms)

        beside = pcm_beside(media, opened) if send == "mp4" and settings.speech_activity else None
        if beside is not None:
            listen_offset = beside.offset_ms

            def listen(argv: list[str] = beside.argv) -> Any:
                return FfmpegStream(argv, media, chunk_bytes=FRAME_BYTES)

        audio = {"stream": stream.position, "codec": stream.codec, "language": stream.language}
        if opened.probed:
            audio |= {"start_ms": stream.start_ms, "container_start_ms": info.start_ms}
    try:
        return await _send(
            media,
            settings,
            open_stream,
            wav_format,
            duration_ms,
            offset,
            total,
            audio,
            progress,
            cancel,
            pool,
            priming,
            stretch,
            listen=listen,
            listen_offset=listen_offset,
        )
    finally:
        if first[0] is not None:  # no attempt took the ffmpeg that reported the facts (cancelled, no server)
            await first[0].close()


async def _send(
    media: Path,
    settings: Settings,
    open_stream: Callable[[], Any],
    wav_format: str,
    duration_ms: int,
    offset: int,
    total: int,
    audio: dict[str, Any],
    progress: _Progress,
    cancel: CancelToken | None,
    pool: Pool | None,
    priming: list[Priming],
    stretch: Callable[[int, int], AudioSource],
    *,
    listen: Callable[[], Any] | None = None,
    listen_offset: int = 0,
) -> Recognition:
    """``listen``: --send mp4's PCM decode heard beside the upload, whose audio starts at ``listen_offset`` of the
    media's timeline."""
    progress("probe", 1.0)
    _check_cancel(cancel, media)
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        progress("upload", min(0.99, max(0, sent) / total))

    # the recognition stage (its time and estimate) runs from the end of the upload to the reply
    estimate = speedbook.estimate_s(settings.server_list[0].partition("#")[0], duration_ms)
    waiting = RecognitionWait(progress, estimate)

    def uploaded() -> None:
        if waiting.began is None:
            waiting.start()

    progress("upload", 0.0)
    servers = pool if pool is not None else Pool.from_settings(settings)
    sent_ms = max(0, duration_ms - offset)
    wav_name = shown(media.stem) or "media"
    try:
        result = await recognise(
            AudioSource(open_stream, wav_format, sent_ms, listen),
            settings,
            servers,
            wav_name=wav_name,
            on_bytes=on_bytes,
            cancelled=cancel.is_set if cancel is not None else None,
            on_uploaded=uploaded,
        )
    except FunasrSubsError as exc:
        if exc.path is None:
            exc.path = media
        raise
    finally:
        waiting.stop()
    if waiting.began is None:
        progress("upload", 1.0)
    progress("recognise", 1.0)
    if waiting.waited_s is not None and len(result.pieces) == 1:
        speedbook.record(result.pieces[0].server, duration_ms, waiting.waited_s)
    if len(result.pieces) > 1:
        audio["pieces"] = [p.to_dict() for p in result.pieces]
    if priming[0].samples:
        audio["priming_ms"] = priming[0].ms
        offset -= priming[0].ms
    if priming[0].delay_ms:  # only read when the stream facts came without ffprobe (see audio.open_audio)
        audio["delay_ms"] = priming[0].delay_ms
        offset += priming[0].delay_ms
    if listen is not None and result.speech is not None:  # heard in the decode beside: on the sent audio's timeline
        result = dataclasses.replace(result, speech=result.speech.shifted(listen_offset - offset))
    try:  # speech the reply has no words for, sent again (times of the audio sent: on the media's, + offset)
        result, recovery = await recover(
            result,
            sent_ms,
            settings,
            servers,
            lambda start, end: stretch(start + offset, end + offset),
            wav_name=wav_name,
            cancelled=cancel.is_set if cancel is not None else None,
        )
    except FunasrSubsError as exc:
        if exc.path is None:
            exc.path = media
        raise
    transcript = result.transcript.shifted(offset)
    speech = result.speech.shifted(offset) if result.speech is not None else None
    if recovery is not None:
        recovery = recovery.shifted(offset)
        if recovery.lost and recovery.resent:  # (said as a note: a film's music opening is no cause for alarm)
            log.info("note: %s: %s: %s", media, recovery.summary(), spans_text(recovery.lost))
        elif recovery.lost:
            log.warning(
                "warning: %s: %s: %s; not sent again (--no-resend-lost)",
                media,
                recovery.summary(),
                spans_text(recovery.lost),
            )
    return Recognition(
        transcript=transcript,
        reply=result.reply,
        offset_ms=offset,
        duration_ms=duration_ms,
        audio=audio,
        speech=speech,
        recovery=recovery,
    )


def recognise_file(
    path: Path | str,
    settings: Settings | None = None,
    *,
    raw_pcm: bool = False,
    cancel: CancelToken | None = None,
    progress: ProgressCallback | None = None,
    pool: Pool | None = None,
) -> Recognition:
    """Send one file to the server(s) and parse the reply; writes nothing. ``raw_pcm``: the file is s16le 16 kHz
    mono. ``pool``: the servers shared by a batch (default: a pool of ``settings``' servers for this call)."""
    settings = settings or Settings()
    job = _recognise(Path(path), settings, raw_pcm=raw_pcm, progress=_Progress(progress), cancel=cancel, pool=pool)
    return asyncio.run(job)


def _sidecar(
    recognition: Recognition, media: Path, settings: Settings, stamp: tuple[int, int], outputs: dict[str, list[str]]
) -> Sidecar:
    """What the sidecar records of one recognition: the reply, its timing, the media's stamp, settings, outputs."""
    return Sidecar(
        reply=recognition.reply,
        offset_ms=recognition.offset_ms,
        duration_ms=recognition.duration_ms,
        media_name=media.name,
        media_size=stamp[0],
        media_mtime_ns=stamp[1],
        settings={k: v for k, v in settings.to_dict().items() if k != "on_done"},  # a URL may hold a secret
        audio=recognition.audio,
        outputs=outputs,
        speech=recognition.speech,
        recovery=recognition.recovery,
    )


def current_sidecar(
    media_path: Path | str,
    settings: Settings | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    pool: Pool | None = None,
) -> tuple[Path, Sidecar]:
    """The media's sidecar when it is current; else the media is recognised and the sidecar saved (no subtitle is
    written: for commands such as ``sync`` that only need the recognised speech). Returns (sidecar path, sidecar)."""
    media = Path(media_path)
    settings = settings or Settings()
    if not media.is_file():
        raise MediaNotFoundError("file not found: check the path", path=media)
    side_path = sidecar_path_for(media, settings.output_dir)
    previous = try_read_sidecar(side_path)
    if previous is not None and previous.matches(media):
        return side_path, previous
    _check_writable(side_path.parent, media)
    size, mtime_ns = media_stamp(media)
    job = _recognise(media, settings, raw_pcm=False, progress=_Progress(progress), cancel=cancel, pool=pool)
    recognition = asyncio.run(job)
    _check_cancel(cancel, media)
    sidecar = _sidecar(recognition, media, settings, (size, mtime_ns), merged_outputs(previous, {}))
    atomic_write_text(side_path, sidecar.to_json())
    return side_path, sidecar


# --- the whole job ------------------------------------------------------------------------------------------
def _check_writable(folder: Path, media: Path) -> None:
    """The output folder exists (an --output-dir is made) and can be written in; OutputError otherwise."""
    if not folder.is_dir() and folder != media.parent:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder}: {exc.strerror}", path=media) from None
        log.info("created the output folder %s", folder)
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a folder: fix --output-dir", path=media)
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write in {folder}: permission denied; use --output-dir DIR", path=media)


def generate_subtitles(
    media_path: Path | str,
    settings: Settings | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    pool: Pool | None = None,
    enforce_skip: bool = True,
) -> Result:
    """Transcribe one media file and write its subtitles and sidecar. Raises FunasrSubsError subclasses.

    ``pool``: the FunASR servers shared by a batch (their health, slots and speed); default: ``settings``' servers
    for this file alone. A file a skip rule (``settings.skip``) rejects is a "skipped" Result with the reason; with
    ``enforce_skip`` False (a file the user named) the reason is logged as a warning and the file is done anyway.
    """
    media = Path(media_path)
    settings = settings or Settings()
    report = _Progress(progress)
    began = time.perf_counter()
    try:
        result = _generate(media, settings, report, cancel, began, pool, enforce_skip)
    except FunasrSubsError as exc:
        if exc.path is None:
            exc.path = media
        if not isinstance(exc, CancelledError):
            plugins.notify_failed(media, exc)
            status: Literal["failed", "skipped"] = "skipped" if isinstance(exc, OutputExistsError) else "failed"
            _on_done(settings, media, status, reason=exc.message, error=type(exc).__name__, began=began)
        raise
    if result.status == "done":
        plugins.notify_written(result)
    _on_done(settings, media, result.status, result=result, reason=result.reason, began=began)
    return result


def _on_done(
    settings: Settings,
    media: Path,
    status: Literal["done", "failed", "skipped"],
    *,
    result: Result | None = None,
    reason: str = "",
    error: str = "",
    began: float,
) -> None:
    """Queue the ``on_done`` notification of a finished job (nothing when no URL is set; never blocks)."""
    if not settings.on_done:
        return
    from funasr_subs.actions import webhook

    body = webhook.payload(
        media,
        status,
        outputs=result.written if result is not None else (),
        sidecar=result.sidecar if result is not None else None,
        cues=len(result.cues) if result is not None else 0,
        reason=reason,
        error=error,
        seconds=time.perf_counter() - began,
        recovery=result.recovery if result is not None else None,
    )
    webhook.job_finished(settings, body)


def _rule_skip(
    media: Path, settings: Settings, previous: Sidecar | None, targets: dict[str, Path], info: MediaInfo | None = None
) -> str | None:
    """The first skip rule (``settings.skip``: language, subtitles already there) that rejects ``media``, or None.
    ``info``: the media facts when they are known (else the file is probed)."""
    if not settings.skip:
        return None
    if info is None:
        info = probe(media)
    ours = {p.name for p in targets.values()} | set(previous.outputs if previous is not None else ())
    if settings.output_dir is not None:  # subtitles an earlier run wrote beside the media are ours too
        beside = try_read_sidecar(sidecar_path_for(media), reply=False)
        if beside is not None:
            ours |= {name for name in beside.outputs if beside.wrote(media.parent / name)}
    try:
        siblings = os.listdir(media.parent)
    except OSError:
        siblings = []
    found = skiprules.first_skip(
        info,
        code=skiprules.model_code(settings.output_lang, settings.profile),
        rules=settings.skip,
        audio_track=settings.audio_track,
        siblings=siblings,
        ours=ours,
        ignored=settings.ignore_subtitle_kinds,
        also=settings.skip_subtitle_languages,
        audio_code=_audio_code(settings),
    )
    return None if found is None else f"{found.reason} ({found.rule})"


def _audio_code(settings: Settings) -> str:
    """The language the audio rule and the track choice look for: ``auto`` when SenseVoice is left to guess."""
    return "auto" if settings.language == "auto" else skiprules.model_code(settings.output_lang, settings.profile)


class _Skipped(Exception):
    """A skip rule rejected the file once its facts were known (raised by the vet, before any audio is sent)."""


def _no_vet(info: MediaInfo) -> None:
    return None


def _generate(
    media: Path,
    settings: Settings,
    progress: _Progress,
    cancel: CancelToken | None,
    began: float,
    pool: Pool | None = None,
    enforce_skip: bool = True,
) -> Result:
    progress("probe", 0.0)
    _check_cancel(cancel, media)
    if not media.is_file():
        if media.is_symlink():
            raise MediaNotFoundError("is a symlink that leads nowhere (broken, or a loop): fix the link", path=media)
        if media.exists():
            raise NotMediaError("is not a regular file (a folder, named pipe or device): give a media file", path=media)
        raise MediaNotFoundError("file not found: check the path", path=media)
    side_path = sidecar_path_for(media, settings.output_dir)
    previous = try_read_sidecar(side_path, reply=False)  # what it wrote and when; its reply is not needed
    targets = output_paths(media, settings)
    for target in (side_path, *targets.values()):  # before the server's time is spent: names that cannot be written
        check_name_fits(target)
    for folder in {side_path.parent, *(t.parent for t in targets.values())}:
        clean_stale_temps(folder)  # left by a killed run (once per folder per process), even if nothing is redone
    reason = _skip_reason(media, settings, previous)
    if reason is not None:
        return Result(media=media, status="skipped", reason=reason)
    for target in (side_path, *targets.values()):  # a link or a device where an output goes is never replaced
        check_replaceable(target)

    def vet(info: MediaInfo) -> None:  # the media facts are known; no audio has been sent yet
        skip = _rule_skip(media, settings, previous, targets, info)
        if skip is not None:
            if enforce_skip:
                raise _Skipped(skip)
            log.warning("warning: %s: %s; transcribing it anyway, as it was named", media, skip)
        _check_writable(side_path.parent, media)

    stamp_before = media_stamp(media)
    t0 = time.perf_counter()
    job = _recognise(media, settings, raw_pcm=False, progress=progress, cancel=cancel, pool=pool, vet=vet)
    try:
        recognition = asyncio.run(job)
    except _Skipped as skipped:
        return Result(media=media, status="skipped", reason=str(skipped))
    t1 = time.perf_counter()
    if not recognition.transcript.tokens:
        raise NoSpeechError("no speech recognised; no subtitle written", path=media)
    with gc_paused():  # long transcripts: many objects, no cycles (see gc_paused)
        karaoke = "ass-karaoke" in settings.formats  # the words' times are kept only for karaoke
        heard = recognition.speech.intervals if recognition.speech is not None else ()  # cue edges on the speech
        cues = tuple(build_cues(recognition.transcript.tokens, settings.cue_settings(), words=karaoke, speech=heard))
    _check_cancel(cancel, media)
    progress("write", 0.0)
    texts = {fmt: render(cues, fmt, settings.script) for fmt in settings.formats}
    size, mtime_ns = stamp_before
    outputs = merged_outputs(previous, {targets[fmt].name: digest(text) for fmt, text in texts.items()})
    sidecar = _sidecar(recognition, media, settings, (size, mtime_ns), outputs)
    # the sidecar first: it records the digests that mark the subtitles below as ours
    atomic_write_text(side_path, sidecar.to_json())
    written = tuple(
        atomic_write_text(targets[fmt], text, may_replace=lambda p: _may_replace(p, settings, previous))
        for fmt, text in texts.items()
    )
    progress("write", 1.0)
    t2 = time.perf_counter()
    timings = Timings(probe_s=0.0, transcribe_s=t1 - t0, write_s=t2 - t1, total_s=t2 - began)
    log.debug("%s: %d cues, %s", media, len(cues), timings)
    return Result(
        media=media,
        status="done",
        written=written,
        sidecar=side_path,
        cues=cues,
        timings=timings,
        recovery=recognition.recovery,
    )

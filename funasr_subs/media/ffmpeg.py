"""Media → audio: the ffmpeg command lines (pure), and ffmpeg run as an async byte stream."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import ffmpeg

from funasr_subs.aio import bounded
from funasr_subs.errors import (
    CorruptMediaError,
    NotMediaError,
    RefusedMediaError,
    ToolMissingError,
)
from funasr_subs.media import early, ffreport, inputs
from funasr_subs.media.info import AudioStream, MediaInfo
from funasr_subs.media.probe import (
    BYTES_PER_SECOND,
    CLOSE_TIMEOUT,
    INSTALL_HINT,
    MP4_COPY_CODECS,
    SAMPLE_RATE,
    STALL_TIMEOUT,
    find_tool,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _base_args(*, report: bool = False) -> list[str]:
    """ffmpeg's start; ``report``: its input dump and stream mapping on stderr too, each line tagged with its level
    (ffreport reads them)."""
    level = "level+info" if report else "error"
    return [find_tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-loglevel", level]


#: ffmpeg-python hashes its arguments as UTF-8, which a file name need not be: it builds the command line around this
#: placeholder, and the real input (``file:`` and the absolute path: see mediainput) is put in its place afterwards.
_INPUT = "funasr-subs-input-placeholder"


def _with_input(argv: list[str], path: Path) -> list[str]:
    return [inputs.input_url(path) if arg == _INPUT else arg for arg in argv]


def pcm_args(
    path: Path,
    stream: AudioStream | None,
    *,
    ffmpeg_bin: list[str] | None = None,
    pad_start: bool = False,
    report: bool = False,
    span: tuple[int, int] | None = None,
) -> list[str]:
    """ffmpeg argv: the chosen audio stream (None: the one ffmpeg picks) decoded to 16 kHz mono s16le on stdout.
    ``pad_start``: an audio stream that starts after the container does is preceded by that much silence, so the
    audio sent is on the player's timeline (for containers that start at 0 and whose timeline ffmpeg keeps: see
    ffreport and audio). ``span``: (start_ms, end_ms) of the player's timeline only, found by seeking (ffmpeg
    decodes from the packet before the start and drops what precedes it: sample-exact, without decoding the file
    up to there); with ``pad_start`` its first sample is at ``start_ms`` even where the audio starts later."""
    cmd = ffmpeg_bin if ffmpeg_bin is not None else _base_args(report=report)
    node, options = _source(stream, span)
    if pad_start:
        # first_pts=0: silence up to the first sample's time. min_hard_comp: only there; a gap later on (a damaged
        # stretch) is not filled, so a decode that falls short still shows
        options["af"] = "aresample=first_pts=0:min_hard_comp=86400"
    # flush_packets 0: whole 32 KiB buffers reach the pipe, not one write per ~1 KiB packet (30x fewer wake-ups)
    out = node.output("pipe:1", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE, flush_packets=0, **options)
    return _with_input(out.compile(cmd=cmd), path)


def _source(stream: AudioStream | None, span: tuple[int, int] | None = None) -> tuple[Any, dict[str, Any]]:
    """The input node and output options taking ``stream``; None: ffmpeg's own pick (the default-flagged audio
    stream, then the one with most channels, as select_audio(…, None) does), with video, subtitles and data left
    out. ``span``: only (start_ms, end_ms) of the input, by seeking."""
    seek: dict[str, str] = {}
    if span is not None:
        start, end = max(0, span[0]), max(span[0], span[1])
        seek = {"ss": f"{start / 1000:.3f}", "t": f"{(end - start) / 1000:.3f}"}
    source = ffmpeg.input(_INPUT, **inputs.input_options(), **seek)  # the one media file it is (see mediainput)
    if stream is not None:
        return source[f"a:{stream.position}"], {}
    return source, {"vn": None, "sn": None, "dn": None}


def mp4_args(
    path: Path, stream: AudioStream | None, *, ffmpeg_bin: list[str] | None = None, report: bool = False
) -> list[str]:
    """ffmpeg argv: only the chosen audio track (None: the one ffmpeg picks, taken to be AAC) in a fragmented mp4
    on stdout (copied when the codec allows)."""
    cmd = ffmpeg_bin if ffmpeg_bin is not None else _base_args(report=report)
    node, options = _source(stream)
    codec_name = stream.codec if stream is not None else "aac"
    codec: dict[str, Any] = (
        {"acodec": "copy"} if codec_name in MP4_COPY_CODECS else {"acodec": "aac", "ac": 1, "ar": SAMPLE_RATE}
    )
    if codec_name == "aac":
        codec["bsf:a"] = "aac_adtstoasc"  # ADTS AAC (MPEG-TS, .aac) is refused by the mp4 muxer; others pass as is
    elif codec_name == "flac":
        codec["strict"] = "experimental"  # ffmpeg < 6 calls FLAC in mp4 experimental
    out = node.output(
        "pipe:1",
        format="mp4",
        # delay_moov: AC-3/E-AC-3 need their first packet parsed before the moov can be written
        movflags="empty_moov+default_base_moof+delay_moov",
        frag_duration=10_000_000,
        map_metadata=-1,
        flush_packets=0,
        **codec,
        **options,
    )
    return _with_input(out.compile(cmd=cmd), path)


def expected_bytes(info: MediaInfo, stream: AudioStream, send: str) -> int:
    """Roughly how many bytes the stream will produce (for progress bars only)."""
    seconds = info.duration_ms / 1000
    if send == "pcm":
        return int(seconds * BYTES_PER_SECOND)
    if stream.codec in MP4_COPY_CODECS and stream.bit_rate:
        return int(seconds * stream.bit_rate / 8)
    return int(seconds * 16000)  # ~128 kb/s


async def _spawn(argv: list[str], limit: int) -> asyncio.subprocess.Process:
    """``argv`` with its output in a pipe of ``early.PIPE_BYTES`` where the system allows it (else the default)."""
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=DEVNULL, stdout=PIPE, stderr=PIPE, limit=limit, pipesize=early.PIPE_BYTES
        )
    except PermissionError:  # a pipe that deep is over this user's allowance (/proc/sys/fs/pipe-*)
        return await asyncio.create_subprocess_exec(*argv, stdin=DEVNULL, stdout=PIPE, stderr=PIPE, limit=limit)


class FfmpegStream:
    """ffmpeg as an async iterator of large chunks; its stderr kept (last lines only) for error messages."""

    def __init__(
        self,
        argv: list[str],
        media: Path,
        *,
        chunk_bytes: int,
        expect_bytes: int = 0,
        head_filter: Callable[[bytes], bytes] | None = None,
        report: bool = False,
    ) -> None:
        self.argv = argv
        self.media = media
        self.chunk_bytes = chunk_bytes
        self.expect_bytes = expect_bytes  # PCM: what a whole decode yields; a damaged file falls well short
        self.head_filter = head_filter  # applied to the first chunk only (the mp4 head: see mp4head)
        self.bytes_read = 0
        self._proc: asyncio.subprocess.Process | early.Adopted | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_task: asyncio.Task[None] | None = None
        self.stall_timeout = STALL_TIMEOUT
        # report: argv asks for ``-loglevel level+info``; its input dump is kept until the stream mapping is read
        self._report = report
        self._header: list[str] = []
        self._header_done = asyncio.Event()
        self._refused: str | None = None  # ffmpeg refused the file's format (see mediainput)

    async def __aenter__(self) -> FfmpegStream:
        if self._proc is not None:  # started already (to read its report): handed over as it is
            return self
        log.debug("running %s", self.argv)
        started = early.take(self.media, self.argv)  # the same command, started during start-up
        if started is not None:
            self._proc = await early.adopt(started, self.chunk_bytes)
            self._stderr_task = asyncio.create_task(self._drain_stderr())
            return self
        try:
            self._proc = await _spawn(self.argv, self.chunk_bytes)
        except FileNotFoundError:
            raise ToolMissingError(f"ffmpeg was not found: {INSTALL_HINT}") from None
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        return self

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        joining = False  # the last line went into the report: an unprefixed line after it is its rest
        try:
            async for raw in self._proc.stderr:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                if self._refused is None:
                    self._refused = inputs.refusal((text,))
                if not self._report:
                    if text.strip():
                        self._stderr.append(text.strip())
                    continue
                line = ffreport.split_level(text)
                if line.level == ffreport.CONTINUED:  # a newline inside a tag: the rest of the line before
                    if joining and not self._header_done.is_set():
                        self._header[-1] += "\n" + line.text
                    continue
                joining = False
                if ffreport.is_problem(line):
                    if line.text.strip():
                        self._stderr.append(line.text.strip())
                elif line.level == "info" and not self._header_done.is_set():
                    self._header.append(line.text)
                    joining = True
                    if ffreport.is_mapping(line.text):
                        self._header_done.set()
        finally:
            self._header_done.set()

    async def report(self) -> ffreport.Report | None:
        """What ffmpeg reported about its input (started with ``report=True``); NotMediaError when it could not read
        the file at all; None when it runs but printed nothing this version of the reader understands (the caller
        asks ffprobe instead). Waits for the stream mapping (or ffmpeg's end), within the stall timeout."""
        assert self._report and self._proc is not None
        await self._bounded(self._header_done.wait(), "reported nothing about the file")
        found = ffreport.parse_report(self.media, self._header)
        if found is not None:
            return found
        if self._proc.returncode is None and self._stderr_task is not None and self._stderr_task.done():
            await self._bounded(self._proc.wait(), "did not exit after a failed start")  # its stderr ended
        if self._proc.returncode in (None, 0):
            log.debug("%s: no input report understood in ffmpeg's output", self.media)
            return None
        if self._refused is not None:
            raise RefusedMediaError(self._refused, path=self.media)
        detail = self._stderr[-1] if self._stderr else f"ffmpeg exited with code {self._proc.returncode}"
        raise NotMediaError(f"not a media file ffmpeg can read ({detail})", path=self.media)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Chunks of ``chunk_bytes`` (the last one shorter); CorruptMediaError when ffmpeg fails."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        buf = bytearray()
        while True:
            piece = await self._bounded(stdout.read(self.chunk_bytes - len(buf)), "produced no audio")
            if not piece:
                break
            buf += piece
            if len(buf) >= self.chunk_bytes:
                yield self._take(buf)
                buf.clear()
        if buf:
            yield self._take(buf)
        code = await self._bounded(self._proc.wait(), "did not exit after its output ended")
        if self._stderr_task is not None:
            await self._bounded(self._stderr_task, "did not close its error output")
        if code != 0:
            if self._refused is not None:  # the file was replaced by a playlist since it was probed
                raise RefusedMediaError(self._refused, path=self.media)
            detail = self._stderr[-1] if self._stderr else f"ffmpeg exited with code {code}"
            raise CorruptMediaError(f"ffmpeg could not decode the audio: {detail}", path=self.media)
        if self.bytes_read == 0:
            raise CorruptMediaError("ffmpeg produced no audio: the audio track is empty or unreadable", path=self.media)
        if self._stderr:
            # ffmpeg skips damaged packets and exits 0; a decode that falls far short means a damaged file
            if self.expect_bytes and self.bytes_read < 0.9 * self.expect_bytes:
                got, want = self.bytes_read / BYTES_PER_SECOND, self.expect_bytes / BYTES_PER_SECOND
                raise CorruptMediaError(
                    f"the file is damaged: ffmpeg decoded only {got:.1f} of {want:.1f} s of audio "
                    f"({self._stderr[-1]}); re-download or remux it",
                    path=self.media,
                )
            log.warning(
                "%s: ffmpeg reported errors while decoding (%s); subtitles may miss a moment",
                self.media,
                self._stderr[-1],
            )

    def _take(self, buf: bytearray) -> bytes:
        first = self.bytes_read == 0
        self.bytes_read += len(buf)
        if first and self.head_filter is not None:
            return self.head_filter(bytes(buf))
        return bytes(buf)

    async def _bounded(self, waiting: Awaitable[T], what: str) -> T:
        try:
            return await bounded(waiting, self.stall_timeout)
        except TimeoutError:
            raise CorruptMediaError(
                f"ffmpeg {what} for {self.stall_timeout:g} s: is the file on a mount that stopped answering?",
                path=self.media,
            ) from None

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop ffmpeg and reap it, within ``CLOSE_TIMEOUT`` seconds whatever state the pipes are in.

        asyncio's ``Process.wait()`` returns only once the child's pipes are closed, and a stdout reader paused by
        back-pressure (the upload stalled) never sees the end of its pipe: so the pipes are read to their end here
        (the killed ffmpeg holds them no longer), and if even that does not finish, the transport is closed.
        """
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            try:
                await bounded(self._drain_and_reap(proc), CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "%s: ffmpeg (pid %s) did not end within %g s of being killed", self.media, proc.pid, CLOSE_TIMEOUT
                )
                transport = getattr(proc, "_transport", None)
                if transport is not None:
                    transport.close()
        task = self._stderr_task
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait, not ``await task`` under suppress(CancelledError): that would also swallow a cancel of
            # the job itself arriving right here, and the job would go on to wait for a reply that never comes
            await asyncio.wait({task})

    @staticmethod
    async def _drain_and_reap(proc: asyncio.subprocess.Process | early.Adopted) -> None:
        if proc.stdout is not None:
            while await proc.stdout.read(1 << 16):
                pass
        await proc.wait()

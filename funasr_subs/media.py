"""Media → audio: ffprobe facts, the ffmpeg command lines (pure), and ffmpeg run as an async byte stream."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import ffmpeg

from funasr_subs import early, ffreport, mediainput
from funasr_subs.aio import bounded
from funasr_subs.errors import (
    CorruptMediaError,
    FunasrSubsError,
    MediaNotFoundError,
    NoAudioError,
    NotMediaError,
    RefusedMediaError,
    ToolMissingError,
)
from funasr_subs.mediainfo import AudioStream, MediaInfo, stream_kinds

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Longest wait for a killed ffmpeg to go away (its pipes read to their end, its exit status collected).
CLOSE_TIMEOUT = 5.0
#: Longest wait for ffmpeg to produce the next bytes, or to exit after its output ended (a hung decoder, a stuck
#: network mount): every wait on a child process is bounded.
STALL_TIMEOUT = 120.0

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # s16le mono
#: Codecs an mp4/m4a container holds as they are (no re-encode); anything else is encoded to AAC.
MP4_COPY_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
#: What a folder walk picks up (explicit files are tried whatever their suffix).
MEDIA_SUFFIXES = frozenset(
    {
        ".mkv",
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".wmv",
        ".flv",
        ".webm",
        ".ts",
        ".m2ts",
        ".mts",
        ".mpg",
        ".mpeg",
        ".vob",
        ".3gp",
        ".ogv",
        ".rm",
        ".rmvb",
        ".asf",
        ".mp3",
        ".m4a",
        ".aac",
        ".flac",
        ".wav",
        ".ogg",
        ".opus",
        ".wma",
        ".ac3",
        ".eac3",
        ".amr",
        ".aiff",
        ".aif",
        ".mka",
    }
)
#: Containers whose audio start is taken from ffprobe (MPEG-TS/PS, FLV, RealMedia: ffmpeg shifts their timestamps at
#: discontinuities, so its own report and output cannot say how late the audio starts). Every other file needs no
#: ffprobe: the ffmpeg run that decodes it reports the stream facts (see ffreport).
PROBED_SUFFIXES = frozenset({".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".vob", ".flv", ".rm", ".rmvb"})
INSTALL_HINT = (
    "install it (Debian/Ubuntu: sudo apt-get install ffmpeg; Fedora: sudo dnf install ffmpeg; "
    "macOS: brew install ffmpeg; Windows: winget install ffmpeg) or put it on PATH"
)
# ISO 639-1 ↔ 639-2 for the languages people ask for most; --audio-track LANG matches either form.
_LANG_ALIASES = {
    "zh": {"zho", "chi", "cmn", "yue"},
    "en": {"eng"},
    "ja": {"jpn"},
    "ko": {"kor"},
    "fr": {"fra", "fre"},
    "de": {"deu", "ger"},
    "es": {"spa"},
    "ru": {"rus"},
}


def find_tool(name: str) -> str:
    """Absolute path of ffmpeg/ffprobe, or ToolMissingError saying how to install it."""
    found = shutil.which(name)
    if not found:
        raise ToolMissingError(f"{name} was not found: {INSTALL_HINT}")
    return found


def _ms(value: Any) -> int:
    try:
        return round(float(value) * 1000)
    except (TypeError, ValueError):
        return 0


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_probe(path: Path, data: Mapping[str, Any]) -> MediaInfo:
    """ffprobe's JSON (``-show_format -show_streams``) → MediaInfo (pure)."""
    fmt = data.get("format") or {}
    streams = [s for s in data.get("streams") or [] if s.get("codec_type") == "audio"]
    audio = tuple(
        AudioStream(
            position=i,
            index=_int(s.get("index")),
            codec=str(s.get("codec_name") or "unknown"),
            channels=_int(s.get("channels")),
            sample_rate=_int(s.get("sample_rate")),
            language=str((s.get("tags") or {}).get("language") or "").lower(),
            start_ms=_ms(s.get("start_time")),
            default=bool((s.get("disposition") or {}).get("default")),
            bit_rate=_int(s.get("bit_rate")),
        )
        for i, s in enumerate(streams)
    )
    duration = _ms(fmt.get("duration")) or max((_ms(s.get("duration")) for s in streams), default=0)
    return MediaInfo(
        path=path,
        format_name=str(fmt.get("format_name") or ""),
        duration_ms=duration,
        start_ms=_ms(fmt.get("start_time")),
        audio=audio,
        subtitles=tuple(
            str((s.get("tags") or {}).get("language") or "").lower()
            for s in data.get("streams") or []
            if s.get("codec_type") == "subtitle"
        ),
        subtitle_kinds=tuple(
            stream_kinds(s.get("disposition") or {}, str((s.get("tags") or {}).get("title") or ""))
            for s in data.get("streams") or []
            if s.get("codec_type") == "subtitle"
        ),
        streams=sum(not (s.get("disposition") or {}).get("attached_pic") for s in data.get("streams") or []),
    )


def _probe_argv(path: Path) -> list[str]:
    if not path.exists():
        raise MediaNotFoundError("file not found: check the path", path=path)
    if not path.is_file():
        raise NotMediaError("not a regular file", path=path)
    return [
        find_tool("ffprobe"),
        "-v",
        "error",
        *mediainput.input_argv(),  # the one media file it is: no playlist, concat list or image sequence
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        mediainput.input_url(path),
    ]


def _probe_result(path: Path, code: int | None, stdout: bytes, stderr: bytes) -> MediaInfo:
    if code != 0:
        refused = mediainput.refusal(stderr.decode("utf-8", "replace").splitlines())
        if refused is not None:
            raise RefusedMediaError(refused, path=path)
        raise NotMediaError(f"not a media file ffmpeg can read ({last_line(stderr) or 'ffprobe failed'})", path=path)
    try:
        info = parse_probe(path, json.loads(stdout or b"{}"))
    except ValueError:
        raise NotMediaError("ffprobe gave no usable information: is this a media file?", path=path) from None
    if not info.audio:
        raise NoAudioError("has no audio stream: nothing to transcribe", path=path)
    return info


#: ffprobe runs started ahead of time: (absolute path, size, mtime_ns) → the running process.
_ahead: dict[tuple[str, int, int], subprocess.Popen[bytes]] = {}
_ahead_lock = threading.Lock()
#: The last answers, by the same key: a file is probed once per job even when several steps ask (the skip rules,
#: then the recognition), and again only when it changed.
_known: collections.OrderedDict[tuple[str, int, int], MediaInfo] = collections.OrderedDict()
_KNOWN_MAX = 256


def _identity(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.absolute()), st.st_size, st.st_mtime_ns)


def _remember(key: tuple[str, int, int] | None, info: MediaInfo) -> MediaInfo:
    if key is not None:
        with _ahead_lock:
            _known[key] = info
            while len(_known) > _KNOWN_MAX:
                _known.popitem(last=False)
    return info


def _known_or_ahead(path: Path) -> tuple[tuple[str, int, int] | None, MediaInfo | None, subprocess.Popen[bytes] | None]:
    key = _identity(path)
    if key is None:
        return None, None, None
    with _ahead_lock:
        return key, _known.get(key), _ahead.pop(key, None)


def probe_ahead(path: Path) -> None:
    """Start ffprobe on ``path`` now, so that it runs while other work goes on (the interpreter starting up, the
    previous file uploading); the next probe of the same unchanged file takes its answer. Best effort: any
    problem is left for the probe to report."""
    if path.suffix.lower() not in PROBED_SUFFIXES:
        return  # the decoding ffmpeg reports this one's facts itself
    key = _identity(path)
    if key is None or not path.is_file():
        return
    with _ahead_lock:
        if key in _ahead or key in _known:
            return
        try:
            _ahead[key] = subprocess.Popen(
                _probe_argv(path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except (OSError, FunasrSubsError):
            return
    log.debug("%s: ffprobe started ahead", path)


def drop_probes_ahead() -> None:
    """Stop every probe started ahead that nobody took (a run that ended early)."""
    with _ahead_lock:
        procs = list(_ahead.values())
        _ahead.clear()
    early.stop(procs)


def _taken(proc: subprocess.Popen[bytes], path: Path, timeout: float) -> tuple[int | None, bytes, bytes]:
    log.debug("%s: ffprobe answer taken (started ahead)", path)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def _probe_timeout(path: Path, timeout: float) -> CorruptMediaError:
    return CorruptMediaError(f"ffprobe did not finish within {timeout:.0f} s: is the file readable?", path=path)


def probe(path: Path, *, timeout: float = 60.0) -> MediaInfo:
    """Run ffprobe on ``path`` (or take the answer of one started by :func:`probe_ahead`, or the remembered one of
    the unchanged file); clear errors for missing files, non-media and media without audio."""
    argv = _probe_argv(path)
    key, known, ahead = _known_or_ahead(path)
    if known is not None:
        return known
    try:
        if ahead is not None:
            code, out, err = _taken(ahead, path, timeout)
        else:
            log.debug("%s: running ffprobe", path)
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
            code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        raise _probe_timeout(path, timeout) from None
    return _remember(key, _probe_result(path, code, out, err))


async def probe_async(path: Path, *, timeout: float = 60.0) -> MediaInfo:
    """:func:`probe` as a child the event loop awaits: bounded, and a cancelled job kills ffprobe at once."""
    argv = _probe_argv(path)
    key, known, ahead = _known_or_ahead(path)
    if known is not None:
        return known
    if ahead is not None:
        try:
            code, out, err = await asyncio.to_thread(_taken, ahead, path, timeout)
        except subprocess.TimeoutExpired:
            raise _probe_timeout(path, timeout) from None
        return _remember(key, _probe_result(path, code, out, err))
    log.debug("%s: running ffprobe", path)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise ToolMissingError(f"ffprobe was not found: {INSTALL_HINT}") from None
    try:
        stdout, stderr = await bounded(proc.communicate(), timeout)
    except TimeoutError:
        raise _probe_timeout(path, timeout) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await bounded(proc.wait(), CLOSE_TIMEOUT)
    return _remember(key, _probe_result(path, proc.returncode, stdout, stderr))


def last_line(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _lang_matches(wanted: str, language: str) -> bool:
    wanted = wanted.lower().split("-")[0]
    if not language:
        return False
    if language == wanted:
        return True
    return language in _LANG_ALIASES.get(wanted, set()) or wanted in _LANG_ALIASES.get(language, set())


def select_audio(info: MediaInfo, track: str | None) -> AudioStream:
    """The audio stream to use: ``track`` None picks as ffmpeg does (default-flagged, then most channels);
    otherwise an index among the audio streams or a language tag."""
    if not info.audio:
        raise NoAudioError("has no audio stream: nothing to transcribe", path=info.path)
    if track is None or track == "":
        return max(info.audio, key=lambda a: (a.default, a.channels, -a.position))
    if track.isdigit():
        n = int(track)
        if n < len(info.audio):
            return info.audio[n]
    else:
        for stream in info.audio:
            if _lang_matches(track, stream.language):
                return stream
    available = ", ".join(f"{a.position}:{a.language or 'und'}:{a.codec}" for a in info.audio)
    raise NoAudioError(
        f"no audio track {track!r}; this file has {available} (use --audio-track N or LANG)", path=info.path
    )


def audio_offset_ms(info: MediaInfo, stream: AudioStream) -> int:
    """How late the audio starts on the player's timeline (ffprobe start_time of the stream − the container's)."""
    return max(0, stream.start_ms - info.start_ms)


def _base_args(*, report: bool = False) -> list[str]:
    """ffmpeg's start; ``report``: its input dump and stream mapping on stderr too, each line tagged with its level
    (ffreport reads them)."""
    level = "level+info" if report else "error"
    return [find_tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-loglevel", level]


#: ffmpeg-python hashes its arguments as UTF-8, which a file name need not be: it builds the command line around this
#: placeholder, and the real input (``file:`` and the absolute path: see mediainput) is put in its place afterwards.
_INPUT = "funasr-subs-input-placeholder"


def _with_input(argv: list[str], path: Path) -> list[str]:
    return [mediainput.input_url(path) if arg == _INPUT else arg for arg in argv]


def pcm_args(
    path: Path,
    stream: AudioStream | None,
    *,
    ffmpeg_bin: list[str] | None = None,
    pad_start: bool = False,
    report: bool = False,
) -> list[str]:
    """ffmpeg argv: the chosen audio stream (None: the one ffmpeg picks) decoded to 16 kHz mono s16le on stdout.
    ``pad_start``: an audio stream that starts after the container does is preceded by that much silence, so the
    audio sent is on the player's timeline (for containers that start at 0 and whose timeline ffmpeg keeps: see
    ffreport and audio)."""
    cmd = ffmpeg_bin if ffmpeg_bin is not None else _base_args(report=report)
    node, options = _source(stream)
    if pad_start:
        # first_pts=0: silence up to the first sample's time. min_hard_comp: only there; a gap later on (a damaged
        # stretch) is not filled, so a decode that falls short still shows
        options["af"] = "aresample=first_pts=0:min_hard_comp=86400"
    # flush_packets 0: whole 32 KiB buffers reach the pipe, not one write per ~1 KiB packet (30x fewer wake-ups)
    out = node.output("pipe:1", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE, flush_packets=0, **options)
    return _with_input(out.compile(cmd=cmd), path)


def _source(stream: AudioStream | None) -> tuple[Any, dict[str, Any]]:
    """The input node and output options taking ``stream``; None: ffmpeg's own pick (the default-flagged audio
    stream, then the one with most channels, as select_audio(…, None) does), with video, subtitles and data left
    out."""
    source = ffmpeg.input(_INPUT, **mediainput.input_options())  # the one media file it is (see mediainput)
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
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=self.chunk_bytes,
            )
        except FileNotFoundError:
            raise ToolMissingError(f"ffmpeg was not found: {INSTALL_HINT}") from None
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        return self

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        try:
            async for raw in self._proc.stderr:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                if self._refused is None:
                    self._refused = mediainput.refusal((text,))
                if not self._report:
                    if text.strip():
                        self._stderr.append(text.strip())
                    continue
                line = ffreport.split_level(text)
                if ffreport.is_problem(line):
                    if line.text.strip():
                        self._stderr.append(line.text.strip())
                elif line.level == "info" and not self._header_done.is_set():
                    self._header.append(line.text)
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

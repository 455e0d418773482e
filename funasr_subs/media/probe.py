"""What a media file holds: ffprobe run (bounded, started ahead where it can be), its facts, the audio stream chosen."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

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
from funasr_subs.media import early, inputs
from funasr_subs.media.info import AudioStream, MediaInfo, stream_kinds

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
        *inputs.input_argv(),  # the one media file it is: no playlist, concat list or image sequence
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        inputs.input_url(path),
    ]


def _probe_result(path: Path, code: int | None, stdout: bytes, stderr: bytes) -> MediaInfo:
    if code != 0:
        refused = inputs.refusal(stderr.decode("utf-8", "replace").splitlines())
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

"""Cues → subtitle text (pysubs2), and the one helper that writes files atomically."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pysubs2

from funasr_subs.errors import BadInputError, DiskFullError, OutputError, OutputExistsError
from funasr_subs.model import Cue, Word
from funasr_subs.names import shown

if TYPE_CHECKING:
    from funasr_subs.cues.script import Script

log = logging.getLogger(__name__)

#: The font named for each script: the Noto Sans CJK cut whose glyph shapes that region's readers learnt (the same
#: character is drawn differently in Simplified, Taiwan and Hong Kong type); a player without it substitutes one.
ASS_FONTS: dict[Script, str] = {
    "hans": "Noto Sans CJK SC",
    "hant": "Noto Sans CJK TC",
    "tw": "Noto Sans CJK TC",
    "hk": "Noto Sans CJK HK",
}
#: A style readable on a TV for CJK and Latin text alike (the player substitutes a font it has).
ASS_STYLE = pysubs2.SSAStyle(
    fontname=ASS_FONTS["hans"],
    fontsize=64,
    primarycolor=pysubs2.Color(255, 255, 255, 0),
    outlinecolor=pysubs2.Color(0, 0, 0, 0),
    backcolor=pysubs2.Color(0, 0, 0, 128),
    outline=3,
    shadow=1,
    marginv=48,
    alignment=pysubs2.Alignment.BOTTOM_CENTER,
)
#: 99:59:59.999, the latest time SRT, WebVTT and ASS hold (two hour digits; pysubs2 clamps later times to it).
MAX_TIME_MS = 100 * 3_600_000 - 1


#: Karaoke: a word not yet spoken is shown in the secondary colour (grey), then turns to the primary (white).
KARAOKE_UNSPOKEN = pysubs2.Color(150, 150, 150, 0)


def _ass_text(text: str) -> str:
    """Text as an ASS event shows it literally (a backslash or brace would start an override tag)."""
    return text.replace("\\", "\\\\").replace("{", "(").replace("}", ")")


def karaoke_text(cue: Cue) -> str:
    """The cue's lines with a ``\\k`` tag (centiseconds) before each word: a word is highlighted from its first
    spoken moment until the next word starts; the wait before the first word is an empty ``\\k``. Boundaries are
    rounded from the cue's start, so rounding never accumulates. A cue without words is one syllable a line."""
    lines = cue.words or tuple((Word(line, cue.start_ms, cue.end_ms),) for line in cue.lines)
    flat = [w for line in lines for w in line]

    def cs(ms: int) -> int:  # centiseconds since the cue's start, kept inside the cue
        return (min(max(ms, cue.start_ms), cue.end_ms) - cue.start_ms + 5) // 10

    starts = list(itertools.accumulate((cs(w.start_ms) for w in flat), max))  # never back in time
    bounds = [*starts[1:], max(cs(flat[-1].end_ms), starts[-1])]
    parts = [f"{{\\k{starts[0]}}}" if starts[0] > 0 else ""]
    n = 0
    for number, line in enumerate(lines):
        if number:
            parts.append("\\N")
        for word in line:
            parts.append(f"{{\\k{max(bounds[n] - starts[n], 0)}}}{_ass_text(word.text)}")
            n += 1
    return "".join(parts)


def to_ssafile(cues: Sequence[Cue], script: Script = "hans", *, karaoke: bool = False) -> pysubs2.SSAFile:
    """The cues as a pysubs2 file, its style naming the font for ``script`` (see :data:`ASS_FONTS`)."""
    subs = pysubs2.SSAFile()
    subs.info["PlayResX"] = "1920"
    subs.info["PlayResY"] = "1080"
    subs.info["ScaledBorderAndShadow"] = "yes"
    subs.info["Title"] = "funasr-subs"
    style = ASS_STYLE.copy()
    style.fontname = ASS_FONTS[script]
    if karaoke:
        style.secondarycolor = KARAOKE_UNSPOKEN
    subs.styles["Default"] = style
    for cue in cues:
        text = karaoke_text(cue) if karaoke else r"\N".join(_ass_text(line) for line in cue.lines)
        subs.events.append(pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text=text))
    return subs


def lrc_time(ms: int) -> str:
    """``mm:ss.xx`` (minutes past 99 as they are: ``[123:04.50]``), rounded to the centisecond."""
    cs = (max(ms, 0) + 5) // 10
    return f"{cs // 6000:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def render_lrc(cues: Sequence[Cue]) -> str:
    """LRC lyrics: ``[mm:ss.xx]text``, one line a cue (its lines joined by a space); LRC has no end times."""
    out = []
    for cue in cues:
        text = " ".join(line.strip() for line in cue.lines if line.strip())
        out.append(f"[{lrc_time(cue.start_ms)}]{text}\n")
    return "".join(out)


def render(cues: Sequence[Cue], fmt: str, script: Script = "hans") -> str:
    """Subtitle text in ``fmt`` (srt, ass, vtt, lrc, or ass-karaoke, whose cues should carry their words), the ASS
    font picked by ``script`` (the display script); BadInputError when a cue ends past :data:`MAX_TIME_MS` (SRT
    would get three hour digits, WebVTT and ASS every such cue clamped to one moment)."""
    if cues and max(cue.end_ms for cue in cues) > MAX_TIME_MS:
        late = next(n for n, cue in enumerate(cues, 1) if cue.end_ms > MAX_TIME_MS)
        raise BadInputError(
            f"cue {late} ends {cues[late - 1].end_ms / 3_600_000:,.0f} hours in: past 99:59:59.999, "
            "the latest time a subtitle file holds"
        )
    if fmt == "lrc":
        return render_lrc(cues)
    if fmt == "ass-karaoke":
        return str(to_ssafile(cues, script, karaoke=True).to_string("ass"))
    if fmt not in ("srt", "ass", "vtt"):
        raise ValueError(f"unknown subtitle format {fmt!r}")
    if fmt == "srt":
        return render_srt(cues)
    return str(to_ssafile(cues, script).to_string(fmt))


def _srt_time(ms: int) -> str:
    ms = max(ms, 0)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def render_srt(cues: Sequence[Cue]) -> str:
    """SRT text as pysubs2 writes it for the same cues (tests compare them), without building its event objects: a
    10-hour file has ~15,000 cues, and this is the format most users get. One difference: a backslash in the text
    stays one backslash (through pysubs2 it came out doubled, the ASS escape leaking into SRT)."""
    parts = []
    for number, cue in enumerate(cues, 1):
        text = "\n".join(line.replace("{", "(").replace("}", ")") for line in cue.lines).strip()
        parts.append(f"{number}\n{_srt_time(cue.start_ms)} --> {_srt_time(cue.end_ms)}\n{text}\n\n")
    return "".join(parts)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str | None:
    """SHA-256 of a regular file's bytes (streamed), None when it cannot be read or is not a regular file (a FIFO
    where a subtitle should be is never waited on)."""
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def atomic_write_text(
    path: Path, text: str, *, may_replace: Callable[[Path], bool] | None = None, elsewhere: str = "--output-dir DIR"
) -> Path:
    """Write ``text`` (UTF-8) to a temp file beside ``path`` and rename it into place: never a half-written file.

    ``may_replace``: asked at the last moment when something is at ``path`` (a subtitle the user saved while the job
    ran); False raises OutputExistsError and leaves it alone. An absent ``path`` is created with ``link()``, which
    never replaces what appeared meanwhile. None: replace whatever is there (our own sidecar). ``elsewhere``: the
    option of the command that writes somewhere else, for the advice when this place cannot be written.
    """
    return atomic_write_bytes(path, text.encode("utf-8"), may_replace=may_replace, elsewhere=elsewhere)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def check_replaceable(path: Path) -> None:
    """OutputError when something other than a regular file is at ``path`` (a symlink, even to a regular file; a
    device such as ``/dev/full``; a named pipe; a folder): an output is written only to a new name or over a regular
    file, so the rename that puts it in place never replaces a link or a device node (as root it would)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return  # absent (a new name), or not reachable: the write itself says why
    kind = _kind(mode)
    if kind is not None:
        raise OutputError(
            f"{shown(path)} is {kind}: outputs replace only regular files (remove it, or write to another name)"
        )


def atomic_write_bytes(
    path: Path, data: bytes, *, may_replace: Callable[[Path], bool] | None = None, elsewhere: str = "--output-dir DIR"
) -> Path:
    """Write ``data`` to a temp file beside ``path`` and rename it into place (``may_replace``, ``elsewhere`` as
    above). Only a new name or a regular file is written (:func:`check_replaceable`, asked again just before the
    rename)."""
    folder = path.parent
    check_name_fits(path)
    check_replaceable(path)
    clean_stale_temps(folder)
    try:
        fd, tmp = _create_temp(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and not folder.is_dir():  # (/proc answers ENOENT too: it is there)
            raise OutputError(f"cannot write in {shown(folder)}: the folder does not exist") from None
        advice = "" if _disk_full(exc) else f"; use {elsewhere} to write elsewhere"
        raise _output_error(exc, f"cannot write in {shown(folder)}: {_why(exc, elsewhere)}{advice}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        mode = _regular_file_mode(path)
        if mode is not None:  # a replaced file keeps the permissions it was given
            os.chmod(tmp, mode)
        _put_in_place(tmp, path, may_replace)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _output_error(
                exc, f"cannot write {shown(path.name)}: {_why(exc, elsewhere)}"
            ) from None  # the caller names its input
        raise
    return path


def _put_in_place(tmp: str, path: Path, may_replace: Callable[[Path], bool] | None) -> None:
    if may_replace is None:
        check_replaceable(path)
        os.replace(tmp, path)
        return
    if not os.path.lexists(path):
        try:
            os.link(tmp, path)  # fails if a file appeared meanwhile: then it is judged below
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: the small window is accepted there
            if not os.path.lexists(path):
                os.replace(tmp, path)
                return
        else:
            os.unlink(tmp)
            return
    if not may_replace(path):
        raise OutputExistsError(
            f"{path.name} appeared while the job ran and was not written by funasr-subs; it was kept "
            "(use --overwrite to replace it)",
            path=path,
        )
    check_replaceable(path)
    os.replace(tmp, path)


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _output_error(exc: OSError, message: str) -> OutputError:
    """A full disk is DiskFullError (worth trying again later: ``watch`` does); anything else OutputError."""
    return DiskFullError(message) if _disk_full(exc) else OutputError(message)


def _why(exc: OSError, elsewhere: str) -> str:
    """An OSError as advice: a full disk and a name too long say so."""
    if _disk_full(exc):
        return f"the disk is full (no space left on the device): free some space, or write elsewhere with {elsewhere}"
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long for this file system: rename the media file shorter"
    return str(exc.strerror or exc)


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system of ``folder`` allows (255 where it cannot be asked)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_name_fits(path: Path) -> None:
    """OutputError when ``path``'s name is longer than its file system allows (say so, rather than fail later)."""
    size = len(os.fsencode(path.name))
    limit = name_max(path.parent) if path.parent.is_dir() else 255
    if size > limit:
        raise OutputError(
            f"cannot write {shown(path.name)}: the name would be {size} bytes, longer than the file system allows "
            f"({limit}): rename the media file shorter"
        )


#: Our temp files: ``.<final name>.<8 hex>.tmp``, the final name shortened (``<start>~<extension>``) when the whole
#: would not fit. Stale ones (a killed run) are recognised by this and by their extension.
_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$", re.DOTALL)
_OUR_EXTENSIONS = (".srt", ".ass", ".vtt", ".lrc", ".json")
_RUN_STARTED = time.time()
_cleaned: set[Path] = set()
_cleaned_lock = threading.Lock()


def temp_name(path: Path, token: str) -> str:
    """The temp file's name for ``path``: always fits wherever ``path``'s own name fits."""
    name = path.name
    whole = f".{name}.{token}.tmp"
    limit = name_max(path.parent) if path.parent.is_dir() else 255
    if len(os.fsencode(whole)) <= limit:
        return whole
    ext = os.path.splitext(name)[1]
    room = limit - len(os.fsencode(f".~{ext}.{token}.tmp"))
    start = os.fsencode(name[: -len(ext)] if ext else name)[: max(room, 1)]
    return f".{os.fsdecode(start.decode('utf-8', 'ignore').encode())}~{ext}.{token}.tmp"


def is_our_temp(name: str) -> bool:
    match = _TEMP.match(name)
    return match is not None and match.group("name").endswith(_OUR_EXTENSIONS)


def clean_stale_temps(folder: Path) -> int:
    """Remove temp files of ours in ``folder`` that are older than this run (left by a killed run); once a folder
    per process. Returns how many were removed."""
    with _cleaned_lock:
        if folder in _cleaned:
            return 0
        _cleaned.add(folder)
    removed = 0
    try:
        with os.scandir(folder) as entries:
            stale = [
                e.path
                for e in entries
                if is_our_temp(e.name)
                and e.is_file(follow_symlinks=False)
                and e.stat(follow_symlinks=False).st_mtime < _RUN_STARTED
            ]
    except OSError:
        return 0
    for tmp in stale:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
            removed += 1
    if removed:
        log.info("removed %d stale temporary file(s) left in %s by an interrupted run", removed, shown(folder))
    return removed


def _create_temp(path: Path) -> tuple[int, str]:
    """A new empty file beside ``path``, made with mode 0o666 so the umask applies as to any file the user makes."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(path.parent / temp_name(path, secrets.token_hex(4)))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def _regular_file_mode(path: Path) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISREG(st.st_mode) else None

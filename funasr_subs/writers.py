"""Cues → subtitle text (pysubs2), and the one helper that writes files atomically."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

import pysubs2

from funasr_subs.errors import OutputError
from funasr_subs.model import Cue

#: A style readable on a TV for CJK and Latin text alike (the player substitutes a font it has).
ASS_STYLE = pysubs2.SSAStyle(
    fontname="Noto Sans CJK SC",
    fontsize=64,
    primarycolor=pysubs2.Color(255, 255, 255, 0),
    outlinecolor=pysubs2.Color(0, 0, 0, 0),
    backcolor=pysubs2.Color(0, 0, 0, 128),
    outline=3,
    shadow=1,
    marginv=48,
    alignment=pysubs2.Alignment.BOTTOM_CENTER,
)


def to_ssafile(cues: Sequence[Cue]) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    subs.info["PlayResX"] = "1920"
    subs.info["PlayResY"] = "1080"
    subs.info["ScaledBorderAndShadow"] = "yes"
    subs.info["Title"] = "funasr-subs"
    subs.styles["Default"] = ASS_STYLE.copy()
    for cue in cues:
        text = r"\N".join(line.replace("\\", "\\\\").replace("{", "(").replace("}", ")") for line in cue.lines)
        subs.events.append(pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text=text))
    return subs


def render(cues: Sequence[Cue], fmt: str) -> str:
    """Subtitle text in ``fmt`` (srt, ass or vtt)."""
    if fmt not in ("srt", "ass", "vtt"):
        raise ValueError(f"unknown subtitle format {fmt!r}")
    return str(to_ssafile(cues).to_string(fmt))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes (streamed), None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temp file beside ``path`` and rename it into place: never a half-written file."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path`` and rename it into place: never a half-written file."""
    folder = path.parent
    try:
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise OutputError(
            f"cannot write in {folder}: {exc.strerror}; use --output-dir DIR to write elsewhere", path=path
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        mode = _regular_file_mode(path)
        if mode is not None:  # a replaced file keeps the permissions it was given
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path.name}: {exc.strerror}", path=path) from None
        raise
    return path


def _create_temp(path: Path) -> tuple[int, str]:
    """A new empty file beside ``path``, made with mode 0o666 so the umask applies as to any file the user makes."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
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

"""Reading small files we did not make (hotwords, sidecars, config, saved replies) without hanging or bloating.

Only regular files (and character devices such as ``/dev/null``) are read: a FIFO named ``hotwords.txt`` would block
``open()`` forever. The file is opened non-blocking, checked with ``fstat`` on the descriptor (no race with a swap),
and read up to a size limit (``/dev/zero`` ends there, a terminal answers EAGAIN instead of waiting).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotRegularFileError(OSError):
    """The path is a FIFO, socket, device or folder: not read."""


class FileTooBigError(OSError):
    """The file is larger than the limit for its kind."""


def read_regular_bytes(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); FileNotFoundError and other OSErrors as usual."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):  # /dev/null: the usual "empty file"
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a named pipe" if stat.S_ISFIFO(st.st_mode) else None
            raise NotRegularFileError(errno.EINVAL, f"not a regular file ({kind or 'a device or socket'})", str(path))
        if st.st_size > limit:
            raise FileTooBigError(errno.EFBIG, f"larger than {limit // 1024} KiB ({st.st_size} bytes)", str(path))
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            piece = os.read(fd, min(left, 1 << 20))
            if not piece:
                break
            chunks.append(piece)
            left -= len(piece)
        data = b"".join(chunks)
        if len(data) > limit:  # it grew while we read
            raise FileTooBigError(errno.EFBIG, f"larger than {limit // 1024} KiB", str(path))
        return data
    finally:
        os.close(fd)


def read_regular_text(path: Path | str, limit: int, encoding: str = "utf-8") -> str:
    """Like :func:`read_regular_bytes`, decoded (UnicodeDecodeError for bytes that are not ``encoding``)."""
    return read_regular_bytes(path, limit).decode(encoding)

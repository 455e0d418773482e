"""ffmpeg started before the job that needs it, and taken over by that job.

``transcribe`` starts the first files' ffmpeg while Python is still importing the pipeline (websockets, asyncio,
the subtitle writers: ~0.1 s on a 2-core machine): ffmpeg's own start-up and its reading of the file overlap ours.
The process is an ordinary child (``subprocess.Popen``) whose output waits in its pipe; the job that opens the same
command for the same unchanged file adopts it into its event loop (:func:`adopt`). Whatever nobody took is killed
by :func:`drop` when the run ends. Best effort: any problem just leaves the job to start its own ffmpeg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

#: How deep ffmpeg's output pipe is made (64 kB by default, under a millisecond of its decoding): 1 MB (Linux's
#: most for a user) lets ffmpeg decode on for 13 ms while the loop is busy with the chunk before (speech activity).
PIPE_BYTES = 1 << 20

_Key = tuple[str, int, int, tuple[str, ...]]
_started: dict[_Key, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


def _key(path: Path, argv: list[str]) -> _Key | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.absolute()), st.st_size, st.st_mtime_ns, tuple(argv))


def start(path: Path, argv: list[str]) -> None:
    """Start ``argv`` (an ffmpeg command for ``path``) now, for a job to take over later. Not on Windows, whose
    event loop cannot read the pipes of a process it did not start."""
    if sys.platform == "win32":
        return
    key = _key(path, argv)
    if key is None:
        return
    with _lock:
        if key in _started:
            return
        try:
            _started[key] = _popen(argv)
        except OSError:
            return
    log.debug("%s: ffmpeg started early", path)


def _popen(argv: list[str]) -> subprocess.Popen[bytes]:
    out = subprocess.PIPE
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, pipesize=PIPE_BYTES)
    except PermissionError:  # a pipe that deep is over this user's allowance (/proc/sys/fs/pipe-*)
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def take(path: Path, argv: list[str]) -> subprocess.Popen[bytes] | None:
    """The process :func:`start` started for this command and this (unchanged) file, or None."""
    key = _key(path, argv)
    if key is None:
        return None
    with _lock:
        proc = _started.pop(key, None)
    if proc is not None and proc.poll() is not None and proc.returncode != 0:
        proc.communicate()
        return None  # it failed on its own (a file that changed, a signal): the job starts a fresh one
    if proc is not None:
        log.debug("%s: ffmpeg started early taken over", path)
    return proc


def drop() -> None:
    """Kill and reap every process nobody took (files skipped, a run that ended early)."""
    with _lock:
        procs = list(_started.values())
        _started.clear()
    stop(procs)


def stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """Kill each of ``procs`` and collect it (its pipes read to their end)."""
    for proc in procs:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.communicate()


class Adopted:
    """A started ``Popen`` with the parts of ``asyncio.subprocess.Process`` that :class:`~funasr_subs.media.
    FfmpegStream` uses: stream readers on its pipes, ``wait()``, ``kill()``, ``returncode``."""

    def __init__(self, popen: subprocess.Popen[bytes], stdout: asyncio.StreamReader, stderr: asyncio.StreamReader):
        self._popen = popen
        self.stdout = stdout
        self.stderr = stderr
        self.pid = popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()

    async def wait(self) -> int:
        if self._popen.poll() is None:
            await asyncio.to_thread(self._popen.wait)
        return self._popen.returncode


async def adopt(popen: subprocess.Popen[bytes], limit: int) -> Adopted:
    """``popen``'s pipes read by this event loop."""
    assert popen.stdout is not None and popen.stderr is not None
    loop = asyncio.get_running_loop()
    stdout = asyncio.StreamReader(limit=limit, loop=loop)
    stderr = asyncio.StreamReader(loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout, loop=loop), popen.stdout)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stderr, loop=loop), popen.stderr)
    return Adopted(popen, stdout, stderr)

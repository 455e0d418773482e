"""Standard output of the commands that print (config, status, check, dry runs, reports, the hook's lines): every
write goes through here, so a closed or full output, or a pipe whose reader has gone, is one :class:`StdoutError`
the CLI turns into one line and exit 1 (a broken pipe: exit 1 without a word, as ``| head`` expects), never a
traceback."""

from __future__ import annotations

import errno
import logging
import os
import sys
from typing import TextIO

from funasr_subs.errors import StdoutError


def _error(exc: OSError) -> StdoutError:
    why = exc.strerror or str(exc)
    return StdoutError(f"cannot write to standard output: {why}", broken_pipe=exc.errno == errno.EPIPE)


def write(text: str) -> None:
    """``text`` written and flushed to standard output; StdoutError when it cannot be."""
    stream = sys.stdout
    try:
        if stream is None:  # started with fd 1 closed (``>&-``): Python has no stdout at all
            raise OSError(errno.EBADF, "it is closed")
        stream.write(text)
        stream.flush()
    except OSError as exc:
        raise _error(exc) from None


def line(text: str) -> None:
    """``text`` and a newline (what ``print`` did)."""
    write(text + "\n")


class LogHandler(logging.StreamHandler[TextIO]):
    """Log lines meant for standard output (``hook``'s, for Bazarr). When the output cannot take one, the work goes
    on: that line and the ones after it are dropped and the failure is kept (``failure``) for the CLI to say once
    (:func:`logged_failure`), instead of logging's traceback per line."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.closed = sys.stdout is None  # started with fd 1 closed (logging would write to stderr instead)
        self.failure: StdoutError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.failure is not None:
            return
        if self.closed:
            self.failure = _error(OSError(errno.EBADF, "it is closed"))
            return
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
        elif self.failure is None:
            self.failure = _error(exc)


def logged_failure() -> StdoutError | None:
    """The failure a :class:`LogHandler` of the root logger met, if any."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogHandler) and handler.failure is not None:
            return handler.failure
    return None


def give_up() -> None:
    """After a StdoutError: what is still buffered is dropped (fd 1 goes to /dev/null), so the interpreter's last
    flush at exit cannot raise again."""
    stream = sys.stdout
    if stream is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a test's capture) or fd 1 closed: nothing to silence
        pass

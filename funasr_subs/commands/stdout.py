"""Standard output of the commands that print (config, status, check, dry runs, reports): every write goes through
:func:`write`, so a closed or full output, or a pipe whose reader has gone, is one :class:`StdoutError` the CLI turns
into one line and exit 1 (a broken pipe: exit 1 without a word, as ``| head`` expects), never a traceback."""

from __future__ import annotations

import errno
import os
import sys

from funasr_subs.errors import StdoutError


def write(text: str) -> None:
    """``text`` written and flushed to standard output; StdoutError when it cannot be."""
    stream = sys.stdout
    try:
        if stream is None:  # started with fd 1 closed (``>&-``): Python has no stdout at all
            raise OSError(errno.EBADF, "it is closed")
        stream.write(text)
        stream.flush()
    except OSError as exc:
        raise StdoutError(
            f"cannot write to standard output: {exc.strerror or exc}", broken_pipe=exc.errno == errno.EPIPE
        ) from None


def line(text: str) -> None:
    """``text`` and a newline (what ``print`` did)."""
    write(text + "\n")


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

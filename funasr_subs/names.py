"""File names as Linux allows them: any bytes but ``/`` and NUL, so possibly not UTF-8 and possibly with newlines.

Python holds undecodable bytes as surrogate escapes (``b"\\xff"`` → ``"\\udcff"``); every place that turns a name
into text for someone else (a log line, JSON, SQLite, a terminal) goes through here, losslessly where the text is
read back (JSON, the database) and visibly escaped where a person reads it (logs, reports).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

_SURROGATE = re.compile("[\ud800-\udfff]")
#: What a person must not get raw in a one-line message: surrogate escapes and control characters (newline too).
_UNSHOWABLE = re.compile("[\ud800-\udfff\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte: show the byte
        return f"\\x{code - 0xDC00:02x}"
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


def shown(text: object) -> str:
    """``text`` for a log line or a terminal: one line, undecodable bytes as ``\\xff``, newlines as ``\\n``."""
    return _UNSHOWABLE.sub(_escape, str(text))


#: How many characters of a value from outside (a hotword, a language tag, a path) a message or log line repeats.
ECHO_CHARS = 60


def echo(value: object, limit: int = ECHO_CHARS, *, quote: bool = True) -> str:
    """``repr(value)`` for a message (with ``quote=False``: the text as :func:`shown` gives it), cut to ``limit``
    characters and saying how long it was: a 1 MB hotword or a 5 KB language tag is named by its start, not repeated
    in full in every log line and HTTP answer."""
    text = value if isinstance(value, str) else repr(value)
    show = repr if quote else shown
    if len(text) <= limit:
        return show(value) if quote else shown(text)
    return f"{show(text[:limit])}… ({len(text):,} characters)"


def json_text(text: str) -> str:
    """JSON text from ``json.dumps(..., ensure_ascii=False)`` made encodable: lone surrogates become ``\\udcff``
    escapes, which ``json.loads`` turns back into the same surrogates (lossless)."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def db_key(path: Path | str) -> str | bytes:
    """A path as SQLite stores it: text when it is valid UTF-8, else its raw bytes (a BLOB never equals text, so
    the two forms cannot collide, and databases written before keep working)."""
    text = str(path)
    if _SURROGATE.search(text) is None:
        return text
    return os.fsencode(text)


def from_db(value: str | bytes) -> Path:
    return Path(os.fsdecode(value)) if isinstance(value, bytes) else Path(value)


class ShownFilter(logging.Filter):
    """A handler filter making every record one showable line (a file named ``a\\nb`` cannot forge log lines, and
    an undecodable name cannot make the handler fail)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let logging report it as usual
            return True
        safe = shown(message)
        if safe != message or record.args:
            record.msg, record.args = safe, None
        return True


def too_long(exc: OSError) -> bool:
    """True for the error of a name no file system can hold (a component over 255 bytes, a path over 4096)."""
    return exc.errno == errno.ENAMETOOLONG


def too_long_message(path: Path | str) -> str:
    """The one-line error for such a name, naming it by its start."""
    return f"{echo(shown(path), quote=False)}: the name is too long for the file system (check the path)"

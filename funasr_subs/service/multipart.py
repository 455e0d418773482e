"""A streaming ``multipart/form-data`` parser: the body is read in chunks, file parts go straight to temp files.

Memory use is bounded by the chunk size plus the small fields the caller asks to keep; nothing is read past the
declared Content-Length, so keep-alive connections stay in sync. The caller names the parts it wants
(``file_fields`` to disk, ``keep_fields`` in memory); every other part is read and dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 64


class MultipartError(ValueError):
    """The body is not valid multipart/form-data (HTTP 400) or too large (``status`` 413)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class UploadedFile:
    """A file part written to ``path`` (a temp file the :class:`Form` deletes on cleanup)."""

    field: str
    filename: str
    content_type: str
    path: Path
    size: int


@dataclass
class Form:
    """The parsed body: kept fields as text, file parts as temp files. Use as a context manager."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    _temps: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self._temps:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._temps.clear()

    def __enter__(self) -> Form:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


_TOKEN = r"[^\s;=\"]+"
_PARAM = re.compile(rf'\s*;\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b.wav"'`` → ``("form-data", {"name": "a", "filename": "b.wav"})``.

    Parameter names are lower-cased; quoted values are unescaped; ``name*=UTF-8''...`` (RFC 5987) is decoded and
    wins over the plain form.
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key.endswith("*"):
            charset, _, encoded = raw.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                params[key[:-1]] = urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
        elif key not in params:
            params[key] = raw
    return main.strip().lower(), params


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type, or MultipartError."""
    if not content_type:
        raise MultipartError("no Content-Type: send multipart/form-data")
    kind, params = parse_header_value(content_type)
    if kind != "multipart/form-data":
        raise MultipartError(f"Content-Type is {kind!r}: send multipart/form-data")
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise MultipartError("multipart/form-data without a valid boundary parameter")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError("the multipart boundary must be ASCII") from None


class _Body:
    """Reads at most ``length`` bytes from ``raw`` in chunks, with a look-ahead buffer."""

    def __init__(self, raw: Readable, length: int) -> None:
        self.raw = raw
        self.remaining = length
        self.buf = b""

    def more(self) -> bool:
        """Append one chunk to the buffer; False at the end of the body."""
        if self.remaining <= 0:
            return False
        data = self.raw.read(min(CHUNK, self.remaining))
        if not data:
            raise MultipartError(f"the body ended {self.remaining} bytes early (client disconnected?)")
        self.remaining -= len(data)
        self.buf += data
        return True

    def drain(self) -> None:
        """Read and drop the rest of the body (the epilogue)."""
        self.buf = b""
        while self.more():
            self.buf = b""


class _Sink:
    """Where one part's bytes go: a temp file, a capped memory buffer, or nowhere."""

    def __init__(
        self,
        name: str,
        *,
        path: Path | None = None,
        fh: BinaryIO | None = None,
        cap: int = 0,
        filename: str = "",
        content_type: str = "",
    ) -> None:
        self.name = name
        self.path = path
        self.fh = fh
        self.cap = cap
        self.filename = filename
        self.content_type = content_type
        self.size = 0
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.fh is not None:
            self.fh.write(chunk)
        elif self.cap:
            if self.size > self.cap:
                raise MultipartError(f"form field {self.name!r} is larger than {self.cap} bytes", status=413)
            self.data += chunk


def _safe_suffix(filename: str) -> str:
    suffix = Path(filename.replace("\\", "/")).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


def parse_form(
    rfile: Readable,
    content_type: str | None,
    content_length: int,
    *,
    file_fields: Collection[str] = (),
    keep_fields: Collection[str] = (),
    tmp_dir: Path | None = None,
    max_field_bytes: int = 1024 * 1024,
) -> Form:
    """Parse a multipart body of exactly ``content_length`` bytes from ``rfile``.

    Parts named in ``file_fields`` are streamed to temp files in ``tmp_dir`` (the system default when None); parts
    named in ``keep_fields`` are kept as text (at most ``max_field_bytes`` each); others are dropped. On error every
    temp file is removed and MultipartError raised.
    """
    parser = _Parser(
        _Body(rfile, content_length),
        b"\r\n--" + boundary_of(content_type),
        file_fields=file_fields,
        keep_fields=keep_fields,
        tmp_dir=tmp_dir,
        max_field_bytes=max_field_bytes,
    )
    try:
        parser.run()
    except BaseException:
        if parser.sink.fh is not None:
            parser.sink.fh.close()
        parser.form.cleanup()
        raise
    return parser.form


class _Parser:
    def __init__(
        self,
        body: _Body,
        delimiter: bytes,
        *,
        file_fields: Collection[str],
        keep_fields: Collection[str],
        tmp_dir: Path | None,
        max_field_bytes: int,
    ) -> None:
        self.body = body
        self.body.buf = b"\r\n"  # lets the first boundary match the same "\r\n--boundary" as the others
        self.delimiter = delimiter
        self.file_fields = file_fields
        self.keep_fields = keep_fields
        self.tmp_dir = tmp_dir
        self.max_field_bytes = max_field_bytes
        self.form = Form()
        self.sink = _Sink("preamble")  # bytes before the first boundary are dropped

    def run(self) -> None:
        body = self.body
        parts = 0
        while True:
            self._copy_until_delimiter()
            self._close_sink()
            while len(body.buf) < 2 and body.more():
                pass
            if body.buf[:2] == b"--":
                body.drain()
                return
            parts += 1
            if parts > MAX_PARTS:
                raise MultipartError(f"more than {MAX_PARTS} parts in the form")
            self.sink = self._open_sink(self._read_headers())

    def _open_sink(self, headers: dict[str, str]) -> _Sink:
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise MultipartError("a form part has no Content-Disposition header")
        kind, params = parse_header_value(disposition)
        name = params.get("name")
        if kind != "form-data" or name is None:
            raise MultipartError(f"a form part's Content-Disposition is not form-data with a name: {disposition!r}")
        if name in self.form.files or name in self.form.fields:
            raise MultipartError(f"the form has more than one {name!r} part")
        if name in self.file_fields:
            filename = params.get("filename", "")
            fd, tmp = tempfile.mkstemp(prefix="funasr-subs-upload-", suffix=_safe_suffix(filename), dir=self.tmp_dir)
            path = Path(tmp)
            self.form._temps.append(path)
            content_type = headers.get("content-type", "application/octet-stream")
            return _Sink(name, path=path, fh=os.fdopen(fd, "wb"), filename=filename, content_type=content_type)
        if name in self.keep_fields:
            return _Sink(name, cap=self.max_field_bytes)
        return _Sink(name)

    def _read_headers(self) -> dict[str, str]:
        body = self.body
        # the rest of the boundary line: optional transport padding, then CRLF
        while b"\r\n" not in body.buf:
            if len(body.buf) > 256 or not body.more():
                raise MultipartError("malformed multipart boundary line")
        line, _, body.buf = body.buf.partition(b"\r\n")
        if line.strip(b" \t"):
            raise MultipartError("garbage after a multipart boundary")
        while b"\r\n\r\n" not in body.buf and not body.buf.startswith(b"\r\n"):
            if len(body.buf) > MAX_HEADER_BYTES:
                raise MultipartError(f"form part headers larger than {MAX_HEADER_BYTES} bytes")
            if not body.more():
                raise MultipartError("the body ended inside a form part's headers")
        if body.buf.startswith(b"\r\n"):
            raw, body.buf = b"", body.buf[2:]
        else:
            raw, _, body.buf = body.buf.partition(b"\r\n\r\n")
        if len(raw) > MAX_HEADER_BYTES:
            raise MultipartError(f"form part headers larger than {MAX_HEADER_BYTES} bytes")
        headers: dict[str, str] = {}
        for line_bytes in raw.split(b"\r\n") if raw else ():
            key, sep, value = line_bytes.decode("utf-8", "replace").partition(":")
            if not sep:
                raise MultipartError(f"malformed form part header line {line_bytes[:80]!r}")
            headers[key.strip().lower()] = value.strip()
        return headers

    def _copy_until_delimiter(self) -> None:
        """Stream bytes into the current sink until the delimiter; leave the buffer just after it."""
        body, delimiter, sink = self.body, self.delimiter, self.sink
        keep = len(delimiter) - 1
        while True:
            at = body.buf.find(delimiter)
            if at >= 0:
                sink.write(body.buf[:at])
                body.buf = body.buf[at + len(delimiter) :]
                return
            if len(body.buf) > keep:
                sink.write(body.buf[: len(body.buf) - keep])
                body.buf = body.buf[len(body.buf) - keep :]
            if not body.more():
                raise MultipartError("the body ended before the closing multipart boundary")

    def _close_sink(self) -> None:
        sink = self.sink
        if sink.fh is not None and sink.path is not None:
            sink.fh.close()
            sink.fh = None
            self.form.files[sink.name] = UploadedFile(sink.name, sink.filename, sink.content_type, sink.path, sink.size)
        elif sink.cap:
            try:
                self.form.fields[sink.name] = bytes(sink.data).decode("utf-8")
            except UnicodeDecodeError:
                raise MultipartError(f"form field {sink.name!r} is not UTF-8 text") from None

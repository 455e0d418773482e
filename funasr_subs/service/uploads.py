"""Request bodies read with aiohttp's streaming multipart reader: file parts go straight to spool files.

Memory stays flat whatever the upload's size: file parts are copied to a temp file chunk by chunk (and hashed on
the way, for the ``/asr`` result cache); the small fields a route asks for are kept (capped), every other part is
read and dropped. Any failure removes the spool files before the error reaches the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from funasr_subs.service.responses import RequestError

CHUNK = 1024 * 1024  # per read: larger reads cost fewer boundary searches; memory stays flat
MAX_PARTS = 64
MAX_FIELD_BYTES = 1024 * 1024
SPOOL_PREFIX = "funasr-subs-upload-"


@dataclass(frozen=True)
class UploadedFile:
    """A file part written to ``path`` (a temp file the :class:`Form` deletes on cleanup)."""

    field: str
    filename: str
    content_type: str
    path: Path
    size: int
    sha256: str


@dataclass
class Form:
    """The parsed body: kept fields as text, file parts as spool files. Use as a context manager."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)  # repeated fields such as ``name[]``
    temps: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self.temps:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.temps.clear()

    def __enter__(self) -> Form:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def safe_suffix(filename: str) -> str:
    suffix = Path(filename.replace("\\", "/")).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


def is_multipart(request: web.BaseRequest) -> bool:
    return request.content_type.lower().startswith("multipart/")


def _check_content_type(request: web.BaseRequest) -> None:
    raw = request.headers.get("Content-Type")
    if not raw:
        raise RequestError(400, "no Content-Type: send multipart/form-data")
    mime = parse_mimetype(raw)
    kind = f"{mime.type}/{mime.subtype}".lower()
    if kind != "multipart/form-data":
        raise RequestError(400, f"Content-Type is {kind!r}: send multipart/form-data")
    boundary = mime.parameters.get("boundary", "")
    if not boundary or len(boundary) > 200 or not boundary.isascii():
        raise RequestError(400, "multipart/form-data without a valid boundary parameter")


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a write's outcome as seen (a cancelled upload may leave one unawaited; the file is removed anyway)."""
    if not future.cancelled():
        future.exception()


async def _copy_file(part: BodyPartReader, form: Form, name: str, tmp_dir: Path | None) -> None:
    filename = part.filename or ""
    fd, tmp = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=safe_suffix(filename), dir=tmp_dir)
    path = Path(tmp)
    form.temps.append(path)
    digest = hashlib.sha256()
    size = 0
    loop = asyncio.get_running_loop()

    def consume(chunk: bytes) -> None:  # hashlib and write() release the GIL: this overlaps the next read
        digest.update(chunk)
        fh.write(chunk)

    with os.fdopen(fd, "wb") as fh:
        pending: asyncio.Future[None] | None = None
        try:
            while chunk := await part.read_chunk(CHUNK):
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, consume, chunk)
                pending.add_done_callback(_retrieve)
                size += len(chunk)
        finally:
            if pending is not None:
                await asyncio.shield(pending)  # raises the write's own error (disk full ...) here
    content_type = part.headers.get("Content-Type", "application/octet-stream")
    form.files[name] = UploadedFile(name, filename, content_type, path, size, digest.hexdigest())


async def _field_text(part: BodyPartReader, name: str, cap: int) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > cap:
            raise RequestError(413, f"form field {name!r} is larger than {cap} bytes")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(400, f"form field {name!r} is not UTF-8 text") from None


async def _read_parts(
    reader: MultipartReader,
    form: Form,
    file_fields: Collection[str],
    keep_fields: Collection[str],
    list_fields: Collection[str],
    tmp_dir: Path | None,
    cap: int,
) -> None:
    seen: set[str] = set()
    for count in range(MAX_PARTS + 1):
        part = await reader.next()
        if part is None:
            return
        if count == MAX_PARTS:
            raise RequestError(400, f"more than {MAX_PARTS} parts in the form")
        if not isinstance(part, BodyPartReader):
            raise RequestError(400, "nested multipart parts are not supported")
        disposition = part.headers.get("Content-Disposition")
        if disposition is None:
            raise RequestError(400, "a form part has no Content-Disposition header")
        name = part.name
        if name is None:
            raise RequestError(400, f"a form part's Content-Disposition has no name: {disposition!r}")
        if name in list_fields:
            form.lists.setdefault(name, []).append(await _field_text(part, name, cap))
            continue
        if name in seen:
            raise RequestError(400, f"the form has more than one {name!r} part")
        seen.add(name)
        if name in file_fields:
            await _copy_file(part, form, name, tmp_dir)
        elif name in keep_fields:
            form.fields[name] = await _field_text(part, name, cap)
        else:
            await part.release()
    raise AssertionError("unreachable")


async def read_form(
    request: web.Request,
    *,
    file_fields: Collection[str] = (),
    keep_fields: Collection[str] = (),
    list_fields: Collection[str] = (),
    tmp_dir: Path | None = None,
    max_field_bytes: int = MAX_FIELD_BYTES,
) -> Form:
    """Read the whole multipart body: ``file_fields`` to spool files in ``tmp_dir``, ``keep_fields`` as text.

    Raises RequestError (400 malformed, 413 a field too large, 499 the client left mid-body, 507 the spool folder is
    full or unwritable); on any error, cancellation included, the spool files are removed first.
    """
    _check_content_type(request)
    form = Form()
    try:
        reader = await request.multipart()
        await _read_parts(reader, form, file_fields, keep_fields, list_fields, tmp_dir, max_field_bytes)
        await drain(request)
    except RequestError:
        form.cleanup()
        raise
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        form.cleanup()
        raise RequestError(400, _malformed(exc)) from None
    except ConnectionError:  # aiohttp's "Connection lost": the client went away mid-body, not a storage fault
        form.cleanup()
        raise RequestError(499, "the client closed the connection during the upload") from None
    except OSError as exc:
        form.cleanup()
        where = tmp_dir or tempfile.gettempdir()
        raise RequestError(
            507, f"cannot store the upload on the service host ({exc.strerror}): check {where}"
        ) from None
    except BaseException:
        form.cleanup()
        raise
    return form


def _malformed(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "header" in text.lower() or isinstance(exc, HttpProcessingError):
        return f"malformed form part header ({text})"
    return f"malformed multipart body: the body ended or a boundary is wrong ({text})"


async def drain(request: web.Request) -> None:
    """Read what is left of the body (an epilogue), so the connection can carry the next request."""
    while await request.content.readany():
        pass


async def read_body(request: web.Request) -> bytes:
    """The whole (already size-checked) body; 400 when it ended before its Content-Length, 499 when the client
    closed the connection before sending it all."""
    try:
        data = await request.read()
    except ConnectionError:  # aiohttp's "Connection lost" (was: a 500 with a traceback in the log)
        raise RequestError(499, "the client closed the connection during the body") from None
    if request.content_length is not None and len(data) != request.content_length:
        raise RequestError(400, "the body ended early")
    return data

"""One HTTP call to a media server (Jellyfin, Emby, Plex) with a timeout and a size cap; stdlib only."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from funasr_subs import __version__
from funasr_subs.errors import FunasrSubsError

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
USER_AGENT = f"funasr-subs/{__version__}"


class UpstreamError(FunasrSubsError):
    """A media server could not be reached or answered with an error."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError(f"the media server's reply is not JSON ({exc})") from None


def redact(url: str) -> str:
    """The URL without its query string (which may hold an API key) for logs and messages."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def call(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Reply:
    """Make one request. HTTP error statuses are returned (not raised); connection failures raise UpstreamError."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("User-Agent", USER_AGENT)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_RESPONSE_BYTES + 1)
            status, ctype = response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        data = exc.read(MAX_RESPONSE_BYTES + 1) if exc.fp is not None else b""
        status, ctype = exc.code, exc.headers.get("Content-Type", "") if exc.headers else ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpstreamError(f"{method} {redact(url)} failed: {reason}") from None
    if len(data) > MAX_RESPONSE_BYTES:
        raise UpstreamError(f"{method} {redact(url)}: reply larger than {MAX_RESPONSE_BYTES} bytes")
    log.debug("%s %s -> %d (%d bytes)", method, redact(url), status, len(data))
    return Reply(status, data, ctype)


def join(base: str, path: str, query: Mapping[str, str] | None = None) -> str:
    """``base`` (which may end with a sub-path such as ``/jellyfin``) + ``path`` + an encoded query."""
    url = base.rstrip("/") + "/" + path.lstrip("/")
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return url

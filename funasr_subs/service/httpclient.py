"""Calls to a media server (Jellyfin, Emby, Plex) on aiohttp's client: one timeout per call, a size cap, no raise.

The HTTP service shares one ``ClientSession`` (made and closed with the app); the library-refresh action, which
runs after a job in a worker thread, opens a short-lived one with :func:`one_session`.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from funasr_subs import __version__
from funasr_subs.aio import read_at_most
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
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise UpstreamError(f"the media server's reply is not JSON ({exc})") from None


def redact(url: str) -> str:
    """The URL without its query string (which may hold an API key) for logs and messages."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@asynccontextmanager
async def one_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for a few calls (TLS verified; no cookies kept between media servers)."""
    async with aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        yield session


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Reply:
    """Make one request. HTTP error statuses are returned (not raised); connection failures and redirects (never
    followed) raise UpstreamError."""
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers or {}),
            data=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            data = await read_at_most(response.content, MAX_RESPONSE_BYTES)
            status, ctype = response.status, response.headers.get("Content-Type", "")
            location = response.headers.get("Location", "")
    except TimeoutError:
        raise UpstreamError(f"{method} {redact(url)} failed: no answer within {timeout:g} s") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise UpstreamError(f"{method} {redact(url)} failed: {exc or type(exc).__name__}") from None
    if 300 <= status < 400:  # never followed: the API key would go along to wherever it points
        where = f" to {redact(urllib.parse.urljoin(url, location))}" if location else ""
        raise UpstreamError(
            f"{method} {redact(url)} answered HTTP {status}, a redirect{where}: funasr-subs follows none (the key "
            "would go along); set the media server's URL to where it redirects (http/https, the port, a sub-path)"
        )
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

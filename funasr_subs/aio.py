"""Bounded waits that never swallow a cancel (pure asyncio helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


async def bounded(aw: Awaitable[T], seconds: float | None) -> T:
    """``await aw`` for at most ``seconds`` (TimeoutError past that; None: no bound).

    Python 3.11's ``asyncio.wait_for`` can swallow a cancel that arrives just as the awaited thing completes (fixed
    in 3.12, gh-86296): a job cancelled between two upload frames then went on to wait for a reply that never came.
    ``asyncio.timeout`` has no such race."""
    async with asyncio.timeout(seconds):
        return await aw


class _Readable(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


async def read_at_most(stream: _Readable, limit: int) -> bytes:
    """The body of ``stream`` (an aiohttp ``StreamReader``) to its end, or its first ``limit + 1`` bytes when it is
    longer (so a caller can tell "too large" by the length).

    ``StreamReader.read(n)`` returns as soon as *some* bytes have arrived, not ``n`` of them: an answer that came in
    several packets (chunked, behind a proxy, a slow link) was cut at the first one and read as not JSON."""
    parts: list[bytes] = []
    got = 0
    while got <= limit:
        part = await stream.read(limit + 1 - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)

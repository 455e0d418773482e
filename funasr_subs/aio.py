"""Bounded waits that never swallow a cancel (pure asyncio helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(aw: Awaitable[T], seconds: float | None) -> T:
    """``await aw`` for at most ``seconds`` (TimeoutError past that; None: no bound).

    Python 3.11's ``asyncio.wait_for`` can swallow a cancel that arrives just as the awaited thing completes (fixed
    in 3.12, gh-86296): a job cancelled between two upload frames then went on to wait for a reply that never came.
    ``asyncio.timeout`` has no such race."""
    async with asyncio.timeout(seconds):
        return await aw

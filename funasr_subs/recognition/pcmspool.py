"""Speech segments sent as requests of their own (segment timing): the PCM decoded once to a temporary file
(streaming, beside the speech detector; run.FileChunks reads any stretch of it back), and the segments sent at once
up to the pool's capacity (a failure for good cancels the rest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol, TypeVar

from funasr_subs.media.activity import Speech
from funasr_subs.media.vad import Listener

T = TypeVar("T")
P = TypeVar("P")


class _Chunks(Protocol):
    def chunks(self) -> AsyncIterator[bytes]: ...


async def decode_to_file(open_stream: Callable[[], AbstractAsyncContextManager[_Chunks]], path: Path) -> Speech:
    """The whole PCM stream written to ``path`` (nothing held in memory) and the speech heard in it."""
    listener = Listener()
    with open(path, "wb") as out:
        async with open_stream() as stream:
            async for chunk in stream.chunks():
                listener.feed(chunk)
                await asyncio.to_thread(out.write, chunk)
    return listener.finish()


async def send_all(pieces: Sequence[P], send: Callable[[P], Awaitable[T]], capacity: int) -> list[T]:
    """``send(piece)`` for every piece, at most ``capacity`` at once; the results in order. The first failure
    cancels the others and is raised."""
    room = asyncio.Semaphore(max(1, capacity))

    async def one(piece: P) -> T:
        async with room:
            return await send(piece)

    tasks = [asyncio.ensure_future(one(piece)) for piece in pieces]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise

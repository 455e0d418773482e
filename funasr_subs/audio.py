"""Audio: ffmpeg run as an async stream of large chunks (the command line comes from ``funasr_subs.media``)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from funasr_subs.errors import CorruptMediaError, ToolMissingError
from funasr_subs.media import BYTES_PER_SECOND, INSTALL_HINT

log = logging.getLogger(__name__)


class FfmpegStream:
    """ffmpeg as an async iterator of large chunks; its stderr kept (last lines only) for error messages."""

    def __init__(
        self,
        argv: list[str],
        media: Path,
        *,
        chunk_bytes: int,
        expect_bytes: int = 0,
        head_filter: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.argv = argv
        self.media = media
        self.chunk_bytes = chunk_bytes
        self.expect_bytes = expect_bytes  # PCM: what a whole decode yields; a damaged file falls well short
        self.head_filter = head_filter  # applied to the first chunk only (the mp4 head: see mp4head)
        self.bytes_read = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FfmpegStream:
        log.debug("running %s", self.argv)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=self.chunk_bytes,
            )
        except FileNotFoundError:
            raise ToolMissingError(f"ffmpeg was not found: {INSTALL_HINT}") from None
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        return self

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._stderr.append(line)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Chunks of ``chunk_bytes`` (the last one shorter); CorruptMediaError when ffmpeg fails."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        buf = bytearray()
        while True:
            piece = await stdout.read(self.chunk_bytes - len(buf))
            if not piece:
                break
            buf += piece
            if len(buf) >= self.chunk_bytes:
                yield self._take(buf)
                buf.clear()
        if buf:
            yield self._take(buf)
        code = await self._proc.wait()
        if self._stderr_task is not None:
            await self._stderr_task
        if code != 0:
            detail = self._stderr[-1] if self._stderr else f"ffmpeg exited with code {code}"
            raise CorruptMediaError(f"ffmpeg could not decode the audio: {detail}", path=self.media)
        if self.bytes_read == 0:
            raise CorruptMediaError("ffmpeg produced no audio: the audio track is empty or unreadable", path=self.media)
        if self._stderr:
            # ffmpeg skips damaged packets and exits 0; a decode that falls far short means a damaged file
            if self.expect_bytes and self.bytes_read < 0.9 * self.expect_bytes:
                got, want = self.bytes_read / BYTES_PER_SECOND, self.expect_bytes / BYTES_PER_SECOND
                raise CorruptMediaError(
                    f"the file is damaged: ffmpeg decoded only {got:.1f} of {want:.1f} s of audio "
                    f"({self._stderr[-1]}); re-download or remux it",
                    path=self.media,
                )
            log.warning(
                "%s: ffmpeg reported errors while decoding (%s); subtitles may miss a moment",
                self.media,
                self._stderr[-1],
            )

    def _take(self, buf: bytearray) -> bytes:
        first = self.bytes_read == 0
        self.bytes_read += len(buf)
        if first and self.head_filter is not None:
            return self.head_filter(bytes(buf))
        return bytes(buf)

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._stderr_task is not None and not self._stderr_task.done():
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task

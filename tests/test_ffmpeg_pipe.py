"""ffmpeg's output pipe is made 1 MB deep (so ffmpeg decodes on while the loop hears the chunk before), and a
system that does not allow that depth still gets its audio through the default pipe."""

from __future__ import annotations

import asyncio
import fcntl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from funasr_subs.media import early
from funasr_subs.media.ffmpeg import FfmpegStream, pcm_args
from funasr_subs.media.probe import BYTES_PER_SECOND
from tests.media import make_media

pytestmark = pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe depth is a Linux setting")


def _media(folder: Path) -> Path:
    return make_media(folder / "tone.mkv", [(500, 1500)], duration_ms=3000)


async def _decode(media: Path) -> tuple[int, int]:
    """(the depth of ffmpeg's output pipe, the bytes of PCM it gave)."""
    async with FfmpegStream(pcm_args(media, None), media, chunk_bytes=1 << 16) as stream:
        transport = stream._proc._transport  # type: ignore[union-attr]
        depth = fcntl.fcntl(transport.get_pipe_transport(1).get_extra_info("pipe").fileno(), fcntl.F_GETPIPE_SZ)
        got = sum([len(chunk) async for chunk in stream.chunks()])
    return depth, got


def test_ffmpeg_writes_into_a_pipe_a_megabyte_deep(tmp_path: Path) -> None:
    depth, got = asyncio.run(_decode(_media(tmp_path)))
    assert depth == early.PIPE_BYTES == 1 << 20
    assert abs(got - 3 * BYTES_PER_SECOND) < BYTES_PER_SECOND // 10  # the whole 3 s came through


def test_where_that_depth_is_refused_the_default_pipe_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F_SETPIPE_SZ fails with EPERM over the user's allowance (/proc/sys/fs/pipe-max-size, pipe-user-pages-*)."""
    media = _media(tmp_path)
    real_popen = subprocess.Popen
    refused: list[int] = []

    def popen(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("pipesize", -1) > 0:
            refused.append(kwargs["pipesize"])
            raise PermissionError(1, "Operation not permitted")
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    depth, got = asyncio.run(_decode(media))
    assert refused == [1 << 20] and depth < early.PIPE_BYTES
    assert abs(got - 3 * BYTES_PER_SECOND) < BYTES_PER_SECOND // 10  # the whole 3 s came through
    argv = [sys.executable, "-c", "import sys; sys.stdout.write('x' * 100)"]
    early.start(media, argv)  # the early start falls back the same way
    started = early.take(media, argv)
    assert started is not None and started.communicate(timeout=30)[0] == b"x" * 100
    assert refused == [1 << 20] * 2


def test_the_early_start_pipe_is_as_deep(tmp_path: Path) -> None:
    media = _media(tmp_path)
    argv = [sys.executable, "-c", "pass"]
    early.start(media, argv)
    started = early.take(media, argv)
    assert started is not None and started.stdout is not None
    try:
        assert fcntl.fcntl(started.stdout.fileno(), fcntl.F_GETPIPE_SZ) == early.PIPE_BYTES
    finally:
        started.communicate(timeout=30)

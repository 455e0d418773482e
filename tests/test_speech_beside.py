"""``--send mp4``: the speech activity heard in a PCM decode beside the upload (recognition/run.py, media/audio.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import threading
from pathlib import Path

import pytest

from funasr_subs.cli import main
from funasr_subs.config import Settings
from funasr_subs.errors import CancelledError
from funasr_subs.media.ffmpeg import FfmpegStream, pcm_args
from funasr_subs.pipeline import generate_subtitles
from funasr_subs.protocol import FRAME_BYTES
from funasr_subs.recognition.pool import Pool
from funasr_subs.recognition.run import AudioSource, FileChunks, recognise
from funasr_subs.sidecar import read_sidecar
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.speech import ZH_SENTENCES, build_speech, espeak_available, write_speech

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")


def _ffmpeg_on(path: Path, *marks: str) -> list[str]:
    """The ffmpeg processes running on ``path`` (whose command lines also hold ``marks``), read from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = argv and argv[0].endswith(b"ffmpeg") and any(str(path).encode() in a for a in argv)
        if ours and all(mark.encode() in argv for mark in marks):
            found.append(pid)
    return found


@needs_espeak
@pytest.mark.parametrize("suffix", [".m4a", ".mp3"])  # copied into the mp4, and encoded to AAC for it
def test_an_mp4_upload_is_heard_beside_as_the_pcm_send_hears_it(tmp_media_dir: Path, suffix: str) -> None:
    audio = build_speech(ZH_SENTENCES[:4], pauses_ms=(700, 1200, 900), lead_ms=1500)
    media = write_speech(tmp_media_dir / f"talk 01{suffix}", audio)
    side_path = tmp_media_dir / "talk 01.funasr.json"
    with FunasrTestServer() as server:
        common = ["--server", server.url, "--retries", "0", "--overwrite"]
        assert main(["transcribe", *common, "--send", "mp4", str(media)]) == 0
        assert server.files[-1].request["wav_format"] == "mp4"
        beside = read_sidecar(side_path).speech
        assert main(["transcribe", *common, "--send", "pcm", str(media)]) == 0
        sent = read_sidecar(side_path).speech
        assert main(["transcribe", *common, "--send", "mp4", "--no-speech-activity", str(media)]) == 0
        assert read_sidecar(side_path).speech is None
    # in the media's timeline, like the PCM send's (the mp4's priming, taken off the reply, is not in the decode)
    assert beside is not None and beside == sent
    assert len(beside.intervals) == len(audio.truth)
    for (start, _), (true_start, _) in zip(beside.intervals, audio.truth, strict=True):
        assert abs(start - true_start) <= 100, (beside.intervals, audio.truth)


def test_a_cancelled_mp4_job_leaves_no_ffmpeg_behind(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    """An hour of audio (copied together in a moment; its decode takes about a second): the job is cancelled while
    the decode beside the upload runs; both ffmpegs are gone when the job returns, nothing is written."""
    tone = make_media(tmp_media_dir / "tone.m4a", bursts=[(0, 10_000)], duration_ms=10_000, video=False)
    media = tmp_media_dir / "long.m4a"
    copy = ["ffmpeg", "-v", "error", "-stream_loop", "359", "-i", str(tone), "-c", "copy", str(media)]
    subprocess.run(copy, capture_output=True, check=True)
    funasr_server.fault = "hang"
    cancel = threading.Event()

    def on_progress(stage: str, fraction: float) -> None:
        if stage == "upload" and _ffmpeg_on(media, "s16le"):  # the PCM decode beside the upload runs
            cancel.set()

    settings = Settings(server=funasr_server.url, send="mp4", retries=0, reply_timeout=5, reply_timeout_ratio=0)
    with pytest.raises(CancelledError):
        generate_subtitles(media, settings, progress=on_progress, cancel=cancel)
    assert cancel.is_set()
    assert _ffmpeg_on(media) == []
    assert sorted(os.listdir(tmp_media_dir)) == ["long.m4a", "tone.m4a"]


def test_a_decode_beside_that_fails_leaves_the_transcription_whole(
    funasr_server: FunasrTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The decode beside the upload fails (here: a damaged file ffmpeg cannot open): one warning, no speech
    activity, the reply and its words as without it."""
    media = make_media(tmp_path / "a.m4a", bursts=[(500, 1000)], duration_ms=2500, video=False)
    broken = make_corrupt_media(tmp_path / "b.mp4", kind="header")
    settings = Settings(server=funasr_server.url, retries=0)

    def listen() -> FfmpegStream:
        return FfmpegStream(pcm_args(broken, None), broken, chunk_bytes=FRAME_BYTES)

    async def run() -> object:
        source = AudioSource(lambda: FileChunks(media), "mp4", 2500, listen)
        return await recognise(source, settings, Pool.from_settings(settings), wav_name="a")

    with caplog.at_level(logging.WARNING):
        result = asyncio.run(run())
    assert result.transcript.tokens and result.speech is None  # type: ignore[attr-defined]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("warning: a: no speech activity (") and "\n" not in warning, warning
    assert _ffmpeg_on(broken) == []

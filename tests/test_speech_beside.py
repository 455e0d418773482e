"""``--send mp4``: the speech activity heard in a PCM decode beside the upload (recognition/run.py, media/audio.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import threading
from pathlib import Path

import pysubs2
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
from tests.faults import ffmpeg_on
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.speech import ZH_SENTENCES, build_speech, espeak_available, write_speech

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")


@needs_espeak
@pytest.mark.parametrize("suffix", [".m4a", ".mp3", ".ts"])  # copied, encoded to AAC; .ts: ffprobe gives the start
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
        if stage == "upload" and ffmpeg_on(media, "s16le"):  # the PCM decode beside the upload runs
            cancel.set()

    settings = Settings(server=funasr_server.url, send="mp4", retries=0, reply_timeout=5, reply_timeout_ratio=0)
    with pytest.raises(CancelledError):
        generate_subtitles(media, settings, progress=on_progress, cancel=cancel)
    assert cancel.is_set()
    assert ffmpeg_on(media) == []
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
    assert ffmpeg_on(broken) == []


@needs_espeak
def test_a_stretch_an_mp4_upload_lost_is_found_by_the_decode_beside_and_sent_again(tmp_path: Path) -> None:
    """The speech heard beside the upload is on the timeline of the audio sent (the mp4's priming taken off): the
    stretch the stand-in lost is found there, sent again as PCM, and its sentences get their cues."""
    audio = build_speech(ZH_SENTENCES * 2, pauses_ms=(400, 900, 250, 1200))
    media = write_speech(tmp_path / "talk.m4a", audio)
    server = FunasrTestServer(habits=True, lose_at_ms=30_000, lose_ms=20_000, lose_requests=1, lose_then="words")
    server.fault = "lose"
    with server:
        assert main(["transcribe", "--server", server.url, "--retries", "0", "--send", "mp4", str(media)]) == 0
        formats = [f.request["wav_format"] for f in server.files]
    assert formats == ["mp4", "pcm"]  # the file as mp4, the stretch alone as PCM
    side = read_sidecar(tmp_path / "talk.funasr.json")
    assert side.recovery is not None and side.recovery.resent and not side.recovery.lost
    ((start, end),) = side.recovery.recovered
    assert 30_000 <= start <= 32_500 and 47_500 <= end <= 50_000, (start, end)
    cues = pysubs2.load(str(tmp_path / "talk.zh.srt"), encoding="utf-8")
    inside = [(s, e) for s, e in audio.truth if s >= 31_000 and e <= 49_000]
    assert inside and all(any(c.start < e and c.end > s for c in cues) for s, e in inside)

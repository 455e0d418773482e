"""``--send mp4`` and ``--send pcm`` give the same cue times: the encoder delay of lossy audio is accounted for."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.media.mp4head import Priming, strip_priming
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.test_cli_transcribe import cli

SPEECH = [(2000, 1500), (5030, 1200)]


@pytest.fixture
def fine_server() -> Iterator[FunasrTestServer]:
    """The test server with 1 ms frames (its default 10 ms would hide a 5 ms difference)."""
    with FunasrTestServer(frame_ms=1) as server:
        yield server


CASES = {
    "aac-22050.mp4": {"sample_rate": 22050},
    "aac-44100.m4a": {"sample_rate": 44100},
    "aac-48000.mp4": {"sample_rate": 48000},
    "mp3-44100.mp3": {"sample_rate": 44100},
    "mp3-22050.mp3": {"sample_rate": 22050},
    "opus-48000.opus": {},
    "opus-48000.webm": {},
    "vorbis-44100.ogg": {"sample_rate": 44100},  # not copied: encoded to AAC on the way, with its own delay
}


def _starts(srt: Path) -> list[int]:
    return [event.start for event in pysubs2.load(str(srt))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_mp4_and_pcm_cues_agree_within_5_ms(fine_server: FunasrTestServer, tmp_path: Path, name: str) -> None:
    media = make_media(tmp_path / name, bursts=SPEECH, duration_ms=7000, **CASES[name])  # type: ignore[arg-type]
    starts = {}
    for send in ("pcm", "mp4"):
        out = tmp_path / send
        out.mkdir()
        done = cli("transcribe", "--server", fine_server.url, "--send", send, "--output-dir", str(out), str(media))
        assert done.returncode == 0, done.stderr
        starts[send] = _starts(out / f"{media.stem}.zh.srt")
    assert fine_server.requests[-1]["wav_format"] == "mp4"
    pcm, mp4 = starts["pcm"], starts["mp4"]
    assert len(pcm) == len(mp4) >= 2
    assert all(abs(a - b) <= 5 for a, b in zip(pcm, mp4, strict=True)), (pcm, mp4)
    assert abs(pcm[0] - 2000) <= 5  # and both are where the speech is
    assert any(abs(start - 5030) <= 5 for start in pcm)


def test_the_sidecar_records_the_priming_taken_out(fine_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "talk.mp4", bursts=SPEECH, duration_ms=7000, sample_rate=22050)
    done = cli("transcribe", "--server", fine_server.url, "--send", "mp4", str(media))
    assert done.returncode == 0, done.stderr
    side = json.loads(next(tmp_path.glob("*.funasr.json")).read_text(encoding="utf-8"))
    assert side["audio"]["priming_ms"] == 46  # AAC's 1024 samples at 22.05 kHz
    assert side["audio"]["offset_ms"] == -46
    # retime applies the same offset: the cue stays on the speech
    retimed = cli("retime", str(media), "--max-cps", "12")
    assert retimed.returncode == 0, retimed.stderr
    assert abs(_starts(tmp_path / "talk.zh.srt")[0] - 2000) <= 5


# --- the pure part: the mp4 head --------------------------------------------------------------------------------
def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _head(media_time: int, timescale: int, *, version: int = 0, empty_edit: bool = False) -> bytes:
    if version == 0:
        entries = [struct.pack(">Iii", 0, media_time, 1 << 16)]
        mdhd = bytes(4) + struct.pack(">IIII", 0, 0, timescale, 0) + bytes(4)
        if empty_edit:
            entries.insert(0, struct.pack(">Iii", 500, -1, 1 << 16))
    else:
        entries = [struct.pack(">Qqi", 0, media_time, 1 << 16)]
        mdhd = bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 0, 0, timescale, 0) + bytes(4)
    elst = _box(b"elst", bytes([version, 0, 0, 0]) + struct.pack(">I", len(entries)) + b"".join(entries))
    trak = _box(b"trak", _box(b"tkhd", bytes(84)) + _box(b"edts", elst) + _box(b"mdia", _box(b"mdhd", mdhd)))
    return _box(b"ftyp", b"iso5" + bytes(4)) + _box(b"moov", _box(b"mvhd", bytes(100)) + trak) + _box(b"moof", b"x")


@pytest.mark.parametrize("version", [0, 1])
def test_strip_priming_reads_and_zeroes_the_edit(version: int) -> None:
    head = _head(1024, 22050, version=version)
    patched, priming = strip_priming(head + b"audio")
    assert priming == Priming(1024, 22050) and priming.ms == 46
    assert len(patched) == len(head) + 5 and patched.endswith(b"audio")
    again, none = strip_priming(patched)
    assert none == Priming() and again == patched  # nothing left to strip


def test_strip_priming_skips_an_empty_edit_and_leaves_other_bytes_alone() -> None:
    patched, priming = strip_priming(_head(1105, 44100, empty_edit=True))
    assert priming.samples == 1105
    assert struct.pack(">Iii", 500, -1, 1 << 16) in patched  # the empty edit (a start delay) is kept
    assert strip_priming(patched)[1] == Priming()
    assert strip_priming(_head(0, 48000)) == (_head(0, 48000), Priming())
    for junk in (b"", b"\x00\x00\x00\x01moov", b"not an mp4 at all", _head(1024, 22050)[:40]):
        assert strip_priming(junk) == (junk, Priming())


def test_real_ffmpeg_head_is_understood(tmp_path: Path) -> None:
    """What ffmpeg writes for our fragmented copy really holds the AAC delay where we look for it."""
    media = make_media(tmp_path / "a.m4a", duration_ms=2500, sample_rate=44100)
    from funasr_subs.media.ffmpeg import mp4_args
    from funasr_subs.media.probe import probe, select_audio

    info = probe(media)
    argv = mp4_args(media, select_audio(info, None))
    data = subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout
    patched, priming = strip_priming(data)
    assert priming == Priming(1024, 44100)
    assert shutil.which("ffprobe")
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=start_time", "-of", "csv=p=0", "-"],
        input=patched,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert float(shown.stdout.strip()) == 0.0  # the priming is now played as audio from 0 (we shift the reply)

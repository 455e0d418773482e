"""The media generators make what they claim: checked with real ffprobe/ffmpeg, independently of the test server."""

from __future__ import annotations

import array
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import (
    decode_pcm,
    make_corrupt_media,
    make_media,
    make_multi_audio,
    make_no_audio_video,
    probe,
)

TOL_MS = 30


def edges(pcm: bytes, rate: int = 16000, threshold: int = 1000) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of loud 10 ms windows — a deliberately simple, independent burst finder."""
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    step = rate // 100
    loud = [max(abs(v) for v in samples[i : i + step]) > threshold for i in range(0, len(samples) - step + 1, step)]
    runs: list[tuple[int, int]] = []
    start = None
    for k, flag in enumerate([*loud, False]):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            runs.append((start * 10, k * 10))
            start = None
    return runs


def close_to(got: list[tuple[int, int]], want: list[tuple[int, int]], tol: int = TOL_MS) -> bool:
    return len(got) == len(want) and all(
        abs(a - c) <= tol and abs(b - d) <= tol for (a, b), (c, d) in zip(got, want, strict=True)
    )


def streams(path: Path, kind: str) -> list[dict[str, object]]:
    return [s for s in probe(path)["streams"] if s["codec_type"] == kind]


def test_mp4_has_video_and_audio_with_tone_at_the_burst_times(tmp_media_dir: Path) -> None:
    path = make_media(tmp_media_dir / "clip.mp4", [(500, 700), (2000, 1200)], duration_ms=4000)
    info = probe(path)
    assert [s["codec_type"] for s in info["streams"]] == ["video", "audio"]
    assert abs(float(info["format"]["duration"]) - 4.0) < 0.1
    assert close_to(edges(decode_pcm(path)), [(500, 1200), (2000, 3200)])


@pytest.mark.parametrize(
    ("name", "codec", "has_video"),
    [
        ("a.mkv", "aac", True),
        ("a.webm", "opus", True),
        ("a.avi", "mp3", True),
        ("a.wav", "pcm_s16le", False),
        ("a.mp3", "mp3", False),
        ("a.m4a", "aac", False),
    ],
)
def test_container_and_codec_follow_the_suffix(tmp_media_dir: Path, name: str, codec: str, has_video: bool) -> None:
    path = make_media(tmp_media_dir / name, [(1000, 600)], duration_ms=2500)
    audio = streams(path, "audio")
    assert [s["codec_name"] for s in audio] == [codec]
    assert bool(streams(path, "video")) is has_video
    assert close_to(edges(decode_pcm(path)), [(1000, 1600)])


def test_explicit_codec_and_container(tmp_media_dir: Path) -> None:
    path = make_media(tmp_media_dir / "odd.bin", [(300, 400)], 1500, video=False, codec="flac", container="matroska")
    assert probe(path)["format"]["format_name"] == "matroska,webm"
    assert [s["codec_name"] for s in streams(path, "audio")] == ["flac"]


@pytest.mark.parametrize("name", ["late.mp4", "late.mkv"])
def test_audio_delay_starts_the_audio_stream_late(tmp_media_dir: Path, name: str) -> None:
    path = make_media(tmp_media_dir / name, [(1000, 800)], duration_ms=5000, audio_delay_ms=1500)
    (audio,) = streams(path, "audio")
    assert abs(float(str(audio["start_time"])) - 1.5) <= 0.025  # AAC priming shows as ~21 ms
    # decoded from its own start the burst is at 1000 ms ...
    assert close_to(edges(decode_pcm(path)), [(1000, 1800)])
    # ... and in the container timeline (gap before the audio filled with silence) at 1000 + 1500 ms
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-af", "aresample=async=1:first_pts=0"]
    pcm = subprocess.run([*argv, "-ac", "1", "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True)
    assert close_to(edges(pcm.stdout), [(2500, 3300)])


def test_multi_audio_has_tagged_streams_with_different_bursts(tmp_media_dir: Path) -> None:
    path = make_multi_audio(tmp_media_dir / "multi.mkv", [("jpn", [(300, 500)]), ("chi", [(1500, 1000)])], 3000)
    audio = streams(path, "audio")
    assert [s.get("tags", {}).get("language") for s in audio] == ["jpn", "chi"]  # type: ignore[attr-defined]
    assert close_to(edges(decode_pcm(path, stream="a:0")), [(300, 800)])
    assert close_to(edges(decode_pcm(path, stream="a:1")), [(1500, 2500)])
    assert len(streams(path, "video")) == 1


def test_no_audio_video_has_only_video(tmp_media_dir: Path) -> None:
    path = make_no_audio_video(tmp_media_dir / "silent film.mp4")
    assert [s["codec_type"] for s in probe(path)["streams"]] == ["video"]


def test_garbled_media_probes_but_fails_mid_decode(tmp_media_dir: Path) -> None:
    path = make_corrupt_media(tmp_media_dir / "bad.mp4", "garbled")
    assert len(streams(path, "audio")) == 1
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-vn", "-f", "s16le", "-"]
    proc = subprocess.run(argv, capture_output=True, check=False)
    assert proc.returncode != 0
    assert proc.stdout  # some audio came out before the damage: it failed mid-decode
    assert proc.stderr.strip()


def test_truncated_media_reports_a_partial_file(tmp_media_dir: Path) -> None:
    path = make_corrupt_media(tmp_media_dir / "cut.mp4", "truncated")
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-vn", "-f", "s16le", "-"]
    proc = subprocess.run(argv, capture_output=True, check=False)
    assert proc.returncode != 0 and proc.stdout and proc.stderr.strip()


def test_header_damage_fails_at_open(tmp_media_dir: Path) -> None:
    path = make_corrupt_media(tmp_media_dir / "nohead.mp4", "header")
    proc = subprocess.run(["ffprobe", "-v", "error", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "moov atom not found" in proc.stderr


def test_bursts_outside_the_audio_are_rejected(tmp_media_dir: Path) -> None:
    with pytest.raises(ValueError, match="overlaps"):
        make_media(tmp_media_dir / "x.mp4", [(1000, 2000)], duration_ms=3000, audio_delay_ms=500)
    with pytest.raises(ValueError, match="overlaps"):
        make_media(tmp_media_dir / "y.mp4", [(0, 1000), (500, 1000)], duration_ms=3000)


def test_silence_only_media(tmp_media_dir: Path) -> None:
    path = make_media(tmp_media_dir / "quiet.wav", [], duration_ms=1000)
    pcm = decode_pcm(path)
    assert len(pcm) == 32000
    assert edges(pcm) == []

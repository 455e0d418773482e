"""ffmpeg's own report of its input read into MediaInfo: the same facts ffprobe gives, from the run that decodes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from funasr_subs.errors import NotMediaError
from funasr_subs.media import ffreport
from funasr_subs.media.ffmpeg import FfmpegStream, pcm_args
from funasr_subs.media.info import MediaInfo
from funasr_subs.media.probe import parse_probe
from tests.funasr_server import FunasrTestServer
from tests.media import make_media, make_multi_audio, make_tagged_media
from tests.test_hook import COMMAND


def reported(path: Path) -> ffreport.Report:
    """The report of a real ffmpeg run with the arguments transcribe uses (ffmpeg's own pick, padded, tagged), read
    as transcribe reads it."""
    found = _report_of(pcm_args(path, None, pad_start=True, report=True), path)
    assert found is not None
    return found


def probed(path: Path) -> MediaInfo:
    argv = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    return parse_probe(path, json.loads(subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout))


def facts(info: MediaInfo) -> tuple[object, ...]:
    audio = [(a.position, a.index, a.codec, a.channels, a.sample_rate, a.language, a.default) for a in info.audio]
    return info.format_name, info.start_ms, audio, info.subtitles, info.streams


#: Tag values ffmpeg prints raw inside its report: parentheses, colons, newlines, text shaped like its own lines.
ODD_TAGS = [
    ("Chinese (Simplified)", [(500, 500)]),
    ("x): Video: h264 (y", [(500, 500)]),
    ("a\n  Stream #0:9(eng): Audio: aac", [(500, 500)]),
    ("((", [(500, 500)]),
]
ODD_TITLES = ["a (b): c\n  Stream #0:7(jpn): Audio: opus", "Stream mapping:", "  Stream #0:3 -> #0:0 (x)", ")"]

MAKERS = {
    "aac.mp4": lambda p: make_media(p, duration_ms=3000),
    "mp3-22050.mp3": lambda p: make_media(p, duration_ms=3000, sample_rate=22050),
    "opus.webm": lambda p: make_media(p, duration_ms=3000),
    "pcm.wav": lambda p: make_media(p, duration_ms=3000),
    "flac.mkv": lambda p: make_media(p, duration_ms=3000, codec="flac"),
    "two-languages.mkv": lambda p: make_multi_audio(p, duration_ms=4000),
    "tagged.mkv": lambda p: make_tagged_media(
        p, [("jpn", [(500, 500)]), ("", [(500, 500)]), ("chi", [(500, 500)])], ["chi", "eng"], default_audio=2
    ),
    "odd-tags.mkv": lambda p: make_tagged_media(
        p, ODD_TAGS, ["Chinese (Traditional)"], titles=ODD_TITLES, default_audio=1
    ),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_the_report_says_what_ffprobe_says(tmp_path: Path, name: str) -> None:
    path = MAKERS[name](tmp_path / name)
    ours, theirs = reported(path), probed(path)
    assert facts(ours.info) == facts(theirs)
    assert abs(ours.info.duration_ms - theirs.duration_ms) <= 10  # the report prints centiseconds
    # the stream ffmpeg took is the one select_audio(info, None) names: the default-flagged, then most channels
    chosen = max(theirs.audio, key=lambda a: (a.default, a.channels, -a.position))
    assert ours.mapped == chosen.index


def test_a_file_ffmpeg_cannot_read_has_no_report(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mkv"
    notes.write_text("this is not a video", encoding="utf-8")
    done = subprocess.run(pcm_args(notes, None, report=True), capture_output=True, check=False, timeout=60)
    lines = [ffreport.split_level(raw) for raw in done.stderr.decode().splitlines()]
    assert ffreport.parse_report(notes, [ln.text for ln in lines if ln.level == "info"]) is None
    assert any(ffreport.is_problem(ln) and "Invalid data" in ln.text for ln in lines)


HEAD = [
    "Input #0, matroska,webm, from '/media/Ep 1, from 'x'.mkv':",
    "  Metadata:",
    "    title           : Stream #0:9(jpn): Audio: aac, 48000 Hz, 7.1, fltp (default)",
    "    comment         : two",
    "                    :   Stream #0:8: Audio: mp3, 8000 Hz, mono",
    "  Duration: 00:23:40.05, start: -0.007000, bitrate: 2048 kb/s",
    "  Stream #0:0: Video: hevc (Main 10), yuv420p10le(tv), 1920x1080, 23.98 fps (default)",
    "  Stream #0:1[0x2](jpn): Audio: eac3, 48000 Hz, 5.1(side), fltp, 640 kb/s (default) (forced)",
    "    Metadata:",
    "      title           : Stream #0:7: Audio: opus",
    "  Stream #0:2(chi): Audio: aac (LC), 44100 Hz, stereo, fltp",
    "  Stream #0:3(chi): Subtitle: ass",
    "  Stream #0:4: Attachment: ttf",
    "  Stream #0:5: Video: mjpeg (Baseline), yuvj420p, 600x600, 90k tbn (attached pic)",
    "Stream mapping:",
    "  Stream #0:1 -> #0:0 (eac3 (native) -> pcm_s16le (native))",
    "  Stream #0:9 -> #0:0 (not a line this run prints)",
]


def test_streams_are_read_from_their_own_lines_only() -> None:
    found = ffreport.parse_report(Path("/media/x.mkv"), HEAD)
    assert found is not None
    info = found.info
    assert info.format_name == "matroska,webm"
    assert (info.duration_ms, info.start_ms) == (1_420_050, -7)
    assert [(a.index, a.codec, a.channels, a.sample_rate, a.language, a.default) for a in info.audio] == [
        (1, "eac3", 6, 48000, "jpn", True),
        (2, "aac", 2, 44100, "chi", False),
    ]
    assert info.audio[0].bit_rate == 640_000
    assert info.subtitles == ("chi",)
    assert info.streams == 5  # the cover picture has no timeline of its own
    assert found.mapped == 1  # the first mapping line is the one for the output's only stream
    assert found.timeline_known


@pytest.mark.parametrize(
    ("layout", "count"),
    [("mono", 1), ("stereo", 2), ("5.1(side)", 6), ("7.1", 8), ("22.2", 24), ("3 channels", 3), ("quad(side)", 4)],
)
def test_channel_layouts(layout: str, count: int) -> None:
    assert ffreport.channels(layout) == count


def test_level_tags_are_split_off_and_problems_recognised() -> None:
    assert ffreport.split_level("[info]   Duration: N/A") == ffreport.Line("info", "  Duration: N/A")
    line = ffreport.split_level("[matroska,webm @ 0x55d0c0ffee00] [error] EBML header parsing failed")
    assert ffreport.is_problem(line) and line.text == "EBML header parsing failed"
    assert not ffreport.is_problem(ffreport.split_level("[aac @ 0x1] [warning] Guessed Channel Layout"))


def test_mpeg_ts_and_late_starting_containers_are_left_to_ffprobe() -> None:
    ts = ["Input #0, mpegts, from 'x.ts':", "  Duration: 00:00:06.00, start: 1.480000, bitrate: 117 kb/s"]
    ts += ["  Stream #0:0[0x100]: Video: h264", "  Stream #0:1[0x101](und): Audio: aac (LC), 44100 Hz, mono, fltp"]
    found = ffreport.parse_report(Path("x.ts"), ts)
    assert found is not None and not found.timeline_known
    song = ["Input #0, mp3, from 'x.mp3':", "  Duration: 00:03:00.00, start: 0.025057, bitrate: 128 kb/s"]
    song += ["  Stream #0:0: Audio: mp3, 44100 Hz, stereo, fltp, 128 kb/s"]
    found = ffreport.parse_report(Path("x.mp3"), song)
    assert found is not None and found.timeline_known  # one stream: its audio starts where the file does


def _report_of(argv: list[str], media: Path = Path("x.mkv")) -> ffreport.Report | None:
    async def run() -> ffreport.Report | None:
        async with FfmpegStream(argv, media, chunk_bytes=1024, report=True) as stream:
            return await stream.report()

    return asyncio.run(run())


def test_a_report_this_reader_does_not_understand_is_none_and_a_failed_start_is_not_media() -> None:
    # a running program that prints a mapping but no input dump: None (the job then asks ffprobe), not a hang
    odd = "import sys, time; sys.stderr.write('[info] Stream mapping:\\n[info]   Stream #0:0 -> #0:0 (copy)\\n')"
    assert _report_of([sys.executable, "-c", odd + "; sys.stderr.flush(); time.sleep(30)"]) is None
    failed = "import sys; sys.stderr.write('[error] x.mkv: Invalid data found when processing input\\n'); sys.exit(1)"
    with pytest.raises(NotMediaError, match="Invalid data found"):
        _report_of([sys.executable, "-c", failed])


def test_a_stream_named_twice_is_left_to_ffprobe() -> None:
    # a stream in two programs (MPEG-TS), or a line forged by a tag value holding a newline and a level prefix
    twice = ["Input #0, mpegts, from 'x.ts':", "  Duration: 00:00:06.00, start: 1.480000, bitrate: 117 kb/s"]
    twice += ["  Stream #0:0(chi): Audio: aac (LC), 44100 Hz, mono, fltp\n"] * 2
    assert ffreport.parse_report(Path("x.ts"), twice) is None


def test_odd_language_tags_through_the_cli(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", ODD_TAGS[:1], titles=ODD_TITLES[:1])
    done = subprocess.run([*COMMAND, "transcribe", "--server", funasr_server.url, str(media)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 cue" in done.stderr and tmp_path.joinpath("film.zh.srt").exists()

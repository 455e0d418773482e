"""Small real media files for tests, made by real ffmpeg: tone bursts (speech stand-ins) at known times."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

Burst = tuple[int, int]  # (start_ms, duration_ms) in the audio stream's own timeline

SAMPLE_RATE = 48000
AMPLITUDE = 0.5
AUDIO_ONLY = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus"}
AUDIO_CODECS = {
    ".mp4": "aac",
    ".m4a": "aac",
    ".mov": "aac",
    ".aac": "aac",
    ".mkv": "aac",
    ".webm": "libopus",
    ".opus": "libopus",
    ".ogg": "libvorbis",
    ".mp3": "libmp3lame",
    ".avi": "libmp3lame",
    ".wav": "pcm_s16le",
    ".flac": "flac",
    ".ts": "aac",
}
VIDEO_CODECS = {".webm": ["-c:v", "libvpx", "-deadline", "realtime"], ".avi": ["-c:v", "mpeg4"]}
DEFAULT_VIDEO = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"]


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")


def _samples(ms: int, rate: int = SAMPLE_RATE) -> int:
    return ms * rate // 1000


def tone_graph(bursts: Sequence[Burst], duration_ms: int, *, frequency: int = 440) -> str:
    """A lavfi source graph (output pad ``[out0]``, stereo): tone during ``bursts``, digital silence elsewhere.

    Segments are sample-exact (``atrim=end_sample``) and concatenated, so generation is linear and fast.
    """
    pieces: list[str] = []
    cursor = 0
    parts = 0
    for start, dur in sorted(bursts):
        if start < cursor or dur <= 0 or start + dur > duration_ms:
            raise ValueError(f"burst ({start}, {dur}) overlaps another or leaves 0..{duration_ms} ms")
        if start > cursor:
            pieces.append(_silence(start - cursor, parts))
            parts += 1
        tone = f"sine=f={frequency}:r={SAMPLE_RATE},volume={AMPLITUDE * 8},atrim=end_sample={_samples(dur)}"
        pieces.append(f"{tone}[s{parts}]")
        parts += 1
        cursor = start + dur
    if duration_ms > cursor or parts == 0:
        pieces.append(_silence(max(duration_ms - cursor, 1), parts))
        parts += 1
    inputs = "".join(f"[s{i}]" for i in range(parts))
    pieces.append(f"{inputs}concat=n={parts}:v=0:a=1,aformat=channel_layouts=stereo[out0]")
    return ";".join(pieces)


def _silence(ms: int, index: int) -> str:
    return f"anullsrc=r={SAMPLE_RATE}:cl=mono,atrim=end_sample={_samples(ms)}[s{index}]"


def _audio_codec(suffix: str, codec: str | None) -> list[str]:
    name = codec or AUDIO_CODECS.get(suffix, "aac")
    argv = ["-c:a", name]
    if name in ("aac", "libmp3lame", "libopus", "libvorbis"):
        argv += ["-b:a", "96k"]
    return argv


def make_media(
    path: Path,
    bursts: Sequence[Burst] = ((1000, 1000),),
    duration_ms: int = 4000,
    *,
    video: bool = True,
    audio_delay_ms: int = 0,
    codec: str | None = None,
    container: str | None = None,
    frequency: int = 440,
    sample_rate: int | None = None,
) -> Path:
    """Write a real media file with a tone during each ``(start_ms, duration_ms)`` burst and silence elsewhere.

    ``duration_ms`` is the container length. With ``audio_delay_ms`` the audio stream starts late (ffprobe
    ``start_time`` > 0): burst times are relative to the audio stream, so in the container timeline a burst
    sits at ``start + audio_delay_ms``. Container comes from the suffix unless ``container`` (ffmpeg ``-f``) is
    given; the audio codec from the suffix unless ``codec``; the audio sample rate is 48 kHz unless ``sample_rate``.
    Audio-only suffixes never get video.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    audio_ms = duration_ms - audio_delay_ms
    if audio_ms <= 0:
        raise ValueError("audio_delay_ms must be shorter than duration_ms")
    with_video = video and suffix not in AUDIO_ONLY
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
    if with_video:
        argv += ["-f", "lavfi", "-i", f"color=c=black:s=64x64:r=5:d={duration_ms / 1000}"]
    if audio_delay_ms:
        argv += ["-itsoffset", f"{audio_delay_ms / 1000}"]
    argv += ["-f", "lavfi", "-i", tone_graph(bursts, audio_ms, frequency=frequency)]
    audio_input = 1 if with_video else 0
    if with_video:
        argv += ["-map", "0:v", *VIDEO_CODECS.get(suffix, DEFAULT_VIDEO), "-pix_fmt", "yuv420p"]
    argv += ["-map", f"{audio_input}:a", *_audio_codec(suffix, codec)]
    if sample_rate:
        argv += ["-ar", str(sample_rate)]
    if container:
        argv += ["-f", container]
    argv += ["--", str(path)] if str(path).startswith("-") else [str(path)]
    _run(argv)
    return path


def make_multi_audio(
    path: Path,
    tracks: Sequence[tuple[str, Sequence[Burst]]] = (("jpn", ((500, 800),)), ("chi", ((2000, 1500),))),
    duration_ms: int = 4000,
    *,
    video: bool = True,
) -> Path:
    """A file with one audio stream per ``(language, bursts)`` track, tagged with ``language``, in that order."""
    path = Path(path)
    suffix = path.suffix.lower()
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
    if video:
        argv += ["-f", "lavfi", "-i", f"color=c=black:s=64x64:r=5:d={duration_ms / 1000}"]
    for i, (_lang, bursts) in enumerate(tracks):
        argv += ["-f", "lavfi", "-i", tone_graph(bursts, duration_ms, frequency=440 + 220 * i)]
    first = 1 if video else 0
    if video:
        argv += ["-map", "0:v", *VIDEO_CODECS.get(suffix, DEFAULT_VIDEO), "-pix_fmt", "yuv420p"]
    for i, (lang, _bursts) in enumerate(tracks):
        argv += ["-map", f"{first + i}:a", f"-metadata:s:a:{i}", f"language={lang}"]
    argv += _audio_codec(suffix, None)
    argv.append(str(path))
    _run(argv)
    return path


def make_no_audio_video(path: Path, duration_ms: int = 2000) -> Path:
    """A real video file without any audio stream."""
    path = Path(path)
    suffix = path.suffix.lower()
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"color=c=blue:s=64x64:r=5:d={duration_ms / 1000}"]
    argv += [*VIDEO_CODECS.get(suffix, DEFAULT_VIDEO), "-pix_fmt", "yuv420p", str(path)]
    _run(argv)
    return path


def make_corrupt_media(
    path: Path, kind: Literal["garbled", "truncated", "header"] = "garbled", duration_ms: int = 6000
) -> Path:
    """A damaged media file (mp4 by default).

    - ``garbled``: container intact (ffprobe sees the audio stream) but the middle third of the payload is
      scrambled: decoding prints "Error while decoding stream ..." / "Invalid data found"; with ``-xerror``
      ffmpeg exits non-zero mid-decode (without it ffmpeg 5 exits 0 after logging the errors).
    - ``truncated``: a faststart mp4 cut at 60%: "partial file" / "corrupt input packet" mid-decode.
    - ``header``: index at the end, cut at 60%: ffprobe and ffmpeg fail at open ("moov atom not found").
    """
    path = Path(path)
    tmp = path.with_name(path.stem + ".whole" + path.suffix)
    make_media(tmp, [(500, duration_ms - 1000)], duration_ms)
    if kind == "truncated":
        faststart = path.with_name(path.stem + ".fs" + path.suffix)
        argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(tmp), "-c", "copy"]
        _run([*argv, "-movflags", "+faststart", str(faststart)])
        shutil.move(faststart, tmp)
    data = bytearray(tmp.read_bytes())
    tmp.unlink()
    n = len(data)
    if kind == "garbled":
        for i in range(n // 3, 2 * n // 3, 7):
            data[i] = (data[i] * 31 + 7) & 0xFF
    else:
        del data[n * 6 // 10 :]
    path.write_bytes(bytes(data))
    return path


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON (format + streams) of a file."""
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def decode_pcm(path: Path, *, stream: str = "a:0") -> bytes:
    """The file's audio as 16 kHz mono s16le, exactly like the FunASR pcm path (for test assertions)."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:{stream}"]
    argv += ["-ac", "1", "-ar", "16000", "-f", "s16le", "-"]
    return subprocess.run(argv, capture_output=True, check=True).stdout


def make_tagged_media(
    path: Path,
    audio: Sequence[tuple[str, Sequence[Burst]]],
    subtitles: Sequence[str] = (),
    duration_ms: int = 3000,
    *,
    default_audio: int = 0,
    subtitle_dispositions: Sequence[str] = (),
) -> Path:
    """A Matroska file with one audio stream per ``(language, bursts)`` (``""`` leaves it untagged) and one SubRip
    subtitle stream per language in ``subtitles``; audio stream ``default_audio`` carries the default flag.
    ``subtitle_dispositions``: ffmpeg's ``-disposition`` of each subtitle stream (``forced``, ``hearing_impaired``,
    ``comment``; ``""`` none)."""
    path = Path(path)
    srt = path.with_name(path.stem + ".embedded-source.srt")
    srt.write_text("1\n00:00:00,500 --> 00:00:01,500\n字幕\n", encoding="utf-8")
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"color=c=black:s=64x64:r=5:d={duration_ms / 1000}"]
    for i, (_lang, bursts) in enumerate(audio):
        argv += ["-f", "lavfi", "-i", tone_graph(bursts, duration_ms, frequency=440 + 220 * i)]
    for _ in subtitles:
        argv += ["-i", str(srt)]
    argv += ["-map", "0:v", *DEFAULT_VIDEO, "-pix_fmt", "yuv420p"]
    for i, (lang, _bursts) in enumerate(audio):
        argv += ["-map", f"{1 + i}:a"]
        if lang:
            argv += [f"-metadata:s:a:{i}", f"language={lang}"]
        argv += [f"-disposition:a:{i}", "default" if i == default_audio else "0"]
    for j, lang in enumerate(subtitles):
        argv += ["-map", f"{1 + len(audio) + j}:s", f"-metadata:s:s:{j}", f"language={lang}"]
        if j < len(subtitle_dispositions) and subtitle_dispositions[j]:
            argv += [f"-disposition:s:{j}", subtitle_dispositions[j]]
    argv += ["-c:a", "aac", "-b:a", "96k", "-c:s", "srt", str(path)]
    try:
        _run(argv)
    finally:
        srt.unlink()
    return path


#: What ``python -m tests.media FILE`` makes: 12 s, three stretches of "speech" (the docs' demo file).
DEMO_BURSTS: tuple[Burst, ...] = ((1000, 2400), (4500, 3000), (9000, 1600))
DEMO_DURATION_MS = 12000


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.media demo.mp4 [more files]``: demo media for the docs' examples (any suffix listed above)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.media",
        description="Make small real media files whose 'speech' is 440 Hz tone bursts at 1.0-3.4 s, 4.5-7.5 s and "
        "9.0-10.6 s of 12 s (the test FunASR server 'recognises' each burst as a sentence).",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="e.g. demo.mp4, talk.mkv, song.mp3")
    args = parser.parse_args(argv)
    for path in args.paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        make_media(path, DEMO_BURSTS, DEMO_DURATION_MS)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

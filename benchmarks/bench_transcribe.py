"""Transcribe speed and memory against bare ffmpeg and an official-client-like baseline, measured in one run.

    python -m benchmarks.bench_transcribe            # 1-hour 720p film (plus 1-minute and 3-hour files for memory)
    python -m benchmarks.bench_transcribe --quick    # 10-minute file, memory at 1 and 10 minutes

Targets (issue #2): pcm ≤ 1.3 × bare ffmpeg decode; mp4 ≤ 1.5 × bare ffmpeg audio copy; ≥ 15 × faster than the
official-client baseline; peak RSS ≤ 100 MB and the same for a long file as for a short one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.instant_server import InstantServer
from benchmarks.official_client import official_transcribe

# Linux carries a parent's peak RSS into a forked child: reset the peak first (clear_refs 5), then read VmHWM.
_MEASURE = r"""
import json, resource, sys, time
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
from funasr_subs.config import Settings
from funasr_subs.pipeline import generate_subtitles
t = time.perf_counter()
generate_subtitles(sys.argv[1], Settings(server=sys.argv[2], send=sys.argv[3], overwrite=True, lang=sys.argv[3]))
seconds = time.perf_counter() - t
try:
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": peak}))
"""


def _tone_args(seconds: int) -> list[str]:
    tone = f"aevalsrc='0.4*sin(2*PI*440*t)*lt(mod(t\\,5)\\,2)':s=44100:d={seconds}"
    return ["-f", "lavfi", "-i", tone]


def _finish(argv: list[str], path: Path) -> Path:
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    subprocess.run([*argv, str(partial)], check=True)
    partial.replace(path)  # an interrupted generation is never mistaken for a whole file
    return path


def make_long_media(path: Path, seconds: int) -> Path:
    """A tiny-video mkv with AAC audio: a 2 s tone every 5 s (speech stand-in) for ``seconds`` (memory runs)."""
    if path.exists():
        return path
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=black:s=64x64:r=1:d={seconds}"]
    argv += [*_tone_args(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "96k"]
    return _finish([*argv, "-shortest"], path)


def make_film(path: Path, seconds: int, workdir: Path) -> Path:
    """A film-like mkv: 1280x720 H.264 at ~2.5 Mb/s (a 10 s clip looped by stream copy) + AAC 128 kb/s stereo."""
    if path.exists():
        return path
    clip = workdir / "clip-720p.mp4"
    if not clip.exists():
        enc = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=24:d=10"]
        enc += ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2500k", "-g", "48"]
        _finish(enc, clip)
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", str(seconds // 10 + 1), "-i", str(clip)]
    argv += [*_tone_args(seconds), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k"]
    return _finish([*argv, "-t", str(seconds)], path)


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def ours(media: Path, url: str, send: str) -> dict[str, float]:
    """Our pipeline in a fresh process (so its peak RSS is its own); wall time measured from outside too."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(media), url, send], check=True, capture_output=True)
    result: dict[str, float] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - t
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10-minute file instead of 1 hour")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "funasr-subs-bench")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each timing (runs alternate)")
    args = parser.parse_args(argv)
    if not shutil.which("ffmpeg"):
        print("ffmpeg is required", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    main_len = 600 if args.quick else 3600
    long_len = 600 if args.quick else 3 * 3600
    print(f"generating media in {args.workdir} ...", flush=True)
    media = make_film(args.workdir / f"film-{main_len}s.mkv", main_len, args.workdir)
    short = make_long_media(args.workdir / "bench-60s.mkv", 60)
    long = make_long_media(args.workdir / f"bench-{long_len}s.mkv", long_len)
    scratch = args.workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    pcm_out, m4a_out = scratch / "out.pcm", scratch / "out.m4a"
    base = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(media), "-vn"]
    rows: list[tuple[str, str, str]] = []
    with InstantServer() as url:
        mem_short = ours(short, url, "pcm")
        mem_long = ours(long, url, "pcm")
        # bare and ours alternate, so a slow spell of this shared VM hits both sides alike; the best of each is kept
        bare_pcms, bare_copies, pcm_runs, mp4_runs = [], [], [], []
        for _ in range(args.repeat):
            bare_pcms.append(timed([*base, "-ac", "1", "-ar", "16000", "-f", "s16le", str(pcm_out)]))
            pcm_runs.append(ours(media, url, "pcm"))
            bare_copies.append(timed([*base, "-c:a", "copy", str(m4a_out)]))
            mp4_runs.append(ours(media, url, "mp4"))
        bare_pcm, bare_copy = min(bare_pcms), min(bare_copies)
        our_pcm = min(pcm_runs, key=lambda r: r["wall"])
        our_mp4 = min(mp4_runs, key=lambda r: r["wall"])
        pcm_out.unlink(missing_ok=True)
        m4a_out.unlink(missing_ok=True)
        t = time.perf_counter()
        official_transcribe(media, url, send="pcm")
        official = time.perf_counter() - t
    minutes = main_len / 60
    rows.append((f"bare ffmpeg decode to s16le ({minutes:.0f} min)", f"{bare_pcm:.2f} s", "baseline"))
    rows.append(
        (
            "funasr-subs --send pcm (whole process)",
            f"{our_pcm['wall']:.2f} s",
            f"{our_pcm['wall'] / bare_pcm:.2f} x (≤ 1.3)",
        )
    )
    rows.append(
        ("  of which the pipeline call", f"{our_pcm['seconds']:.2f} s", f"{our_pcm['seconds'] / bare_pcm:.2f} x")
    )
    rows.append((f"bare ffmpeg audio copy ({minutes:.0f} min)", f"{bare_copy:.2f} s", "baseline"))
    rows.append(
        (
            "funasr-subs --send mp4 (whole process)",
            f"{our_mp4['wall']:.2f} s",
            f"{our_mp4['wall'] / bare_copy:.2f} x (≤ 1.5)",
        )
    )
    rows.append(
        ("  of which the pipeline call", f"{our_mp4['seconds']:.2f} s", f"{our_mp4['seconds'] / bare_copy:.2f} x")
    )
    rows.append(("official-client-like baseline (pcm)", f"{official:.2f} s", "baseline"))
    rows.append(("funasr-subs --send pcm vs official", "", f"{official / our_pcm['wall']:.1f} x faster (≥ 15)"))
    rows.append(("peak RSS, 1-minute file", f"{mem_short['rss_mb']:.0f} MB", ""))
    rows.append(
        (
            f"peak RSS, {long_len / 3600:g}-hour file",
            f"{mem_long['rss_mb']:.0f} MB",
            f"{mem_long['rss_mb'] / mem_short['rss_mb']:.2f} x the 1-minute file (≤ 100 MB)",
        )
    )
    width = max(len(r[0]) for r in rows)
    size_mb = media.stat().st_size / 1e6
    print(f"\nmachine: {os.cpu_count()} cores; {media.name}: {size_mb:.0f} MB, 720p H.264 ~2.5 Mb/s + AAC 128 kb/s")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>10}  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

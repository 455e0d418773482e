"""Transcribe speed and memory against bare ffmpeg and an official-client-like baseline, measured in one run.

    python -m benchmarks.bench_transcribe            # 1-hour 720p film, 200 clips of 10 s (plus memory files)
    python -m benchmarks.bench_transcribe --quick    # 10-minute film, 40 clips

Every comparison is paired: our whole process (the installed command's entry point, start-up included) and the bare
ffmpeg baseline run in turn, A B A B ..., and the ratio is taken pair by pair (median, and min = the least disturbed
pair); the machine is shared, so best-of-N figures taken minutes apart would mislead. Peak memory: ours (the Python
process) and, next to it, that of the largest ffmpeg/ffprobe child it ran; for the baseline, ffmpeg's own.

Targets (issues #2, #14, #21): pcm ≤ 1.2 × bare ffmpeg decode, and ≤ 1.05 × itself without speech activity; mp4
≤ 1.5 × bare ffmpeg audio copy; many small files ≤ 1.3 × a loop of bare decodes (≤ 30 ms per file beyond the decode);
≥ 15 × faster than the official-client baseline; peak RSS ≤ 100 MB and the same for a long file as for a short one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.instant_server import InstantServer
from benchmarks.official_client import official_transcribe
from benchmarks.paired import Paired, Run, machine_note, paired, run_once

# The command line in this interpreter, then our own peak and our children's (ffmpeg, ffprobe) peak as JSON.
# Linux carries a parent's peak RSS into a forked child: reset the peak first (clear_refs 5), then read VmHWM.
_MEASURE = r"""
import json, resource, sys
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
from funasr_subs.cli import main
code = main(sys.argv[1:])
try:
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": code, "rss_mb": peak, "child_rss_mb": children}))
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


def _figures(out: str) -> dict[str, float]:
    data: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    if data.get("code"):
        raise RuntimeError(f"funasr-subs exited with {data['code']}")
    return data


def ours(args: list[str]) -> Run:
    """``funasr-subs ARGS`` in a fresh interpreter (start-up included); wall time and peaks from outside."""
    return run_once([sys.executable, "-c", _MEASURE, *args], parse=_figures)


def transcribe_args(url: str, send: str, *paths: Path) -> list[str]:
    # --no-resend-lost: the instant server answers one word for an hour of tone bursts, which the speech detector
    # hears as speech: every run would send 59 minutes again (2.5 x the run), a cost of the stand-in, not of ours
    return ["transcribe", "--server", url, "--send", send, "--overwrite", "--lang", send, "--progress-every", "0",
            "--no-resend-lost", *map(str, paths)]  # fmt: skip


def make_clips(folder: Path, count: int) -> list[Path]:
    """``count`` 10-second clips (tiny video + AAC, a tone burst each): the many-small-files case."""
    folder.mkdir(parents=True, exist_ok=True)
    first = make_long_media(folder / "clip-000.mkv", 10)
    clips = [first]
    for i in range(1, count):
        clip = folder / f"clip-{i:03d}.mkv"
        if not clip.exists():
            shutil.copyfile(first, clip)
        clips.append(clip)
    for old in folder.glob("*.srt"):
        old.unlink()
    return clips


def _row(name: str, result: Paired, target: float | None) -> str:
    mem_a = result.a[0]
    child = f", its ffmpeg {max(r.extra.get('child_rss_mb', 0) for r in result.a):.0f} MB" if mem_a.extra else ""
    ours_mb = max(r.extra.get("rss_mb", r.peak_mb) for r in result.a)  # wait4's peak would include the children
    base_mb = max(r.peak_mb for r in result.b)
    memory = f"peak memory: ours {ours_mb:.0f} MB{child}; baseline {base_mb:.0f} MB"
    return f"{name}\n    {result.summary(target)}\n    {memory}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10-minute film and 40 clips")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "funasr-subs-bench")
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs per comparison (runs alternate)")
    parser.add_argument("--clips", type=int, help="number of 10-second clips (default 200; --quick 40)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["film", "clips", "official", "memory"])
    args = parser.parse_args(argv)
    if not shutil.which("ffmpeg"):
        print("ffmpeg is required", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    main_len = 600 if args.quick else 3600
    long_len = 600 if args.quick else 3 * 3600
    n_clips = args.clips or (40 if args.quick else 200)
    print(f"generating media in {args.workdir} ...", flush=True)
    media = make_film(args.workdir / f"film-{main_len}s.mkv", main_len, args.workdir)
    scratch = args.workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    pcm_out, m4a_out = scratch / "out.pcm", scratch / "out.m4a"
    base = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(media), "-vn"]
    lines: list[str] = [machine_note()]
    failed = False
    with InstantServer() as url:
        if "film" not in args.skip:
            bare_pcm = [*base, "-ac", "1", "-ar", "16000", "-f", "s16le", str(pcm_out)]
            pcm = paired(lambda: ours(transcribe_args(url, "pcm", media)), lambda: run_once(bare_pcm), args.pairs)
            lines.append(_row(f"--send pcm vs bare ffmpeg decode to s16le ({main_len // 60} min film)", pcm, 1.2))
            bare_copy = [*base, "-c:a", "copy", str(m4a_out)]
            mp4_quiet = [*transcribe_args(url, "mp4", media), "--no-speech-activity"]  # the upload path alone
            mp4 = paired(lambda: ours(mp4_quiet), lambda: run_once(bare_copy), args.pairs)
            lines.append(_row(f"--send mp4 (no speech activity) vs bare ffmpeg audio copy ({main_len // 60} min film)",
                              mp4, 1.5))  # fmt: skip
            # speech activity (issue 21): the same run with and without listening to the PCM on its way
            quiet = [*transcribe_args(url, "pcm", media), "--no-speech-activity"]
            heard = paired(lambda: ours(transcribe_args(url, "pcm", media)), lambda: ours(quiet), args.pairs)
            lines.append(_row(f"--send pcm with speech activity vs without ({main_len // 60} min film)", heard, 1.05))
            # --send mp4: speech activity is a PCM decode beside the upload, a second ffmpeg (no target: a cost)
            beside = paired(lambda: ours(transcribe_args(url, "mp4", media)), lambda: ours(mp4_quiet), args.pairs)
            lines.append(_row(f"--send mp4 with speech activity (a decode beside) vs without ({main_len // 60} min "
                              "film)", beside, None))  # fmt: skip
            failed |= pcm.median_ratio > 1.2 or mp4.median_ratio > 1.5
            pcm_out.unlink(missing_ok=True)
            m4a_out.unlink(missing_ok=True)
        if "clips" not in args.skip:
            clips = make_clips(args.workdir / f"clips-{n_clips}", n_clips)
            loop = " ".join(
                f"ffmpeg -nostdin -v error -y -i {c} -vn -ac 1 -ar 16000 -f s16le {pcm_out} &&" for c in clips
            )
            bare_loop = ["sh", "-c", loop + " true"]
            many = paired(
                lambda: ours([*transcribe_args(url, "pcm", clips[0].parent), "--jobs", "1"]),
                lambda: run_once(bare_loop),
                max(1, args.pairs // 2),
            )
            per_file = (many.median("a") - many.median("b")) / n_clips * 1000
            lines.append(_row(f"{n_clips} clips of 10 s, --jobs 1, vs a loop of bare decodes", many, 1.3))
            lines.append(f"    beyond the decode: {per_file:.0f} ms per file (target ≤ 30)")
            failed |= many.median_ratio > 1.3
            pcm_out.unlink(missing_ok=True)
        if "official" not in args.skip:
            t = time.perf_counter()
            official_transcribe(media, url, send="pcm")
            official = time.perf_counter() - t
            t = time.perf_counter()
            ours(transcribe_args(url, "pcm", media))
            our_pcm = time.perf_counter() - t
            lines.append(f"official-client-like baseline (pcm): {official:.2f} s; ours {our_pcm:.2f} s: "
                         f"{official / our_pcm:.1f} x faster (≥ 15)")  # fmt: skip
        if "memory" not in args.skip:
            short = make_long_media(args.workdir / "bench-60s.mkv", 60)
            long = make_long_media(args.workdir / f"bench-{long_len}s.mkv", long_len)
            mem_short = ours(transcribe_args(url, "pcm", short))
            mem_long = ours(transcribe_args(url, "pcm", long))
            # our process's own peak (VmHWM after clear_refs): wait4's would carry this process's, which grew
            # reading the whole film for the official-client baseline above, into the forked child (137 MB)
            short_mb, long_mb = mem_short.extra["rss_mb"], mem_long.extra["rss_mb"]
            lines.append(
                f"peak RSS: 1-minute file {short_mb:.0f} MB, {long_len / 3600:g}-hour file {long_mb:.0f} MB "
                f"({long_mb / short_mb:.2f} x; ≤ 100 MB); their ffmpeg "
                f"{mem_short.extra['child_rss_mb']:.0f} / {mem_long.extra['child_rss_mb']:.0f} MB"
            )
    size_mb = media.stat().st_size / 1e6
    print(f"\n{media.name}: {size_mb:.0f} MB, 720p H.264 ~2.5 Mb/s + AAC 128 kb/s")
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

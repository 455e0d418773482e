"""A pool of FunASR servers against one, measured in one run with the test server at a realistic speed.

    python -m benchmarks.bench_pool                        # the issue's figures: RTF 0.05, 2-hour file, 100 x 10 min
    python -m benchmarks.bench_pool --rtf 0.01 --files 20  # the same shape, ~5 minutes in all

Each server is ``python -m tests.funasr_server --rtf R`` in its own process (it answers R x the seconds of audio
after the upload, one request at a time), so the servers' CPU is not the client's. The client is the real
``funasr-subs transcribe`` command. Three figures:

1. one long file (``--long-minutes``, default 120): 1 server vs 4 (split into 10-minute pieces); target >= 3.3x.
2. a backlog of ``--files`` files of ``--file-minutes`` (100 x 10): 1 server vs 4; target >= 3.6x the throughput.
3. the client's own CPU (funasr-subs and its ffmpeg children) per hour of audio, and so how many servers at this
   RTF one client core can feed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def test_servers(n: int, rtf: float) -> Iterator[list[str]]:
    """``n`` test servers in their own processes; yields their URLs."""
    procs, urls = [], []
    try:
        for _ in range(n):
            port = _free_port()
            argv = [sys.executable, "-m", "tests.funasr_server", "--port", str(port), "--rtf", str(rtf)]
            procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls.append(f"ws://127.0.0.1:{port}")
        for url in urls:
            port = int(url.rsplit(":", 1)[1])
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"test server on {port} did not start") from None
                    time.sleep(0.1)  # waiting for another process to listen: nothing to await
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def make_clip(path: Path) -> Path:
    """60 s of AAC in Matroska: a 2 s tone every 5 s (speech stand-in)."""
    tone = "aevalsrc='0.4*sin(2*PI*440*t)*lt(mod(t\\,5)\\,2)':s=16000:d=60"
    _run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", tone, "-c:a", "aac", "-b:a", "64k", str(path)]
    )
    return path


def make_long(clip: Path, path: Path, minutes: int) -> Path:
    """``minutes`` of audio by looping the clip with stream copy (seconds, not minutes, to make)."""
    if not path.exists():
        argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", str(minutes), "-i", str(clip)]
        _run([*argv, "-c", "copy", "-t", str(minutes * 60), str(path)])
    return path


def transcribe(files: list[Path], urls: list[str], jobs: int, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of funasr-subs and its ffmpeg children) for one ``transcribe`` run."""
    exe = shutil.which("funasr-subs") or "funasr-subs"
    argv = [exe, "transcribe", "--overwrite", "--output-dir", str(out), "-j", str(jobs)]
    for url in urls:
        argv += ["--server", f"{url}#slots=1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([*argv, *map(str, files)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"transcribe failed: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtf", type=float, default=0.05, help="the servers' real-time factor (0.05)")
    parser.add_argument("--long-minutes", type=int, default=120, help="length of the long file (120)")
    parser.add_argument("--files", type=int, default=100, help="files in the backlog (100)")
    parser.add_argument("--file-minutes", type=int, default=10, help="length of each backlog file (10)")
    parser.add_argument("--servers", type=int, default=4, help="servers in the pool (4)")
    args = parser.parse_args(argv)
    n = args.servers
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        clip = make_clip(work / "clip.mka")
        long = make_long(clip, work / "long.mka", args.long_minutes)
        one = make_long(clip, work / "backlog.mka", args.file_minutes)
        backlog = []
        for i in range(args.files):
            target = work / f"backlog-{i:03d}.mka"
            os.link(one, target)  # same audio, own name: own subtitles
            backlog.append(target)
        print(f"media made in {time.perf_counter() - t:.1f} s; RTF {args.rtf}; machine: {os.cpu_count()} cores")
        out = work / "out"
        out.mkdir()
        with test_servers(n, args.rtf) as urls:
            long_1, _ = transcribe([long], urls[:1], 1, out)
            long_n, long_cpu = transcribe([long], urls, 1, out)
            back_1, _ = transcribe(backlog, urls[:1], 2, out)
            back_n, back_cpu = transcribe(backlog, urls, 2 * n, out)
    hours_long = args.long_minutes / 60
    hours_back = args.files * args.file_minutes / 60
    print(f"\n1. {args.long_minutes}-minute file: 1 server {long_1:.1f} s, {n} servers {long_n:.1f} s: "
          f"{long_1 / long_n:.2f}x faster (target >= 3.3x)")  # fmt: skip
    audio_s = hours_back * 3600
    print(f"2. backlog {args.files} x {args.file_minutes} min: 1 server {back_1:.1f} s "
          f"({audio_s / back_1:.0f} s of audio/s), {n} servers {back_n:.1f} s "
          f"({audio_s / back_n:.0f} s of audio/s): {back_1 / back_n:.2f}x the throughput (target >= 3.6x)")  # fmt: skip
    per_hour = (long_cpu + back_cpu) / (hours_long + hours_back)
    server_s = args.rtf * 3600
    feeds = server_s / per_hour
    print(f"3. client CPU (funasr-subs + ffmpeg): {per_hour:.1f} s per hour of audio; a server at RTF {args.rtf} "
          f"spends {server_s:.0f} s on that hour, so one client core can feed ~{feeds:.0f} servers")  # fmt: skip
    print("(the machine may be shared with other work: run it again before comparing figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

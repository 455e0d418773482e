"""Watch daemon figures: per-file overhead, stable→subtitle latency, idle CPU while watching 10,000 files.

    python -m benchmarks.bench_watch            # 3 rounds of 30 files, 10,000-file idle windows of 20 s
    python -m benchmarks.bench_watch --quick    # 2 rounds of 12 files, 5,000 files, 6 s windows

1. Overhead (target ≤ 50 ms per file): the same tiny audio files go through (a) a plain loop calling
   ``generate_subtitles`` (the baseline, measured in this run) and (b) the daemon, dropped in at once with
   ``--settle 0`` and ``--jobs 1``, in alternating rounds (the best round of each counts: the machine may be busy).
   Overhead per file = (daemon batch time − baseline loop time) / files; the daemon's own accounting (job wall time −
   time inside the pipeline: stat, hotwords lookup, state database writes) is printed too.
2. Latency (target ≤ settle + processing + 1 s): files renamed into the folder one at a time (the rename is the moment
   they are complete and stable); time until the subtitle exists, minus settle, minus that job's pipeline time.
3. Idle CPU: ``funasr-subs watch`` as a subprocess over 10,000 already-done media files in 100 folders, with inotify
   and with ``--poll 5``; CPU seconds (utime+stime from /proc) over a window once the start-up scan is over.
The FunASR server is ``benchmarks.instant_server`` (answers at once, in its own process).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.instant_server import InstantServer
from funasr_subs.config import Settings
from funasr_subs.pipeline import generate_subtitles
from funasr_subs.watch.daemon import WatchDaemon, WatchOptions
from funasr_subs.watch.state import StateDB, media_key

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def make_tiny_audio(path: Path) -> Path:
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=2", "-c:a", "aac"]
    subprocess.run([*argv, str(path)], check=True)
    return path


def wait_until(predicate, timeout: float = 120.0, step: float = 0.002) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(step)


def start_daemon(daemon: WatchDaemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    daemon.ready.wait(30)
    return thread


def overhead(work: Path, source: Path, settings: Settings, n: int, rounds: int) -> dict[str, float]:
    """Alternate rounds of the plain loop and the daemon over ``n`` fresh copies each; best round of each counts."""
    root, staging, direct = work / "watched", work / "staging", work / "direct"
    for folder in (root, staging, direct):
        folder.mkdir()
    warm = shutil.copyfile(source, direct / "warm-up.m4a")
    generate_subtitles(warm, settings)  # imports, first connection
    daemon = WatchDaemon(WatchOptions(roots=(root,), state_dir=work / "state1", settle=0.0, jobs=1), settings)
    thread = start_daemon(daemon)
    baseline, through = [], []
    for r in range(rounds):
        files = [shutil.copyfile(source, direct / f"r{r}-{i:03d}.m4a") for i in range(n)]
        t = time.perf_counter()
        for f in files:
            generate_subtitles(f, settings)
        baseline.append(time.perf_counter() - t)

        for i in range(n):
            shutil.copyfile(source, staging / f"r{r}-{i:03d}.m4a")
        t = time.perf_counter()
        for i in range(n):
            os.rename(staging / f"r{r}-{i:03d}.m4a", root / f"r{r}-{i:03d}.m4a")
        wait_until(lambda r=r: len(list(root.glob(f"r{r}-*.srt"))) == n, step=0.01)
        through.append(time.perf_counter() - t)
    daemon.stop()
    thread.join(30)
    inner = [s.wall_s - s.pipeline_s for s in daemon.stats if s.outcome == "done"]
    return {
        "baseline_s": min(baseline),
        "daemon_s": min(through),
        "per_file_ms": (min(through) - min(baseline)) / n * 1000,
        "inner_median_ms": statistics.median(inner) * 1000,
        "inner_max_ms": max(inner) * 1000,
    }


def latency(work: Path, source: Path, settings: Settings, n: int, settle: float) -> list[float]:
    root, staging = work / "latency", work / "staging2"
    root.mkdir()
    staging.mkdir()
    daemon = WatchDaemon(WatchOptions(roots=(root,), state_dir=work / "state2", settle=settle, jobs=1), settings)
    thread = start_daemon(daemon)
    excess: list[float] = []
    for i in range(n):
        name = f"l{i:03d}"
        shutil.copyfile(source, staging / f"{name}.m4a")
        stable = time.perf_counter()
        os.rename(staging / f"{name}.m4a", root / f"{name}.m4a")
        srt = root / f"{name}.zh.srt"
        wait_until(srt.exists)
        total = time.perf_counter() - stable
        wait_until(lambda name=name: any(s.path.stem == name for s in daemon.stats))  # recorded just after writing
        pipeline_s = next(s.pipeline_s for s in daemon.stats if s.path.stem == name and s.outcome == "done")
        excess.append(total - settle - pipeline_s)
    daemon.stop()
    thread.join(30)
    return excess


def library(root: Path, state: Path, count: int) -> None:
    """``count`` media files in 100 folders, recorded as done in the state database (one transaction)."""
    with StateDB(state):
        pass  # creates the schema
    rows = []
    now = time.time()
    for i in range(count):
        folder = root / f"show {i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"episode {i:05d}.mkv"
        path.write_bytes(b"\0" * 64)
        st = path.stat()
        rows.append((str(media_key(path)), "done", 1, st.st_size, st.st_mtime_ns, now, "bench", now, now, now))
    conn = sqlite3.connect(state / "state.sqlite3")
    with conn:
        conn.executemany(
            "INSERT INTO jobs (path, state, attempts, size, mtime_ns, stat_at, source, created_at, updated_at,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def idle_cpu(root: Path, state: Path, url: str, window: float, poll: float | None) -> tuple[float, float]:
    """(start-up CPU seconds, CPU seconds over ``window`` once idle) of a watching subprocess."""
    argv = [sys.executable, "-m", "funasr_subs", "watch", str(root), "--state-dir", str(state), "--server", url]
    argv += ["--config", os.devnull] + (["--poll", str(poll)] if poll else [])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("scanned "):
                break
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
        time.sleep(1.0)  # let the observer finish its first snapshot
        start = cpu_seconds(proc.pid)
        time.sleep(window)  # the measurement window itself
        return start, cpu_seconds(proc.pid) - start
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, rounds, lat_n, idle_files, window = (12, 2, 5, 5000, 6.0) if args.quick else (30, 3, 10, 10_000, 20.0)
    settle = 1.0
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp, InstantServer() as url:
        work = Path(tmp)
        settings = Settings(server=url, retries=0)
        source = make_tiny_audio(work / "tiny.m4a")

        o = overhead(work, source, settings, n, rounds)
        print(f"1. per-file overhead, {n} files (2 s AAC each, jobs 1, settle 0), best of {rounds} rounds:")
        print(f"   plain generate_subtitles loop (baseline): {o['baseline_s']:.2f} s")
        print(
            f"   through the daemon:                       {o['daemon_s']:.2f} s  "
            f"({o['daemon_s'] / o['baseline_s']:.2f}x)"
        )
        print(
            f"   overhead per file: {o['per_file_ms']:.1f} ms (target <= 50 ms); inside the worker: median "
            f"{o['inner_median_ms']:.1f} ms, max {o['inner_max_ms']:.1f} ms"
        )

        ex = latency(work, source, settings, lat_n, settle)
        print(f"2. stable -> subtitle, minus settle ({settle:g} s) and processing, over {lat_n} files:")
        print(f"   median {statistics.median(ex) * 1000:.0f} ms, max {max(ex) * 1000:.0f} ms (target <= 1000 ms)")

        root, state = work / "library", work / "state3"
        library(root, state, idle_files)
        print(f"3. idle CPU watching {idle_files:,} done media files in 100 folders, {window:g} s window:")
        for label, poll in (("inotify", None), ("--poll 5", 5.0)):
            startup, cpu = idle_cpu(root, state, url, window, poll)
            print(
                f"   {label:9s} start-up {startup:.2f} CPU s; "
                f"idle {cpu:.2f} CPU s = {cpu / window * 100:.2f}% of a core"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

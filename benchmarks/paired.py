"""Paired timing of whole processes: A and its baseline B run in turn (A B A B ...), the ratio taken pair by pair.

The machine these benchmarks run on is shared (several engineers, 2 cores): its speed drifts from second to second.
A ratio of two best-of-N figures taken minutes apart can say anything; a ratio per adjacent pair cancels most of the
drift. Each figure is printed as the median of the pair ratios (quote that) and their minimum (the least disturbed
pair). Peak memory comes from the kernel's accounting of the reaped child (``wait4``): the process itself, and
separately its largest child (ffmpeg, ffprobe) where the command reports it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: The environment every timed command runs in: this one without PYTHONDONTWRITEBYTECODE, which some CI and sandbox
#: images set. An installed package has its bytecode cached (pip compiles it); without the cache every run would
#: compile the modules it imports from source (~45 ms for ours), a cost no user pays. The warm-up pair writes it.
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Run:
    wall_s: float
    peak_mb: float  # the process's own peak RSS
    extra: dict[str, float] = field(default_factory=dict)  # what the command reported (e.g. its children's peak)


@dataclass(frozen=True)
class Paired:
    a: tuple[Run, ...]
    b: tuple[Run, ...]

    @property
    def ratios(self) -> list[float]:
        return [x.wall_s / y.wall_s for x, y in zip(self.a, self.b, strict=True)]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def min_ratio(self) -> float:
        return min(self.ratios)

    def median(self, side: str) -> float:
        return statistics.median(r.wall_s for r in (self.a if side == "a" else self.b))

    def summary(self, target: float | None = None) -> str:
        goal = f" (target ≤ {target:g})" if target is not None else ""
        verdict = "" if target is None else ("  ok" if self.median_ratio <= target else "  NOT MET")
        return (
            f"{self.median('a'):.3f} s vs {self.median('b'):.3f} s: ratio median {self.median_ratio:.2f} x, "
            f"min {self.min_ratio:.2f} x over {len(self.a)} pairs{goal}{verdict}"
        )


def run_once(
    argv: Sequence[str], *, env: dict[str, str] | None = None, parse: Callable[[str], dict[str, float]] | None = None
) -> Run:
    """Start ``argv``, wait for it with ``wait4``; its stdout is discarded unless ``parse`` reads figures from it."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if parse else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env if env is not None else BENCH_ENV,
    )
    out = proc.stdout.read().decode() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {' '.join(map(str, argv))}")
    return Run(wall, usage.ru_maxrss / 1024, parse(out) if parse else {})


def paired(
    a: Callable[[], Run],
    b: Callable[[], Run],
    pairs: int,
    *,
    warmup: int = 1,
) -> Paired:
    """``pairs`` runs of each, alternating A B A B ... after ``warmup`` uncounted pairs."""
    for _ in range(warmup):
        a()
        b()
    runs_a: list[Run] = []
    runs_b: list[Run] = []
    for _ in range(pairs):
        runs_a.append(a())
        runs_b.append(b())
    return Paired(tuple(runs_a), tuple(runs_b))


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {os.cpu_count()} cores, load {load:.1f} at the start; SHARED with other engineers' jobs, so "
        "absolute times drift: read the paired ratios (median; min = the least disturbed pair)"
    )

"""Start-up cost: the installed ``funasr-subs`` against a bare ``python -c pass``, paired runs (A B A B ...).

    python -m benchmarks.bench_startup             # 20 pairs each
    python -m benchmarks.bench_startup --pairs 5

Target (issue #14): ``funasr-subs --help`` ≤ 4 × a bare Python start. The other lines show where a command's own
imports begin (``transcribe --help`` builds its options; ``import funasr_subs`` is the library's cost).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchmarks.paired import machine_note, paired, run_once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args(argv)
    script = Path(sys.executable).with_name("funasr-subs")
    exe = [str(script)] if script.exists() else [shutil.which("funasr-subs") or "funasr-subs"]
    bare = [sys.executable, "-c", "pass"]
    cases = {
        "funasr-subs --help": ([*exe, "--help"], 4.0),
        "funasr-subs --version": ([*exe, "--version"], None),
        "funasr-subs transcribe --help": ([*exe, "transcribe", "--help"], None),
        "python -c 'import funasr_subs'": ([sys.executable, "-c", "import funasr_subs"], None),
        "python -c 'import funasr_subs.pipeline'": ([sys.executable, "-c", "import funasr_subs.pipeline"], None),
    }
    print(machine_note())
    print(f"baseline B = {' '.join(bare)}; {args.pairs} pairs each\n")
    width = max(map(len, cases))
    failed = False
    for name, (cmd, target) in cases.items():
        result = paired(lambda cmd=cmd: run_once(cmd), lambda: run_once(bare), args.pairs)  # type: ignore[misc]
        print(f"{name:<{width}}  {result.summary(target)}", flush=True)
        failed |= target is not None and result.median_ratio > target
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The README on a fresh machine: clone, install, make the first subtitles and run the tests as its first screen says.

Runs the README's "Install" lines, its "First subtitles" lines and its "Tests" command with bash, in a new temporary
folder, from a clean clone of this checkout's last commit: nothing beside the clone (no ``../shared``, which our own
machines have), nothing in it that git does not track, and the demo files of the first run left where a newcomer
leaves them (``git status`` must stay clean: they are ignored). The whole test command runs, not a chosen part of
it: that is what a stranger runs, and a test that needs anything outside the clone fails here.

The only change to the lines: the clone URL points at that local clone (the code under test, not whatever is
published). The `apt-get` line runs only when a tool it installs is missing. The stand-in server listens on a free
port, given to both it and funasr-subs through FUNASR_SUBS_SERVER (unset for the tests, which start their own).
Standard library only; exit 0 when demo.zh.srt was written with the three cues the README shows and the tests pass.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.docs_support import code_blocks, section  # noqa: E402

PUBLISHED = re.compile(r"https://github\.com/\S+\.git")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tools_present() -> bool:
    have = all(shutil.which(t) for t in ("git", "ffmpeg", "ffprobe", "openssl", "espeak-ng", "python3"))
    if not have:
        return False
    probe = subprocess.run(["python3", "-c", "import ensurepip, venv"], capture_output=True, check=False)
    return probe.returncode == 0


def main() -> int:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (install,) = code_blocks(section(readme, "Install"))
    (first,) = code_blocks(section(readme, "First subtitles — try it without Docker"))
    (tests,) = code_blocks(section(readme, "Tests"))
    test_command = tests.splitlines()[0].split("#")[0].strip()
    with tempfile.TemporaryDirectory(prefix="funasr-subs-fresh-") as tmp:
        root = Path(tmp)
        origin = root / "origin" / "funasr-subs.git"
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
        subprocess.run(["git", "-C", str(REPO), "push", "-q", str(origin), f"{head}:refs/heads/main"], check=True)
        subprocess.run(["git", "-C", str(origin), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
        lines = []
        for line in install.splitlines():
            if line.startswith("sudo apt-get"):
                if _tools_present():
                    print(f"fresh-machine: skipped (everything it installs is here): {line}")
                    continue
                if os.geteuid() == 0:
                    line = line.removeprefix("sudo ")
            if PUBLISHED.search(line):
                line = PUBLISHED.sub(origin.as_uri(), line)
            lines.append(line)
        work = root / "home"
        work.mkdir()
        script = (
            "set -euo pipefail\n"
            + "\n".join(lines)
            + "\n"
            + first
            + "\nkill %1\nwait || true\n"
            + 'test -z "$(git status --porcelain)" || { git status --short; echo "the first run left untracked files";'
            + " exit 3; }\n"
            + "unset FUNASR_SUBS_SERVER\n"  # the tests start their own servers
            + test_command
            + "\n"
        )
        print("fresh-machine: running in", work, "\n" + script, flush=True)
        env = {
            k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("PIP_")
        }
        path = [p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p and "venv/bin" not in p]
        env["PATH"] = os.pathsep.join(path)
        env["FUNASR_SUBS_SERVER"] = f"ws://127.0.0.1:{_free_port()}"
        env["XDG_CONFIG_HOME"] = str(root / "config")
        env["XDG_STATE_HOME"] = str(root / "state")
        # the clone will be home/funasr-subs: nothing may be beside it
        assert not (work / "shared").exists() and not (root / "shared").exists()
        proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, timeout=3600, check=False)
        if proc.returncode != 0:
            print(f"fresh-machine: FAILED (exit {proc.returncode})", file=sys.stderr)
            return 1
        srt = work / "funasr-subs" / "demo.zh.srt"
        if not srt.is_file():
            print(f"fresh-machine: FAILED: {srt} was not written", file=sys.stderr)
            return 1
        starts = re.findall(r"^(\d\d:\d\d:\d\d,\d\d\d) --> ", srt.read_text(encoding="utf-8"), re.M)
        if starts != ["00:00:01,000", "00:00:04,500", "00:00:09,000"]:
            print(f"fresh-machine: FAILED: demo.zh.srt has cues at {starts}", file=sys.stderr)
            return 1
    print("fresh-machine: the README's install, first-subtitles and test lines work from a clean clone")
    return 0


if __name__ == "__main__":
    sys.exit(main())

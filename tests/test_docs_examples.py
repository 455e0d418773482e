"""The examples of docs/transcribe.md and docs/cues.md, run as written after the README's first run, against the
stand-in server: every command runs, and every ``$ command`` prints what the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_support import REPO, code_blocks, fenced_blocks, section
from tests.funasr_server import FunasrTestServer

MARK = "@@end-of-command@@"
#: What differs from run to run: the seconds a file took.
_SECONDS = re.compile(r"\d+\.\d s\)")


def _normal(line: str) -> str:
    return _SECONDS.sub("N s)", line.rstrip())


def _commands(block: str) -> list[tuple[str, list[str] | None]]:
    """``(command, expected output)`` pairs: ``$ `` lines with the lines under them, or bare command lines (whose
    output is not shown, so None). A line ending in ``\\`` continues on the next one."""
    out: list[tuple[str, list[str] | None]] = []
    session = any(line.startswith("$ ") for line in block.splitlines())
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if session and not line.startswith("$ "):
            assert out, f"output before the first command: {line!r}"
            expected = out[-1][1]
            assert expected is not None
            expected.append(line)
            continue
        command = line.removeprefix("$ ")
        while command.endswith("\\") and i < len(lines):
            command = command[:-1] + " " + lines[i].strip()
            i += 1
        if command.strip():
            out.append((command, [] if session else None))
    return out


def _sandbox(tmp_path: Path, server: FunasrTestServer) -> tuple[Path, dict[str, str]]:
    """A folder where the README's first run has happened, with ``tests/`` reachable as from the checkout."""
    work = tmp_path / "checkout"
    work.mkdir()
    (work / "tests").symlink_to(REPO / "tests")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",  # stdout and stderr lines in the order they were printed
        FUNASR_SUBS_SERVER=server.url,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (first,) = code_blocks(section(readme, "First subtitles — try it without Docker"))
    script = "\n".join(line for line in first.splitlines() if "tests.funasr_server" not in line)  # ours runs
    subprocess.run(["bash", "-ec", script], cwd=work, env=env, check=True, capture_output=True, timeout=120)
    return work, env


@pytest.mark.parametrize("page", ["transcribe.md", "cues.md"])
def test_the_pages_examples_run_and_print_what_they_show(
    page: str, funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    work, env = _sandbox(tmp_path, funasr_server)
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    steps = [step for lang, body in fenced_blocks(text) if lang in ("", "bash", "sh") for step in _commands(body)]
    assert len(steps) >= 10, steps
    # one bash for the whole page, so `echo $?` sees the command before it; a mark after each command's output
    script = "".join(f"{command}\n__rc=$?; echo {MARK}; (exit $__rc)\n" for command, _ in steps)
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, as on a terminal
        text=True,
        timeout=600,
        check=False,
    )
    outputs = proc.stdout.split(MARK + "\n")
    assert len(outputs) == len(steps) + 1, proc.stdout
    for (command, expected), got in zip(steps, outputs, strict=False):
        if expected is None:
            assert "error" not in got.lower(), f"{page}: {command}\n{got}"
            continue
        shown = [_normal(line) for line in "\n".join(expected).rstrip().splitlines()]
        printed = [_normal(line) for line in got.rstrip().splitlines()]  # a subtitle file ends in a blank line
        for want, have in zip(shown, printed, strict=False):
            if "(...)" in want or "..." in want:  # the page shortened a long line
                head = want.split("(...)")[0].split("...")[0]
                assert have.startswith(head), f"{page}: {command}\n  shown: {want}\n  printed: {have}"
            else:
                assert have == want, f"{page}: {command}\n  shown: {want}\n  printed: {have}"
        assert len(printed) == len(shown), f"{page}: {command}\nshown:\n{chr(10).join(shown)}\nprinted:\n{got}"

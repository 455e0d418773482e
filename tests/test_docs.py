"""The documentation against the code: links and anchors resolve, the front door's commands run, and the
configuration reference lists every real option."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from funasr_subs.cli import COMMANDS as CLI_COMMANDS
from funasr_subs.cli import build_parser
from funasr_subs.commands.watch import DEFAULTS as WATCH_DEFAULTS
from funasr_subs.config import Settings
from funasr_subs.service.config import KEYS as SERVE_KEYS
from tests.docs_support import (
    FIRST_SCREEN_LINES,
    REPO,
    anchors_of,
    code_blocks,
    links_of,
    section,
)

DOCS = REPO / "docs"
PAGES = (
    "transcribe",
    "cues",
    "watch",
    "media-servers",
    "obs",
    "kodi",
    "api",
    "configuration",
    "troubleshooting",
    "performance",
    "development",
)
DOC_FILES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_docs_page_exists_and_the_readme_links_to_it() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert (DOCS / f"{page}.md").is_file(), page
        assert f"](docs/{page}.md)" in readme, f"README does not link docs/{page}.md"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_and_anchor_resolves(doc: Path) -> None:
    broken = []
    for target in links_of(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            assert target.startswith(("https://", "http://")), target
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            broken.append(f"{target}: {dest} does not exist")
            continue
        if anchor:
            if dest.suffix != ".md":
                broken.append(f"{target}: anchor into a non-markdown file")
            elif anchor not in anchors_of(dest.read_text(encoding="utf-8")):
                broken.append(f"{target}: no heading or <a id> {anchor!r} in {dest.name}")
    assert not broken, f"{doc.name}: " + "; ".join(broken)


def test_the_first_screen_holds_install_first_subtitles_and_tests() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES]
    first = "\n".join(lines)
    assert "git clone " in first
    assert "python3 -m venv .venv" in first and "pip install" in first
    assert "funasr-subs transcribe " in first
    assert "python -m tests.funasr_server" in first  # the try-it path without Docker
    assert "python -m pytest -q" in first


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = code_blocks(section(readme, "Tests"))
    command = block.splitlines()[0].split("#")[0].strip()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert command == "python -m pytest -q"
    assert command in ci_lines


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_readmes_try_it_lines_run_as_written(tmp_path: Path) -> None:
    """The "First subtitles" block, run literally by bash: make the demo, start the stand-in, transcribe."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = code_blocks(section(readme, "First subtitles — try it without Docker"))
    script = "set -e\n" + block + "\nkill %1\nwait\n"
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),  # `python -m tests...` from the checkout
        # the stand-in listens on this port and funasr-subs looks there: no clash with a real server on 10095
        "FUNASR_SUBS_SERVER": f"ws://127.0.0.1:{_free_port()}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "done: demo.mp4 -> demo.zh.srt (3 cues" in proc.stderr + proc.stdout
    # the stand-in in the background is quiet in the user's terminal, and `kill %1` leaves no folder behind
    shown = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert shown == ["demo.mp4"] + [line for line in shown if line.startswith("done: demo.mp4 -> ")], shown
    assert list((tmp_path / "tmp").iterdir()) == []
    srt = (tmp_path / "demo.zh.srt").read_text(encoding="utf-8")
    # the stand-in's sentences sit on the tone bursts that tests.media put at 1.0, 4.5 and 9.0 s
    assert "00:00:01,000 --> " in srt and "00:00:04,500 --> " in srt and "00:00:09,000 --> " in srt
    assert (tmp_path / "demo.funasr.json").is_file()
    # the README shows this run's real output
    for line in srt.strip().splitlines():
        assert line in readme, f"README's demo output is stale: {line!r}"


def _options(command: str) -> dict[str, str]:
    """``--flag`` -> argparse destination, for one sub-command."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        opt: action.dest
        for action in sub.choices[command]._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }


#: Destinations that are configuration (Settings keys, the [watch] table, the [serve] table as ``svc_<key>``, and
#: the general options every command has): their flags belong in the configuration reference.
_CONFIG_DESTS = {f.name for f in fields(Settings)} | set(WATCH_DEFAULTS) | {"config", "verbose", "log_file"}


def _is_config(dest: str) -> bool:
    return dest in _CONFIG_DESTS or dest.startswith("svc_")


def _documented(opt: str, text: str) -> bool:
    return re.search(re.escape(opt) + r"(?![\w-])", text) is not None


def test_the_configuration_reference_lists_every_setting_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    transcription = (
        section(text, "Transcription settings") + section(text, "Cue settings") + section(text, "Chinese text")
    )
    missing = [f.name for f in fields(Settings) if f"`{f.name}`" not in transcription]
    assert not missing, f"Settings keys missing from docs/configuration.md: {missing}"
    watch = section(text, "`[watch]`: the watch daemon's own options")
    missing = [k for k in WATCH_DEFAULTS if f"`{k}`" not in watch and f"`--{k.replace('_', '-')}" not in watch]
    assert not missing, f"[watch] keys missing from docs/configuration.md: {missing}"
    serve = section(text, "`[serve]`: the HTTP service and the hook")
    missing = [k for k in SERVE_KEYS if f"`{k}`" not in serve]
    assert not missing, f"[serve] keys missing from docs/configuration.md: {missing}"


COMMANDS = list(CLI_COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_configuration_reference_lists_every_configurable_flag(command: str) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    options = _options(command)
    missing = sorted(opt for opt, dest in options.items() if _is_config(dest) and not _documented(opt, text))
    assert not missing, f"funasr-subs {command} flags missing from docs/configuration.md: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_other_flag_is_documented_somewhere(command: str) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOC_FILES)
    missing = sorted(opt for opt in _options(command) if not _documented(opt, text))
    assert not missing, f"funasr-subs {command} flags missing from the docs: {missing}"


def test_a_missing_option_is_caught(tmp_path: Path) -> None:
    """The check can fail: drop one row from a copy of the reference and the key is reported missing."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `reply_timeout_ratio`"))
    cut = text.replace(row + "\n", "")
    section_text = section(cut, "Transcription settings") + section(cut, "Cue settings")
    assert "`reply_timeout_ratio`" not in section_text
    assert not _documented("--reply-timeout-ratio", cut)
    assert _documented("--reply-timeout", cut)


def test_documented_shell_examples_name_real_commands() -> None:
    """Every `funasr-subs X` in a code block names a real sub-command (a renamed command breaks this)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bad = []
    for doc in DOC_FILES:
        for block in code_blocks(doc.read_text(encoding="utf-8")):
            for line in block.splitlines():
                line = line.removeprefix("$ ").strip()
                if not line.startswith("funasr-subs "):
                    continue
                words = shlex.split(line.split(" #")[0].rstrip("\\"), posix=True)
                if len(words) > 1 and not words[1].startswith("-") and words[1] not in sub.choices:
                    bad.append(f"{doc.name}: {line}")
    assert not bad, bad


def test_stand_in_listens_where_funasr_subs_looks(tmp_path: Path) -> None:
    """`python -m tests.funasr_server` takes its port from $FUNASR_SUBS_SERVER (so the README's lines agree)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "FUNASR_SUBS_SERVER": f"ws://127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.funasr_server", "-v"],  # -v: it says where it listens
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "FunASR test server listening on" in line:
                assert f"ws://127.0.0.1:{port}" in line
                break
        else:
            pytest.fail("the stand-in never said where it listens")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert shutil.which("bash")

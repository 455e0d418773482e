"""Start-up: a command imports what it needs when it needs it (speed itself: benchmarks/bench_startup.py)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from funasr_subs.cli import COMMANDS, build_parser
from tests.faults import ffmpeg_on
from tests.funasr_server import FunasrTestServer
from tests.test_cli_transcribe import cli

# Runs the real entry point in a fresh interpreter and reports which modules it had imported when it exited.
_PROBE = r"""
import json, sys
from funasr_subs.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""
HEAVY = ("funasr_subs.pipeline", "websockets", "asyncio", "importlib.metadata", "pysubs2", "tqdm", "sqlite3")


def _modules_after(*argv: str) -> tuple[int, set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60, check=False
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_top_level_help_imports_no_command_and_no_heavy_library() -> None:
    code, modules, out = _modules_after("--help")
    assert code == 0
    for name in COMMANDS:
        assert f"  {name}" in out  # every command listed, with its summary
        assert f"funasr_subs.commands.{name}" not in modules
    assert "write subtitles next to media files" in out
    assert [m for m in HEAVY if _loaded(modules, m)] == []
    assert "funasr_subs.cues" not in modules and "funasr_subs.config" not in modules


def test_version_is_read_without_importlib_metadata() -> None:
    code, modules, out = _modules_after("--version")
    assert code == 0 and out.strip().startswith("funasr-subs ")
    assert "importlib.metadata" not in modules


def test_transcribe_help_loads_only_its_own_options() -> None:
    code, modules, out = _modules_after("transcribe", "--help")
    assert code == 0 and "--send" in out and "--max-cps" in out
    assert "funasr_subs.commands.transcribe" in modules
    assert "funasr_subs.commands.watch" not in modules and "funasr_subs.commands.serve" not in modules
    assert [m for m in HEAVY if _loaded(modules, m)] == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_summary_is_the_one_its_module_registers(name: str) -> None:
    import argparse

    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help for action in sub._choices_actions}
    assert helps[name] == COMMANDS[name]
    # and the command's own parser is the full one whichever way the line is built
    only = build_parser(only=name)
    only_sub = next(a for a in only._actions if isinstance(a, argparse._SubParsersAction))
    assert only_sub.choices[name].format_help() == sub.choices[name].format_help()


def test_a_misspelt_command_is_refused_with_the_list() -> None:
    code, _, _ = _modules_after("transcibe", "x.mkv")
    assert code == 2


def test_public_api_names_still_import() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import funasr_subs as f; from funasr_subs import Settings, generate_subtitles, TLSMismatchError; "
            "print(f.__version__, Settings().server, f.parse_reply.__name__, sorted(f.__all__) == sorted(dir(f)) "
            "or set(f.__all__) <= set(dir(f)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == [
        importlib.metadata.version("funasr-subs"),
        "ws://127.0.0.1:10095",
        "parse_reply",
        "True",
    ]


# --- no ffprobe where ffmpeg's own report says enough; ffprobe started ahead where it is still needed ----------------
def test_a_probe_started_ahead_is_taken_and_a_changed_file_is_probed_again(tmp_path: Path) -> None:
    from funasr_subs.media import probe as media
    from tests.media import make_media

    media.probe_ahead(make_media(tmp_path / "film.mkv", duration_ms=3000))
    assert media._ahead == {}  # an mkv needs no ffprobe: the decoding ffmpeg reports its facts
    clip = make_media(tmp_path / "a.ts", duration_ms=3000)  # MPEG-TS: its audio start comes from ffprobe
    media.probe_ahead(clip)
    assert len(media._ahead) == 1
    assert (
        abs(media.probe(clip).duration_ms - 3000) < 100 and media._ahead == {}
    )  # its answer taken, nothing left running

    media.probe_ahead(clip)
    longer = make_media(tmp_path / "b.ts", duration_ms=5000)
    os.replace(longer, clip)  # the file changed after its probe was started
    assert abs(media.probe(clip).duration_ms - 5000) < 100  # not the stale answer
    media.drop_probes_ahead()
    assert media._ahead == {}


def test_transcribe_probes_the_next_file_while_one_runs(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    """With a server that answers slowly, the second file's ffprobe has finished before its upload begins."""
    from tests.media import make_media

    for name in ("a.ts", "b.ts", "c.ts"):
        make_media(tmp_path / name, duration_ms=2500)
    funasr_server.slow_seconds = 1.0
    funasr_server.fault = "slow"
    done = cli("transcribe", "-vv", "--jobs", "1", "--server", funasr_server.url, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert len(funasr_server.files) == 3
    # each probe after the first was started while the previous file was with the server: debug lines say so
    started = [line for line in done.stderr.splitlines() if "ffprobe started ahead" in line]
    taken = [line for line in done.stderr.splitlines() if "ffprobe answer taken" in line]
    assert len(started) == 3 and len(taken) == 3


def test_one_ffmpeg_and_no_ffprobe_per_file_even_with_the_skip_rules(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    """The skip rules and the recognition both need the stream facts: an mkv or mp4 is read by one ffmpeg run (its
    report, then its audio) and no ffprobe; an MPEG-TS is probed once."""
    from tests.media import make_media, make_multi_audio

    make_media(tmp_path / "a.mkv", duration_ms=2500)
    make_media(tmp_path / "b.mp4", duration_ms=2500)
    make_media(tmp_path / "c.ts", duration_ms=2500)
    make_media(tmp_path / "e.mp3", duration_ms=2500)  # starts at ~23 ms (encoder delay): decoded again unpadded
    # the Chinese track is not ffmpeg's pick: the first ffmpeg is stopped after its report, one more decodes
    make_multi_audio(tmp_path / "d.mkv", [("eng", [(500, 800)]), ("chi", [(1500, 800)])], duration_ms=2500)
    done = cli("watch", "--once", "-vv", "--settle", "0", "--state-dir", str(tmp_path / "state"),
               "--server", funasr_server.url, str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(funasr_server.files) == 5
    lines = done.stderr.splitlines()
    for name, probes, runs in (("a.mkv", 0, 1), ("b.mp4", 0, 1), ("c.ts", 1, 1), ("d.mkv", 0, 2), ("e.mp3", 0, 2)):
        assert len([ln for ln in lines if f"{name}: running ffprobe" in ln]) == probes, done.stderr
        assert len([ln for ln in lines if "running ['" in ln and f"{name}'" in ln]) == runs, done.stderr


def test_the_first_files_ffmpeg_starts_during_start_up_and_a_skipped_ones_is_stopped(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    """ffmpeg runs while the pipeline is imported; the job takes that very process over. A file that turns out
    to need no work (a subtitle of the user's in the way) leaves no ffmpeg behind."""
    from tests.media import make_media

    media = make_media(tmp_path / "a.mkv", bursts=[(500, 800)], duration_ms=2500)
    other = make_media(tmp_path / "b.mkv", bursts=[(500, 800)], duration_ms=2500)
    (tmp_path / "b.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nmine\n", encoding="utf-8")
    done = cli("transcribe", "-vv", "--jobs", "2", "--server", funasr_server.url, str(media), str(other))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    for path in (media, other):
        assert any(f"{path}: ffmpeg started early" in ln for ln in lines), done.stderr
    assert any(f"{media}: ffmpeg started early taken over" in ln for ln in lines), done.stderr
    assert not any(f"{other}: ffmpeg started early taken over" in ln for ln in lines), done.stderr
    assert (tmp_path / "a.zh.srt").exists() and "mine" in (tmp_path / "b.zh.srt").read_text(encoding="utf-8")
    assert len(funasr_server.files) == 1
    assert ffmpeg_on(other) == [] and ffmpeg_on(media) == []

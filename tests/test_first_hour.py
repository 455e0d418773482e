"""A newcomer's first hour, through the installed ``funasr-subs`` command: --output-dir, retime's memory, the
configuration and flag papercuts, and the small things (issue 14)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pysubs2

from tests.funasr_server import FunasrTestServer
from tests.media import make_media

BURSTS = [(1000, 900), (3500, 1200)]
REPLY = Path(__file__).parent / "data" / "funasr-responses" / "01_offline_cpp_asr_example_single_sentence.json"


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    full_env["XDG_CONFIG_HOME"] = str(cwd or Path.cwd()) + "/no-config-here"
    full_env.update(env or {})
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, check=False
    )


def starts(srt: Path) -> list[int]:
    return [event.start for event in pysubs2.load(str(srt))]


# --- item 6: --output-dir ---------------------------------------------------------------------------------
def test_output_dir_is_created_and_the_done_line_says_where(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "film.mkv", bursts=BURSTS, duration_ms=5000)
    done = cli("transcribe", "--server", funasr_server.url, "--output-dir", "subs/new", "film.mkv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "subs" / "new"
    assert (out / "film.zh.srt").is_file() and (out / "film.funasr.json").is_file()
    assert "created the output folder subs/new" in done.stderr
    assert "done: film.mkv -> subs/new/film.zh.srt (2 cues, " in done.stderr
    assert not media.with_name("film.zh.srt").exists()
    # beside the media, the line stays short: bare names
    again = cli("transcribe", "--server", funasr_server.url, "--format", "srt,vtt", "film.mkv", cwd=tmp_path)
    assert "done: film.mkv -> film.zh.srt, film.zh.vtt (2 cues, " in again.stderr, again.stderr


def test_an_output_dir_that_cannot_be_made_is_one_clear_error(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    make_media(tmp_path / "film.mkv", bursts=BURSTS, duration_ms=5000)
    (tmp_path / "afile").write_text("in the way", encoding="utf-8")
    done = cli("transcribe", "--server", funasr_server.url, "--output-dir", "afile/subs", "film.mkv", cwd=tmp_path)
    assert done.returncode == 1
    assert "error: film.mkv: cannot create the output folder afile/subs: Not a directory" in done.stderr
    assert not funasr_server.requests  # nothing was sent to the server for a file that cannot be written


def test_retime_finds_the_sidecar_in_the_configured_output_dir_and_says_what_to_give(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    make_media(tmp_path / "film.mkv", bursts=BURSTS, duration_ms=5000)
    assert (
        cli("transcribe", "--server", funasr_server.url, "--output-dir", "subs", "film.mkv", cwd=tmp_path).returncode
        == 0
    )
    lost = cli("retime", "film.mkv", cwd=tmp_path)
    assert lost.returncode == 1
    assert (
        "error: film.mkv: no sidecar film.funasr.json beside it: transcribe it first (funasr-subs transcribe), "
        "or give the --output-dir it was transcribed with"
    ) in lost.stderr
    found = cli("retime", "--output-dir", "subs", "--max-cps", "12", "film.mkv", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    # the output_dir of the configuration (here the environment) is where transcribe put it, so retime looks there
    configured = cli("retime", "film.mkv", "--fps", "25", cwd=tmp_path, env={"FUNASR_SUBS_OUTPUT_DIR": "subs"})
    assert configured.returncode == 0, configured.stderr
    assert "retimed: film.mkv -> subs/film.zh.srt (2 cues)" in configured.stderr
    assert all(ms % 40 == 0 for ms in starts(tmp_path / "subs" / "film.zh.srt"))


# --- item 8: retime remembers its shift and its own -o files -----------------------------------------------
def test_a_shift_survives_the_next_retime_and_zero_undoes_it(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    make_media(tmp_path / "talk.mp4", bursts=BURSTS, duration_ms=5000)
    assert cli("transcribe", "--server", funasr_server.url, "talk.mp4", cwd=tmp_path).returncode == 0
    srt = tmp_path / "talk.zh.srt"
    original = starts(srt)
    assert cli("retime", "talk.funasr.json", "--shift", "-400", cwd=tmp_path).returncode == 0
    assert starts(srt) == [ms - 400 for ms in original]
    # a later retime with other settings keeps the shift (it is not added again: retime starts from the reply)
    assert cli("retime", "talk.mp4", "--max-cps", "12", cwd=tmp_path).returncode == 0
    assert starts(srt) == [ms - 400 for ms in original]
    assert cli("retime", "talk.mp4", "--shift", "-400", cwd=tmp_path).returncode == 0
    assert starts(srt) == [ms - 400 for ms in original]
    assert cli("retime", "talk.mp4", "--shift", "0", cwd=tmp_path).returncode == 0
    assert starts(srt) == original


def test_retime_rewrites_its_own_output_file_but_never_a_users(tmp_path: Path) -> None:
    reply = tmp_path / "reply.json"
    shutil.copyfile(REPLY, reply)
    first = cli("retime", "reply.json", "-o", "talk.vtt", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "retimed: reply.json -> talk.vtt (1 cue)" in first.stderr  # "1 cue", not "1 cues"
    second = cli("retime", "reply.json", "-o", "talk.vtt", "--max-width", "8", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "欢迎大家来体验达摩院" not in (tmp_path / "talk.vtt").read_text(encoding="utf-8")  # really rewritten
    # -o into another folder, from a media file's sidecar: recorded too
    (tmp_path / "out").mkdir()
    assert cli("retime", "reply.json", "-o", "out/x.srt", cwd=tmp_path).returncode == 0
    assert cli("retime", "reply.json", "-o", "out/x.srt", "--fps", "25", cwd=tmp_path).returncode == 0
    # a file of the user's at that name is still never replaced
    (tmp_path / "mine.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nmine\n", encoding="utf-8")
    refused = cli("retime", "reply.json", "-o", "mine.vtt", cwd=tmp_path)
    assert refused.returncode == 1
    assert "mine.vtt exists and was not written by funasr-subs: use --overwrite" in refused.stderr
    assert "mine" in (tmp_path / "mine.vtt").read_text(encoding="utf-8")
    # -o wrote only the files asked for (and the reply's sidecar that records them)
    assert not (tmp_path / "reply.zh.srt").exists() and (tmp_path / "reply.funasr.json").is_file()


def test_a_reply_beside_another_files_sidecar_leaves_that_sidecar_alone(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    make_media(tmp_path / "talk.mp4", bursts=BURSTS, duration_ms=5000)
    assert cli("transcribe", "--server", funasr_server.url, "talk.mp4", cwd=tmp_path).returncode == 0
    side = (tmp_path / "talk.funasr.json").read_bytes()
    shutil.copyfile(REPLY, tmp_path / "talk.json")
    assert cli("retime", "talk.json", "-o", "other.srt", cwd=tmp_path).returncode == 0
    assert (tmp_path / "talk.funasr.json").read_bytes() == side


def test_a_reply_elsewhere_gets_its_record_where_the_subtitles_go(tmp_path: Path) -> None:
    """retime of a reply kept in an archive, -o into the work folder: the archive is not written to."""
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(REPLY, archive / "reply.json")
    (tmp_path / "work").mkdir()
    for extra in ([], ["--max-cps", "12"]):
        done = cli("retime", "../archive/reply.json", "-o", "talk.srt", *extra, cwd=tmp_path / "work")
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in archive.iterdir()) == ["reply.json"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["reply.funasr.json", "talk.srt"]

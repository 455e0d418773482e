"""A newcomer's first hour, through the installed ``funasr-subs`` command: --output-dir, retime's memory, the
configuration and flag papercuts, and the small things (issue 14)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pysubs2

from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.terminal import run_on_terminal

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
    first = cli("retime", "reply.json", "-o", "talk.vtt", "--layout", "two-line", cwd=tmp_path)  # one cue
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


# --- item 9: configuration, verbosity, options ------------------------------------------------------------
def test_config_says_there_is_no_file_and_shows_watch_and_serve(tmp_path: Path) -> None:
    shown = cli("config", cwd=tmp_path, env={"FUNASR_SUBS_SERVE_TOKEN": "a-secret-token-0123456789"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"# config file: {tmp_path}/no-config-here/funasr-subs/config.toml (not present: built-in defaults)" in lines
    assert "# environment: FUNASR_SUBS_SERVE_TOKEN" in lines
    assert lines.index("[watch]") < lines.index("[serve]")
    assert "settle = 5.0" in lines and "# poll: off (inotify)" in lines and "grace = 30.0" in lines
    assert "hotwords = {}" in lines  # an empty table, written as TOML writes it
    assert 'host = "127.0.0.1"' in lines and "port = 9000" in lines and "# token: set (not shown)" in lines
    assert "a-secret-token" not in shown.stdout


def test_config_names_the_file_it_read_and_its_tables(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(
        'server = "ws://nas:10095"\n[watch]\npoll = 30\n[serve]\nroots = ["/media"]\npath_map = ["/data=/media"]\n',
        encoding="utf-8",
    )
    shown = cli("config", "--lang", "ja", cwd=tmp_path, env={"FUNASR_SUBS_CONFIG": str(config)})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"# config file: {config} (read)" in lines
    assert 'server = "ws://nas:10095"' in lines and 'lang = "ja"' in lines
    assert "poll = 30.0" in lines[lines.index("[watch]") :]
    serve = lines[lines.index("[serve]") :]
    assert 'roots = ["/media"]' in serve and 'path_map = ["/data=/media"]' in serve and "# token: not set" in serve


def test_a_misspelt_variable_is_named_with_the_close_one(tmp_path: Path) -> None:
    shown = cli("config", cwd=tmp_path, env={"FUNASR_SUBS_SERVR": "ws://nas:10095", "FUNASR_SUBS_NOPE": "1"})
    assert shown.returncode == 0
    assert (
        "warning: environment variable FUNASR_SUBS_SERVR is not a funasr-subs setting and is ignored: "
        "did you mean FUNASR_SUBS_SERVER?"
    ) in shown.stderr
    assert "FUNASR_SUBS_NOPE is not a funasr-subs setting and is ignored: 'funasr-subs config' lists" in shown.stderr
    assert 'server = "ws://127.0.0.1:10095"' in shown.stdout  # ignored, as it says
    assert shown.stderr.count("FUNASR_SUBS_SERVR") == 1  # said once, though the settings are read more than once


def test_v_is_info_with_detail_vv_is_debug_q_is_quiet(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    make_media(tmp_path / "a.mkv", bursts=BURSTS, duration_ms=5000)
    common = ["transcribe", "--server", funasr_server.url, "--overwrite", "a.mkv"]
    plain = cli(*common, cwd=tmp_path)
    assert plain.returncode == 0 and plain.stderr.startswith("done: a.mkv -> a.zh.srt (2 cues, "), plain.stderr
    one = cli(*common, "-v", cwd=tmp_path)
    assert one.returncode == 0
    assert " INFO funasr_subs.commands.transcribe: done: a.mkv -> a.zh.srt" in one.stderr
    assert " DEBUG " not in one.stderr, one.stderr
    two = cli(*common, "-vv", cwd=tmp_path)
    assert two.returncode == 0
    assert " DEBUG funasr_subs." in two.stderr, two.stderr
    quiet = cli(*common, "-q", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    failed = cli("transcribe", "-q", "--server", funasr_server.url, "missing.mkv", cwd=tmp_path)
    assert failed.returncode == 1 and "error: missing.mkv: file not found" in failed.stderr


def test_a_typo_gets_the_close_option_and_abbreviations_are_refused(tmp_path: Path) -> None:
    typo = cli("transcribe", "--fromat", "srt", "a.mkv", cwd=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr.startswith("usage: funasr-subs transcribe ")  # the sub-command's usage, not the top level
    assert "funasr-subs transcribe: error: unrecognized arguments: --fromat (did you mean --format?)" in typo.stderr
    short = cli("transcribe", "--form", "srt", "a.mkv", cwd=tmp_path)
    assert short.returncode == 2
    assert "unrecognized arguments: --form (did you mean --format?)" in short.stderr
    retime = cli("retime", "--shfit=-400", "x.json", cwd=tmp_path)
    assert "funasr-subs retime: error: unrecognized arguments: --shfit=-400 (did you mean --shift?)" in retime.stderr
    top = cli("--verison", cwd=tmp_path)
    assert top.returncode == 2 and "unrecognized arguments: --verison (did you mean --version?)" in top.stderr
    assert cli("check", "-vv", "--help", cwd=tmp_path).returncode == 0  # grouped short flags still work


# --- item 11: help texts ----------------------------------------------------------------------------------
def test_help_says_what_a_newcomer_needs(tmp_path: Path) -> None:
    def helptext(*command: str) -> str:
        shown = cli(*command, "--help", cwd=tmp_path)
        assert shown.returncode == 0
        return " ".join(shown.stdout.split())  # argparse wraps lines

    transcribe = helptext("transcribe")
    assert "sidecar <stem>.funasr.json" in transcribe and "funasr-subs retime" in transcribe
    assert "redo files whose subtitles are up to date" in transcribe
    assert "plus ..." not in transcribe and "plus --reply-timeout-ratio x the audio's length" in transcribe
    assert "-q, --quiet only warnings and errors" in transcribe
    assert "--media-server-timeout S seconds for each call to Jellyfin, Emby or Plex (10)" in helptext("serve")
    assert "examples: funasr-subs status" in helptext("status")
    assert "examples: funasr-subs retry" in helptext("retry")
    check = helptext("check")
    assert "--max-cps" in check and "--min-gap" in check
    for unrelated in ("--pause", "--linger", "--fps", "--punctuation"):
        assert unrelated not in check


# --- item 11: --dry-run, failures of deleted files, loopback --------------------------------------------------
def test_transcribe_dry_run_says_what_and_why_and_touches_nothing(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    make_media(tmp_path / "done.mkv", bursts=BURSTS, duration_ms=5000)
    make_media(tmp_path / "new.mp4", bursts=BURSTS, duration_ms=5000)
    make_media(tmp_path / "mine.mkv", bursts=BURSTS, duration_ms=5000)
    assert cli("transcribe", "--server", funasr_server.url, "done.mkv", cwd=tmp_path).returncode == 0
    (tmp_path / "mine.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nmine\n", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    requests = len(funasr_server.requests)
    shown = cli("transcribe", "--dry-run", "--server", funasr_server.url, ".", "gone.mkv", cwd=tmp_path)
    assert shown.returncode == 1  # the missing path, as in a real run
    assert shown.stdout.splitlines() == [
        "would skip: done.mkv: subtitles are up to date (use --overwrite to redo)",
        "would skip: mine.mkv: mine.zh.srt exists and was not written by funasr-subs (use --overwrite to replace it)",
        "would transcribe: new.mp4 -> new.zh.srt",
        "dry run: 1 to transcribe, 2 to skip; nothing was sent or written",
    ]
    assert "error: gone.mkv: file not found" in shown.stderr
    elsewhere = cli("transcribe", "--dry-run", "--output-dir", "subs", "--format", "srt,vtt", "new.mp4", cwd=tmp_path)
    assert "would transcribe: new.mp4 -> subs/new.zh.srt, subs/new.zh.vtt" in elsewhere.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no subtitle, sidecar or output folder made
    assert len(funasr_server.requests) == requests


def _age(path: Path) -> None:
    """Written an hour ago: not a recording still in progress (unreadable young files are tried again, not failed)."""
    old = time.time() - 3600
    os.utime(path, (old, old))


def test_watch_dry_run_lists_what_once_would_do(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    lib, state = tmp_path / "lib", tmp_path / "state"
    lib.mkdir()
    make_media(lib / "a.mkv", bursts=BURSTS, duration_ms=5000)
    (lib / "broken.mkv").write_bytes(b"not media at all" * 100)
    _age(lib / "broken.mkv")
    once = ["watch", "--once", "--settle", "0.2", "--state-dir", str(state), "--server", funasr_server.url]
    assert cli(*once, str(lib), cwd=tmp_path).returncode == 1  # broken.mkv failed
    make_media(lib / "b.mp4", bursts=BURSTS, duration_ms=5000)
    queue = cli("status", "--json", "--state-dir", str(state), cwd=tmp_path).stdout
    shown = cli("watch", "--dry-run", "--state-dir", str(state), str(lib), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"would skip: {lib / 'a.mkv'}: ")
    assert lines[1] == f"would process: {lib / 'b.mp4'}: new or changed"
    assert lines[2].startswith(f"would skip: {lib / 'broken.mkv'}: failed before: ")
    assert lines[2].endswith("(funasr-subs retry to try again)")
    assert lines[3] == "dry run: 1 to process, 2 to skip; nothing was sent, written or queued"
    assert cli("status", "--json", "--state-dir", str(state), cwd=tmp_path).stdout == queue  # nothing queued
    assert not (lib / "b.zh.srt").exists()


def test_a_deleted_failed_file_is_said_to_be_gone_then_forgotten(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    lib, state = tmp_path / "lib", tmp_path / "state"
    lib.mkdir()
    broken = lib / "broken.mkv"
    broken.write_bytes(b"not media at all" * 100)
    _age(broken)
    once = ["watch", "--once", "--settle", "0.2", "--state-dir", str(state), "--server", funasr_server.url]
    assert cli(*once, str(lib), cwd=tmp_path).returncode == 1
    assert f"  {broken}" in cli("status", "--state-dir", str(state), cwd=tmp_path).stdout
    broken.unlink()
    status = cli("status", "--state-dir", str(state), cwd=tmp_path).stdout
    assert f"{broken}  (the file is gone: nothing to retry)" in status
    again = cli(*once, str(lib), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"forgot the failure of {broken}: the file is gone" in again.stderr
    status = cli("status", "--state-dir", str(state), cwd=tmp_path).stdout
    assert "broken.mkv" not in status and "0 failed" in status


def test_quiet_on_a_terminal_shows_no_progress_bars(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    make_media(tmp_path / "a.mkv", bursts=BURSTS, duration_ms=5000)
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")
    code, drawn = run_on_terminal(
        [*argv, "transcribe", "-q", "--server", funasr_server.url, "a.mkv"], cwd=tmp_path, env=env
    )
    assert code == 0
    assert drawn == b""  # no bar, no "done:" line
    assert (tmp_path / "a.zh.srt").is_file()


def test_paths_after_options_are_still_paths(tmp_path: Path) -> None:
    """``check a.srt --max-cps 4 b.srt``: argparse alone leaves b.srt over as "unrecognized"."""
    for name in ("a.srt", "b.srt"):
        (tmp_path / name).write_text("1\n00:00:01,000 --> 00:00:03,000\n锄禾日当午\n", encoding="utf-8")
    shown = cli("check", "a.srt", "--max-cps", "2", "b.srt", cwd=tmp_path)
    assert shown.returncode == 1, shown.stderr  # both checked, both too fast at 2 chars/s
    assert [line.split(":")[0] for line in shown.stdout.splitlines() if not line.startswith(" ")] == ["a.srt", "b.srt"]
    assert "2 chars/s" in shown.stdout

"""The papercuts a newcomer met in the first hour (issue 20), each as the user meets it: the installed command."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from funasr_subs.sync.core import Placement, SyncResult
from tests.docs_support import code_blocks, section
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.sync_data import film, reply_of, speech_tokens, write_subtitle
from tests.test_first_hour import BURSTS, REPLY, cli


def test_our_own_subtitle_beside_the_media_is_no_reason_to_warn_with_output_dir(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    make_media(tmp_path / "bursts.mp4", bursts=BURSTS, duration_ms=5000)
    url = funasr_server.url
    assert cli("transcribe", "--server", url, "bursts.mp4", cwd=tmp_path).returncode == 0  # bursts.zh.srt beside
    done = cli("transcribe", "--server", url, "--output-dir", "subs", "--format", "ass", "bursts.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already a subtitle" not in done.stderr, done.stderr
    assert (tmp_path / "subs" / "bursts.zh.ass").is_file()
    # a subtitle of the user's beside it is still worth the warning
    (tmp_path / "bursts.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n我的字幕\n", encoding="utf-8")
    done = cli("transcribe", "--server", url, "--output-dir", "other", "--format", "ass", "bursts.mp4", cwd=tmp_path)
    assert "bursts.zh.srt next to it is already a subtitle in that language" in done.stderr, done.stderr


def test_sync_lists_no_cue_placed_within_half_a_second_as_least_sure() -> None:
    def placed(doubt_ms: int) -> Placement:
        return Placement(1000, 2000, by_text=False, doubt_ms=doubt_ms)

    result = SyncResult("text", (placed(4), placed(0), placed(2400), placed(499), placed(500)), None, 1.0, 0.0, True)
    assert result.least_sure() == [2, 4]  # 4 ms and 499 ms from the evidence are not in doubt


def _late_subtitle_and_reply(folder: Path) -> tuple[Path, Path]:
    cues = film("news", seed=2)[:40]
    reply = folder / "reply.json"
    reply.write_text(json.dumps(reply_of(speech_tokens(cues, seed=1))), encoding="utf-8")
    return write_subtitle(folder / "film.zh.srt", cues, late_ms=1_000), reply


def test_sync_output_needs_a_subtitle_suffix_and_an_existing_folder(tmp_path: Path) -> None:
    sub, reply = _late_subtitle_and_reply(tmp_path)
    done = cli("sync", str(sub), str(reply), "-o", "out.txt", cwd=tmp_path)  # as retime -o x.txt: refused
    assert done.returncode == 2 and "-o out.txt: the suffix must be .srt, .ass, .ssa or .vtt" in done.stderr
    done = cli("sync", str(sub), str(reply), "-o", "nodir/x.srt", cwd=tmp_path)
    assert done.returncode != 0
    assert "cannot write in nodir: the folder does not exist" in done.stderr, done.stderr
    assert "--output-dir" not in done.stderr  # sync has no such option
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.zh.srt", "reply.json"]  # nothing written


def test_retime_says_why_a_sidecar_appeared_beside_its_output(tmp_path: Path) -> None:
    reply = tmp_path / "reply.json"
    shutil.copy(REPLY, reply)
    first = cli("retime", "reply.json", "-o", "out.srt", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "reply.funasr.json").is_file()
    assert "also wrote reply.funasr.json: it records what was written from reply.json" in first.stderr
    again = cli("retime", "reply.json", "-o", "out.srt", cwd=tmp_path)  # out.srt is ours: replaced, said once
    assert again.returncode == 0, again.stderr
    assert "also wrote" not in again.stderr
    done = cli("retime", "reply.json", "-o", "nodir/x.srt", cwd=tmp_path)
    assert "cannot write in nodir: the folder does not exist" in done.stderr and "--output-dir" not in done.stderr


def test_dry_run_says_a_text_file_named_like_media_would_fail(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_text("not a video, only a name\n", encoding="utf-8")
    make_media(tmp_path / "real.mp4", bursts=BURSTS, duration_ms=5000)
    real = cli("transcribe", "--server", funasr_server.url, "fake.mp4", cwd=tmp_path)
    assert real.returncode == 1
    shown = cli("transcribe", "--dry-run", "fake.mp4", "real.mp4", cwd=tmp_path)
    assert shown.returncode == 1  # as the real run
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("would fail: fake.mp4: ") and lines[0].removeprefix("would fail: ") in real.stderr
    assert lines[1:] == [
        "would transcribe: real.mp4 -> real.zh.srt",
        "dry run: 1 to transcribe, 0 to skip, 1 would fail; nothing was sent or written",
    ]


def test_watch_dry_run_says_a_queued_file_waits(tmp_path: Path) -> None:
    lib, state = tmp_path / "lib", tmp_path / "state"
    lib.mkdir()
    media = make_media(lib / "a.mkv", bursts=BURSTS, duration_ms=5000)
    queued = cli("hook", "--state-dir", str(state), "--root", str(lib), str(media), cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    shown = cli("watch", "--dry-run", "--state-dir", str(state), str(lib), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"would process: {media}: waiting in the queue (queued by hook)" in shown.stdout.splitlines()
    assert "queued in the queue" not in shown.stdout


def test_retry_of_a_missing_file_suggests_no_option_it_lacks(tmp_path: Path) -> None:
    done = cli("retry", "--state-dir", str(tmp_path / "state"), str(tmp_path / "gone.mkv"), cwd=tmp_path)
    assert done.returncode == 1
    assert f"error: {tmp_path / 'gone.mkv'}: no such file: check the path" in done.stderr
    assert "--path-map" not in done.stderr  # retry has no such option


def test_check_of_a_text_file_names_no_library_exception(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("my notes\nbuy milk\n", encoding="utf-8")
    done = cli("check", "notes.txt", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: notes.txt: not a subtitle file that can be read (SRT, ASS or VTT expected): is it a subtitle file?"
    )


def test_status_says_the_server_counts_requests_not_files(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    lib, state = tmp_path / "lib", tmp_path / "state"
    lib.mkdir()
    first = make_media(lib / "a.mkv", bursts=BURSTS, duration_ms=5000)
    make_media(lib / "b.mkv", bursts=BURSTS, duration_ms=5000)
    once = ["watch", "--once", "--settle", "0", "--state-dir", str(state), "--server", funasr_server.url, str(lib)]
    assert cli(*once, cwd=tmp_path).returncode == 0
    (lib / "a.zh.srt").unlink()  # the user deleted it and asks for it again
    assert cli("retry", "--state-dir", str(state), str(first), cwd=tmp_path).returncode == 0
    assert cli(*once, cwd=tmp_path).returncode == 0
    assert len(funasr_server.requests) == 3
    shown = cli("status", "--state-dir", str(state), cwd=tmp_path).stdout
    assert "queue: 0 queued, 0 running, 2 done, 0 failed" in shown, shown
    assert f"{funasr_server.url}  " in shown and "3 requests answered" in shown, shown


def test_a_mistyped_command_gets_the_close_one_suggested(tmp_path: Path) -> None:
    done = cli("transcrbe", "demo.mp4", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "funasr-subs: error: no command 'transcrbe': did you mean 'transcribe'? (funasr-subs --help lists them)"
    )
    assert "did you mean 'status'" in cli("statsu", cwd=tmp_path).stderr
    far = cli("frobnicate", cwd=tmp_path)  # nothing close: argparse's own list of choices
    assert far.returncode == 2 and "invalid choice: 'frobnicate'" in far.stderr and "did you mean" not in far.stderr


REPO = Path(__file__).resolve().parents[1]


def test_the_readme_says_to_leave_out_sudo_as_root() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (install,) = code_blocks(section(readme, "Install"))
    apt = next(line for line in install.splitlines() if "apt-get install" in line)
    if apt.startswith("sudo "):  # a container's root has no sudo: the text before the block says so
        before = section(readme, "Install").split("```")[0]
        assert "as root" in before and "without `sudo`" in before


def test_the_first_runs_files_leave_git_status_clean(tmp_path: Path) -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    names = ["demo.mp4", "demo.zh.srt", "demo.funasr.json", "demo.zh.ass", "demo/talk.mp3", "demo/a b.zh.srt"]
    done = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", *names], capture_output=True, text=True, check=False
    )
    assert sorted(done.stdout.splitlines()) == sorted(names), done.stderr

"""``funasr-subs transcribe`` as a user runs it: the installed command, real files, the real test server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.terminal import run_on_terminal

BURSTS = [(1000, 900), (3500, 1200)]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    full_env["XDG_CONFIG_HOME"] = str(cwd or Path.cwd()) + "/no-config-here"
    full_env.update(env or {})
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120, check=False
    )


def test_folder_with_good_bad_and_missing_files(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    good = make_media(tmp_media_dir / "Ep 1 “quoted” 第一集.mkv", bursts=BURSTS, duration_ms=5000)
    dashed = make_media(tmp_media_dir / "-dash 'x'.mp4", bursts=BURSTS, duration_ms=5000)
    make_corrupt_media(tmp_media_dir / "broken.mkv")
    (tmp_media_dir / "notes.txt").write_text("not media, and not picked up by the folder walk", encoding="utf-8")
    missing = tmp_media_dir / "gone.mkv"
    done = cli("transcribe", "--server", funasr_server.url, "--retries", "0", str(tmp_media_dir), str(missing))
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert any("broken.mkv" in line and "damaged" in line for line in errors), done.stderr
    assert any("gone.mkv" in line and "not found" in line for line in errors), done.stderr
    assert done.stderr.splitlines()[-1] == "2 of 4 file(s) failed"  # the missing path counts too
    for media in (good, dashed):
        srt = media.with_name(media.stem + ".zh.srt")
        assert srt.exists(), done.stderr
        assert abs(pysubs2.load(str(srt))[0].start - 1000) <= 100
    assert not (tmp_media_dir / "broken.zh.srt").exists()
    assert not list(tmp_media_dir.glob("*.tmp")) and not list(tmp_media_dir.glob(".*"))


def test_second_run_skips_and_exits_zero(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=5000)
    first = cli("transcribe", "--server", funasr_server.url, str(tmp_media_dir))
    second = cli("transcribe", "--server", funasr_server.url, str(tmp_media_dir))
    assert first.returncode == 0 and second.returncode == 0
    assert "skipped" in second.stderr and "up to date" in second.stderr
    assert len(funasr_server.requests) == 1


def test_server_down_is_one_clear_line_and_exit_1(tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=5000)
    with FunasrTestServer() as server:
        url = server.url  # a port that is closed once the server stops
    done = cli("transcribe", "--server", url, "--retries", "1", "--retry-backoff", "0.05", str(media))
    assert done.returncode == 1
    line = next(x for x in done.stderr.splitlines() if x.startswith("error:"))
    assert "a.mkv" in line and "connection refused" in line and "--server" in line
    assert "Traceback" not in done.stderr


def test_ffmpeg_missing_says_how_to_install(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=5000)
    broadcast = make_media(tmp_media_dir / "b.ts", bursts=BURSTS, duration_ms=5000)  # MPEG-TS: ffprobe first
    bindir = Path(sys.executable).parent
    for path, tool in ((media, "ffmpeg"), (broadcast, "ffprobe")):
        done = cli("transcribe", "--server", funasr_server.url, str(path), env={"PATH": str(bindir)})
        assert done.returncode == 1
        assert f"{tool} was not found" in done.stderr and "apt-get install ffmpeg" in done.stderr


def test_flags_beat_environment_beat_config_file(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "a.mkv", bursts=BURSTS, duration_ms=5000)
    config = tmp_path / "funasr.toml"
    config.write_text(f'server = "{funasr_server.url}"\nformats = ["ass"]\nlang = "file"\n', encoding="utf-8")
    env = {"FUNASR_SUBS_CONFIG": str(config), "FUNASR_SUBS_LANG": "env"}
    done = cli("transcribe", "--format", "vtt", str(media), env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.env.vtt").exists()  # server from the file, lang from env, format from the flag
    assert not (tmp_path / "a.file.ass").exists()
    shown = cli("config", "--lang", "flag", env=env)
    assert 'lang = "flag"' in shown.stdout and f'server = "{funasr_server.url}"' in shown.stdout


def test_bad_config_and_hotwords_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "hot.txt"
    bad.write_text("达摩院 20\n阿里巴巴 twenty\n", encoding="utf-8")
    done = cli("transcribe", "--hotwords", str(bad), str(tmp_path))
    assert done.returncode == 2
    assert "hot.txt, line 2" in done.stderr and "whole number" in done.stderr
    config = tmp_path / "c.toml"
    config.write_text("sendd = 'pcm'\n", encoding="utf-8")
    done = cli("transcribe", "--config", str(config), str(tmp_path))
    assert done.returncode == 2 and "unknown setting 'sendd'" in done.stderr


def test_hotwords_file_and_flags_reach_the_server_as_a_json_string(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    media = make_media(tmp_path / "a.mkv", bursts=BURSTS, duration_ms=5000)
    words = tmp_path / "hotwords.txt"
    words.write_text("# names\n达摩院 20\n阿里 5\n", encoding="utf-8")
    argv = ["transcribe", "--server", funasr_server.url, "--hotwords", str(words), "--hotword", "阿里=30"]
    code = main([*argv, "--no-itn", str(media)])
    assert code == 0
    request = funasr_server.requests[0]
    assert isinstance(request["hotwords"], str) and request["itn"] is False
    assert json.loads(request["hotwords"]) == {"达摩院": 20, "阿里": 30}


def test_jobs_process_files_in_parallel_connections(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    for i in range(4):
        make_media(tmp_media_dir / f"f{i}.mka", bursts=BURSTS, duration_ms=5000)
    done = cli("transcribe", "--server", funasr_server.url, "-j", "3", str(tmp_media_dir))
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_media_dir.glob("*.zh.srt"))) == 4
    uploads = [c for c in funasr_server.connections if c.frame_sizes]  # the others: the check before the batch
    assert len(uploads) == 4 and len(funasr_server.connections) == 5  # one connection per file
    assert done.stderr.count("done:") == 4
    assert "files:" not in done.stderr and "\r" not in done.stderr  # a pipe gets plain lines, no bars


def test_python_dash_m_works(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "funasr_subs", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("funasr-subs ")


@pytest.mark.parametrize(
    "argv", [["transcribe"], ["transcribe", "--send", "flac", "x"], ["transcribe", "--format", "doc", "x"]]
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert cli(*argv).returncode == 2


def test_check_prints_the_rule_summary_of_what_was_written(
    funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=5000)
    done = cli("transcribe", "--server", funasr_server.url, "--check", "--format", "srt,vtt", str(tmp_media_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("a.zh.srt, a.zh.vtt: ") and "within the rules" in done.stdout


def test_a_terminal_gets_progress_bars(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=5000)
    make_media(tmp_media_dir / "b.mkv", bursts=BURSTS, duration_ms=5000)
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    code, drawn = run_on_terminal([*argv, "transcribe", "--server", funasr_server.url, str(tmp_media_dir)])
    assert code == 0
    screen = drawn.decode("utf-8", "replace")
    assert "files:" in screen and "2/2" in screen  # tqdm's bar across files
    assert "done:" in screen  # log lines still reach the terminal, above the bar


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_job_cancels_at_once_and_leaves_nothing(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, sig: signal.Signals
) -> None:
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        make_media(tmp_media_dir / name, bursts=BURSTS, duration_ms=5000)
    before = sorted(p.name for p in tmp_media_dir.iterdir())
    funasr_server.fault = "hang"  # the server takes the audio and never answers
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    proc = subprocess.Popen(
        [*argv, "transcribe", "-j", "2", "--server", funasr_server.url, "--reply-timeout", "60", str(tmp_media_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert funasr_server.wait_for_requests(2, timeout=30)  # both jobs are waiting for their replies
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)  # cancelled within seconds, not after the 60 s reply timeout
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == before  # no subtitle, sidecar or temp file

"""Progress while the server works: the recognition phase as its own stage, with the time waited and an estimate
from the server's speed on earlier files (kept in the state folder); without a terminal, a line every N seconds."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_subs.progress import ProgressLog, StageClock, clock
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.terminal import run_on_terminal
from tests.test_cli_transcribe import cli


@pytest.fixture
def slow_server() -> Iterator[FunasrTestServer]:
    """Answers 2.5 s after the upload ends, like a server recognising a long file."""
    with FunasrTestServer(slow_seconds=2.5) as server:
        server.fault = "slow"
        yield server


def _progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("progress: ")]


def test_without_a_terminal_a_line_every_n_seconds_then_an_estimate(
    slow_server: FunasrTestServer, tmp_path: Path, own_state_folder: Path
) -> None:
    first = make_media(tmp_path / "first.mkv", bursts=[(1000, 1000)], duration_ms=8000)
    second = make_media(tmp_path / "second.mkv", bursts=[(1000, 1000)], duration_ms=8000)

    done = cli("transcribe", "--server", slow_server.url, "--progress-every", "0.5", str(first))
    assert done.returncode == 0, done.stderr
    lines = _progress_lines(done.stderr)
    assert len(lines) >= 2, done.stderr  # life during the 2.5 s the server works, not only when the file is done
    assert all(str(first) in line and "the server is recognising" in line for line in lines)
    seconds = [int(m.group(1)) for line in lines if (m := re.search(r"recognising: 0:(\d\d) so far", line))]
    assert seconds == sorted(seconds) and seconds[-1] >= 1  # elapsed time goes up
    assert not any("left" in line for line in lines)  # nothing measured yet: no guess

    book = json.loads((own_state_folder / "server-speed.json").read_text(encoding="utf-8"))
    speed = book[slow_server.url]["speed"]
    assert 8 / 4 < speed < 8 / 2.4  # 8 s of audio in about 2.5 s of waiting

    again = cli("transcribe", "--server", slow_server.url, "--progress-every", "0.5", str(second))
    assert again.returncode == 0, again.stderr
    assert any(
        re.search(r"recognising: 0:0\d so far, about 0:0\d left", line) for line in _progress_lines(again.stderr)
    )
    assert (
        json.loads((own_state_folder / "server-speed.json").read_text(encoding="utf-8"))[slow_server.url]["files"] == 2
    )


def test_progress_every_0_prints_no_progress_lines(slow_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "a.mkv", bursts=[(1000, 1000)], duration_ms=5000)
    done = cli("transcribe", "--server", slow_server.url, "--progress-every", "0", str(media))
    assert done.returncode == 0, done.stderr
    assert _progress_lines(done.stderr) == [] and "done:" in done.stderr
    bad = cli("transcribe", "--progress-every", "-1", str(media))
    assert bad.returncode == 2 and "must not be negative" in bad.stderr


def test_a_terminal_shows_the_recognition_stage_with_its_time(slow_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "a.mkv", bursts=[(1000, 1000)], duration_ms=5000)
    exe = shutil.which("funasr-subs")
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    code, drawn = run_on_terminal([*argv, "transcribe", "--server", slow_server.url, str(media)])
    assert code == 0
    screen = drawn.decode("utf-8", "replace")
    assert re.search(r"a\.mkv recognise 0:0[12]", screen), screen[-2000:]
    assert "progress: " not in screen  # the bars replace the log lines


# --- the wording, with a clock the test moves ------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_stage_clock_tells_time_waited_and_left() -> None:
    now = FakeClock()
    stages = StageClock(now)
    stages.update("upload", 0.45)
    now.t += 3
    assert stages.describe() == "uploading 45%: 0:03 so far"
    stages.update("recognise", 0.0)
    now.t += 65
    assert stages.describe() == "the server is recognising: 1:05 so far" and stages.short() == "recognise 1:05"
    stages.update("recognise", 0.65 / 1.0 * 1.0)  # 65 s of an estimated 100 s
    assert stages.describe() == "the server is recognising: 1:05 so far, about 0:35 left"
    assert stages.short() == "recognise 1:05/~1:40"
    stages.update("recognise", 0.99)
    assert "longer than it took for earlier files" in stages.describe()
    assert clock(3723) == "1:02:03" and clock(0.4) == "0:00"


def test_progress_log_waits_n_seconds_between_lines(caplog: pytest.LogCaptureFixture) -> None:
    now = FakeClock()
    report = ProgressLog(Path("film.mkv"), 30, now)
    caplog.set_level("INFO")
    for _ in range(100):  # a call every second for 100 s
        report("recognise", 0.0)
        now.t += 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all(line.startswith("progress: film.mkv: the server is recognising") for line in lines)
    report("recognise", 1.0)  # the reply: not a line of its own
    assert len(caplog.records) == 3


def test_a_damaged_speed_book_is_ignored_and_replaced(tmp_path: Path, own_state_folder: Path) -> None:
    from funasr_subs import speedbook

    own_state_folder.mkdir(parents=True)
    (own_state_folder / "server-speed.json").write_text("{not json", encoding="utf-8")
    assert speedbook.estimate_s("ws://x:1", 60_000) is None
    speedbook.record("ws://x:1", 60_000, 2.0)  # 60 s of audio in 2 s
    assert speedbook.speed("ws://x:1") == 30.0 and speedbook.estimate_s("ws://x:1", 120_000) == 4.0
    speedbook.record("ws://x:1", 60_000, 6.0)  # slower now: the average moves half way
    assert speedbook.speed("ws://x:1") == 20.0
    speedbook.record("ws://x:1", 1_000, 9.0)  # too short to tell: not recorded
    assert speedbook.speed("ws://x:1") == 20.0
    assert [p.name for p in own_state_folder.iterdir()] == ["server-speed.json"]  # no temp file left


def test_the_watch_table_sets_progress_every(tmp_path: Path) -> None:
    from funasr_subs.commands.watch import watch_table
    from funasr_subs.errors import ConfigError

    config = tmp_path / "config.toml"
    config.write_text("[watch]\nprogress-every = 12.5\n", encoding="utf-8")
    assert watch_table(config) == {"progress_every": 12.5}
    config.write_text("[watch]\nprogress_every = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="progress_every"):
        watch_table(config)

"""``funasr-subs watch``/``status``/``retry`` through ``main([...])``, against the real test server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from funasr_subs.cli import main
from funasr_subs.errors import ConfigError
from funasr_subs.watch.daemon import WatchDaemon
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media
from tests.watch_support import job, options, running, server_settings


def _watch_once(root: Path, state: Path, url: str, *extra: str) -> int:
    argv = ["watch", "--once", "--settle", "0.2", "--state-dir", str(state), "--server", url, "--retries", "0"]
    return main([*argv, "--config", str(root.parent / "none.toml"), *extra, str(root)])


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    return root, state


def test_status_lists_failures_and_results_and_retry_requeues(
    library: tuple[Path, Path], funasr_server: FunasrTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root, state = library
    make_media(root / "good.mkv", [(500, 800)], 2000)
    broken = make_corrupt_media(root / "broken.mp4", "header")
    old = time.time() - 3600  # written an hour ago: not a recording still in progress (those are tried again)
    os.utime(broken, (old, old))
    assert _watch_once(root, state, funasr_server.url, "--format", "srt,vtt") == 1
    capsys.readouterr()

    assert main(["status", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "daemon: not running" in out
    assert "queue: 0 queued, 0 running, 1 done, 1 failed" in out
    assert "funasr-subs retry" in out and str(root / "broken.mp4") in out
    assert f"{root / 'good.mkv'} -> good.zh.srt, good.zh.vtt" in out

    assert main(["status", "--state-dir", str(state), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 1}
    assert data["failures"][0]["path"] == str(root / "broken.mp4") and "broken.mp4" in data["failures"][0]["error"]
    assert data["state_dir"] == str(state) and data["daemon_alive"] is False

    assert main(["retry", "--state-dir", str(state)]) == 0
    err = capsys.readouterr().err
    assert "queued again: 1 file(s)" in err and "no watch daemon is running" in err
    record = job(state, root / "broken.mp4")
    assert record is not None and record.state == "queued"

    (root / "good.zh.srt").unlink()  # the user wants it redone: retry PATH forces it
    assert main(["retry", "--state-dir", str(state), str(root / "good.mkv"), str(root / "nope.mkv")]) == 1
    err = capsys.readouterr().err
    assert "queued again: 1 file(s)" in err and "nope.mkv" in err
    requests = len(funasr_server.requests)
    assert _watch_once(root, state, funasr_server.url, "--format", "srt,vtt") == 1  # broken fails again
    assert [r["wav_name"] for r in funasr_server.requests[requests:]] == ["good"]
    assert (root / "good.zh.srt").exists()


def test_status_without_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path / "never")]) == 0
    assert "has not run with this --state-dir" in capsys.readouterr().out
    assert not (tmp_path / "never").exists()


def test_watch_argument_errors_are_one_clear_line(
    library: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, state = library
    assert main(["watch", "--state-dir", str(state)]) == 2
    assert "give at least one folder to watch" in capsys.readouterr().err
    assert main(["watch", "--once", "--state-dir", str(state), str(root / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing does not exist" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["watch", "--settle", "-1", str(root)])
    assert "must not be negative" in capsys.readouterr().err


def test_a_second_daemon_on_the_same_state_is_refused(
    library: tuple[Path, Path], funasr_server: FunasrTestServer
) -> None:
    root, state = library
    settings = server_settings(funasr_server.url)
    refused = pytest.raises(ConfigError, match=r"another watch daemon \(pid \d+\) is using the state folder")
    with running(WatchDaemon(options((root,), state), settings)), refused:
        WatchDaemon(options((root,), state), settings).run()


def test_custom_suffixes(library: tuple[Path, Path], funasr_server: FunasrTestServer) -> None:
    root, state = library
    make_media(root / "a.mkv", [(500, 800)], 2000)
    make_media(root / "b.custom", [(500, 800)], 2000, container="matroska")
    assert _watch_once(root, state, funasr_server.url, "--suffixes", "custom") == 0
    assert [r["wav_name"] for r in funasr_server.requests] == ["b"]


def test_watch_table_in_the_config_file(library: tuple[Path, Path], funasr_server: FunasrTestServer) -> None:
    root, state = library
    make_media(root / "a.mkv", [(500, 800)], 2000)
    make_media(root / "b.custom", [(500, 800)], 2000, container="matroska")
    config = root.parent / "config.toml"
    config.write_text(f'[watch]\nsuffixes = ["custom"]\nsettle = 0.1\nstate-dir = "{state}"\n', encoding="utf-8")
    argv = ["watch", "--once", "--config", str(config), "--server", funasr_server.url, "--retries", "0", str(root)]
    assert main(argv) == 0
    assert [r["wav_name"] for r in funasr_server.requests] == ["b"]
    assert job(state, root / "b.custom") is not None  # the table's state-dir was used
    config.write_text("[watch]\nsetle = 1\n", encoding="utf-8")
    assert main(argv) == 2


def test_status_reads_the_state_dir_the_config_file_names(
    library: tuple[Path, Path], funasr_server: FunasrTestServer, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    root, state = library
    make_media(root / "a.mkv", bursts=[(300, 500)], duration_ms=1500)
    assert _watch_once(root, state, funasr_server.url) == 0
    config = root.parent / "config.toml"
    config.write_text(f'[watch]\nstate_dir = "{state}"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"state: {state}" in out and "1 done" in out
    serve_only = root.parent / "serve.toml"  # the hook's table, when [watch] names none
    serve_only.write_text(f'[serve]\nstate_dir = "{state}"\n', encoding="utf-8")
    monkeypatch.setenv("FUNASR_SUBS_CONFIG", str(serve_only))
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state_dir"] == str(state)

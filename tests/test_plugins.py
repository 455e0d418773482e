"""Plugin events: real entry points (a test distribution on sys.path), loading once, failures logged and skipped."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from funasr_subs import plugins
from funasr_subs.errors import ServerUnavailableError
from funasr_subs.model import Cue
from funasr_subs.pipeline import Result
from tests.plugin_pkg.install import plugins_on_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def testplugin(tmp_path: Path) -> Iterator[ModuleType]:
    """The test plugin distribution installed for this test; yields its (recorder) module once loaded."""
    with plugins_on_path(tmp_path / "site"):
        plugins.load_plugins()
        yield sys.modules["funasr_subs_testplugin"]


def _result(tmp_path: Path) -> Result:
    media = tmp_path / "film.mkv"
    return Result(
        media=media,
        status="done",
        written=(tmp_path / "film.zh.srt",),
        sidecar=tmp_path / "film.funasr.json",
        cues=(Cue(1000, 2000, ("你好",)),),
    )


def test_entry_point_plugins_are_discovered_by_name(testplugin: ModuleType) -> None:
    names = [p.name for p in plugins.load_plugins()]
    # usable ones only: broken_import and no_hooks are skipped; "log" is the built-in action of funasr-subs itself
    assert {"recorder", "recorder_class", "raising"} <= set(names)
    assert "broken_import" not in names and "no_hooks" not in names


def test_written_event_reaches_module_and_class_plugins(testplugin: ModuleType, tmp_path: Path) -> None:
    result = _result(tmp_path)
    plugins.notify_written(result)
    events = [(e["plugin"], e["event"], e["media"]) for e in testplugin.EVENTS]
    assert ("recorder", "written", str(result.media)) in events
    assert ("recorder_class", "written", str(result.media)) in events
    recorded = next(e for e in testplugin.EVENTS if e["plugin"] == "recorder")
    assert recorded["written"] == [str(tmp_path / "film.zh.srt")] and recorded["cues"] == 1


def test_failure_event_carries_path_and_error(testplugin: ModuleType, tmp_path: Path) -> None:
    plugins.notify_failed(tmp_path / "film.mkv", ServerUnavailableError("no server"))
    events = testplugin.EVENTS
    assert events == [
        {
            "plugin": "recorder",
            "event": "failed",
            "media": str(tmp_path / "film.mkv"),
            "error": "ServerUnavailableError",
        }
    ]


def test_broken_plugins_are_logged_with_name_and_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="funasr_subs.plugins")
    with plugins_on_path(tmp_path / "site"):
        plugins.load_plugins()
        messages = [r.getMessage() for r in caplog.records]
    broken = [m for m in messages if "'broken_import'" in m]
    assert len(broken) == 1
    assert "ModuleNotFoundError" in broken[0] and "funasr_subs_testplugin_missing_dependency" in broken[0]
    assert any("'no_hooks'" in m and "on_subtitle_written" in m for m in messages)


def test_raising_hook_is_logged_and_the_others_still_run(
    testplugin: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="funasr_subs.plugins")
    plugins.notify_written(_result(tmp_path))  # must not raise
    plugins.notify_failed(tmp_path / "x.mkv", OSError("disk full"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("'raising'" in m and "RuntimeError: chat server unreachable" in m for m in messages)
    assert any("'raising'" in m and "ValueError: bad plugin config" in m for m in messages)
    # plugins run in name order, so "raising" ran before both recorders: they still got every event
    assert {(e["plugin"], e["event"]) for e in testplugin.EVENTS} == {
        ("recorder", "written"),
        ("recorder_class", "written"),
        ("recorder", "failed"),
    }


def test_plugins_load_once_even_from_many_threads(tmp_path: Path) -> None:
    with plugins_on_path(tmp_path / "site"):
        barrier = threading.Barrier(8)
        seen: list[tuple[plugins.Plugin, ...]] = []

        def load() -> None:
            barrier.wait()
            seen.append(plugins.load_plugins())

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 8 and all(s is seen[0] for s in seen)
        module = sys.modules["funasr_subs_testplugin"]
        assert len(module.INSTANCES) == 1  # the class entry point was instantiated once
        plugins.notify_written(_result(tmp_path))
        plugins.notify_written(_result(tmp_path))
        assert sys.modules["funasr_subs_testplugin"] is module  # not re-imported per event
        assert len(module.INSTANCES) == 1


def test_reset_rediscovers_new_plugins(tmp_path: Path) -> None:
    plugins.reset_plugins()
    before = {p.name for p in plugins.load_plugins()}
    assert "recorder" not in before
    with plugins_on_path(tmp_path / "site"):
        assert "recorder" in {p.name for p in plugins.load_plugins()}
    assert "recorder" not in {p.name for p in plugins.load_plugins()}


def test_no_plugins_at_all_is_fine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    plugins.reset_plugins()
    try:
        assert plugins.load_plugins() == ()
        plugins.notify_written(_result(tmp_path))
    finally:
        plugins.reset_plugins()


def test_builtin_log_action_is_declared_and_logs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["entry-points"][plugins.GROUP]
    assert declared["log"] == "funasr_subs.actions.log"
    ep = importlib.metadata.EntryPoint(name="log", value=declared["log"], group=plugins.GROUP)
    plugin = plugins.load_one(ep)
    assert plugin is not None and plugin.on_subtitle_written is not None and plugin.on_failure is not None
    caplog.set_level(logging.DEBUG, logger="funasr_subs.actions")
    plugin.on_subtitle_written(_result(tmp_path))
    plugin.on_failure(tmp_path / "bad.mkv", ServerUnavailableError("no FunASR server", path=tmp_path / "bad.mkv"))
    lines = [r.getMessage() for r in caplog.records if r.name == "funasr_subs.actions.log"]
    assert lines == [
        f"written {tmp_path / 'film.mkv'}: film.zh.srt (1 cue, 0.0 s)",
        f"failed {tmp_path / 'bad.mkv'}: no FunASR server",
    ]


def test_builtin_log_action_is_installed() -> None:
    """The installed metadata (pip install -e .) carries the built-in action, so every job loads it."""
    names = {ep.name for ep in importlib.metadata.entry_points(group=plugins.GROUP)}
    assert "log" in names

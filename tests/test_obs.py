"""The OBS script, loaded from plugins/obs as OBS loads it, with a small fake ``obspython``; real funasr-subs runs."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.funasr_server import FunasrTestServer
from tests.media import make_media

SCRIPT = Path(__file__).resolve().parent.parent / "plugins" / "obs" / "funasr_subs_obs.py"
RECORDING_STOPPED = 8  # the value in OBS's obs-frontend-api.h; any distinct int works for the fake
LOG_ERROR, LOG_WARNING, LOG_INFO = 100, 200, 300


class FakeData:
    """An ``obs_data_t``: user values over defaults."""

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}
        self.values: dict[str, Any] = {}

    def get(self, key: str, empty: Any) -> Any:
        return self.values.get(key, self.defaults.get(key, empty))


class FakeObs(ModuleType):
    """The few ``obspython`` calls the script makes, recording what it did."""

    OBS_FRONTEND_EVENT_RECORDING_STARTED = 7
    OBS_FRONTEND_EVENT_RECORDING_STOPPED = RECORDING_STOPPED
    OBS_TEXT_DEFAULT = 0
    OBS_PATH_FILE = 0
    LOG_ERROR = LOG_ERROR
    LOG_WARNING = LOG_WARNING
    LOG_INFO = LOG_INFO

    def __init__(self) -> None:
        super().__init__("obspython")
        self.callbacks: list[Callable[[int], None]] = []
        self.timers: list[tuple[Callable[[], None], int]] = []
        self.log: list[tuple[int, str]] = []
        self.properties: dict[str, str] = {}
        self.last_recording: str | None = None
        self.host_thread = threading.current_thread()

    # frontend
    def obs_frontend_add_event_callback(self, cb: Callable[[int], None]) -> None:
        self.callbacks.append(cb)

    def obs_frontend_remove_event_callback(self, cb: Callable[[int], None]) -> None:
        self.callbacks.remove(cb)

    def obs_frontend_get_last_recording(self) -> str | None:
        return self.last_recording

    # timers and log
    def timer_add(self, cb: Callable[[], None], ms: int) -> None:
        self.timers.append((cb, ms))

    def timer_remove(self, cb: Callable[[], None]) -> None:
        self.timers = [(c, ms) for c, ms in self.timers if c is not cb]

    def script_log(self, level: int, message: str) -> None:
        # OBS's script log is only safe from OBS's own threads (the timer); the script must never call it elsewhere
        assert threading.current_thread() is self.host_thread, "script_log called from a background thread"
        self.log.append((level, message))

    # properties and data
    def obs_properties_create(self) -> dict[str, str]:
        return self.properties

    def _add(self, props: dict[str, str], name: str, kind: str) -> str:
        props[name] = kind
        return name

    def obs_properties_add_text(self, props: dict[str, str], name: str, desc: str, kind: int) -> str:
        return self._add(props, name, "text")

    def obs_properties_add_bool(self, props: dict[str, str], name: str, desc: str) -> str:
        return self._add(props, name, "bool")

    def obs_properties_add_path(
        self, props: dict[str, str], name: str, desc: str, kind: int, flt: str, default: str
    ) -> str:
        return self._add(props, name, "path")

    def obs_data_set_default_string(self, data: FakeData, key: str, value: str) -> None:
        data.defaults[key] = value

    def obs_data_set_default_bool(self, data: FakeData, key: str, value: bool) -> None:
        data.defaults[key] = value

    def obs_data_get_string(self, data: FakeData, key: str) -> str:
        return str(data.get(key, ""))

    def obs_data_get_bool(self, data: FakeData, key: str) -> bool:
        return bool(data.get(key, False))

    # driving it like OBS does
    def fire(self, event: int) -> None:
        for cb in list(self.callbacks):
            cb(event)

    def run_timers(self) -> None:
        for cb, _ in list(self.timers):
            cb()


class Host:
    """OBS with the script loaded: ``script_defaults`` → ``script_load`` → ``script_update``."""

    def __init__(self, obs: FakeObs, script: Any, data: FakeData) -> None:
        self.obs, self.script, self.data = obs, script, data

    def stop_recording(self, path: Path | None) -> None:
        self.obs.last_recording = None if path is None else str(path)
        self.obs.fire(RECORDING_STOPPED)

    def settle(self, timeout: float = 120) -> list[tuple[int, str]]:
        """Wait for the worker (an event, not a sleep), then let OBS's timer write the queued log lines."""
        assert self.script.wait_idle(timeout), "the OBS worker did not finish"
        self.obs.run_timers()
        return self.obs.log


def console_script() -> str:
    path = Path(sysconfig.get_path("scripts")) / ("funasr-subs.exe" if os.name == "nt" else "funasr-subs")
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the project first (pip install -e '.[test]')")
    return str(path)


def load_script(monkeypatch: pytest.MonkeyPatch, obs: FakeObs) -> Any:
    monkeypatch.setitem(sys.modules, "obspython", obs)
    spec = importlib.util.spec_from_file_location("funasr_subs_obs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "funasr_subs_obs", module)  # OBS imports it as a module, by its file name
    spec.loader.exec_module(module)
    module.POLL_S = 0.05  # the file-is-final check, sped up; its logic is tested on its own below
    module.STABLE_POLLS = 2
    return module


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, funasr_server: FunasrTestServer, tmp_path: Path) -> Iterator[Host]:
    monkeypatch.setenv("FUNASR_SUBS_RETRIES", "0")  # inherited by the funasr-subs child: fail fast when refused
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # never the developer's own config file
    monkeypatch.delenv("FUNASR_SUBS_CONFIG", raising=False)
    obs = FakeObs()
    script = load_script(monkeypatch, obs)
    data = FakeData()
    script.script_defaults(data)
    data.values.update({"server": funasr_server.url, "executable": console_script(), "formats": "srt, vtt"})
    script.script_load(data)
    script.script_update(data)
    h = Host(obs, script, data)
    yield h
    script.script_unload()


def test_recording_stopped_makes_subtitles_in_the_background(host: Host, tmp_media_dir: Path) -> None:
    recording = make_media(tmp_media_dir / "2024-05-01 20-00-00.mkv", bursts=[(1000, 1200)], duration_ms=3000)
    started = time.monotonic()
    host.stop_recording(recording)
    returned = time.monotonic() - started
    assert host.script.wait_idle(0) is False  # the event handler returned while the job was still running
    assert returned < 0.5
    log = host.settle()
    srt = tmp_media_dir / "2024-05-01 20-00-00.zh.srt"
    vtt = tmp_media_dir / "2024-05-01 20-00-00.zh.vtt"
    assert srt.is_file() and vtt.is_file()
    assert "00:00:01," in srt.read_text(encoding="utf-8")
    assert [lvl for lvl, _ in log] == [LOG_INFO, LOG_INFO]
    assert log[-1][1].startswith(f"{recording.name}: wrote {srt.name}, {vtt.name} (1 cue) in ")


def test_script_properties_cover_the_settings(host: Host) -> None:
    props = host.script.script_properties()
    assert props == {
        "enabled": "bool",
        "server": "text",
        "insecure": "bool",
        "formats": "text",
        "language": "text",
        "hotwords_file": "path",
        "executable": "path",
    }
    assert set(host.data.defaults) == set(props)


def test_language_and_hotwords_reach_the_engine(
    host: Host, funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    hotwords = tmp_media_dir / "names.txt"
    hotwords.write_text("达摩院 20\n", encoding="utf-8")
    host.data.values.update({"language": "zh-CN", "formats": "ass", "hotwords_file": str(hotwords)})
    host.script.script_update(host.data)
    recording = make_media(tmp_media_dir / "rec.mp4")
    host.stop_recording(recording)
    host.settle()
    assert (tmp_media_dir / "rec.zh-CN.ass").is_file()
    assert funasr_server.requests[0]["hotwords"] == '{"达摩院": 20}'


def test_server_down_is_one_readable_error_line(
    host: Host, funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    funasr_server.fault = "refuse"
    recording = make_media(tmp_media_dir / "rec.mkv")
    host.stop_recording(recording)
    errors = [msg for lvl, msg in host.settle() if lvl == LOG_ERROR]
    assert len(errors) == 1
    assert "\n" not in errors[0]
    assert errors[0].startswith(f"{recording}: no FunASR server at {funasr_server.url}")
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == ["rec.mkv"]


def test_missing_program_says_what_to_do(host: Host, tmp_media_dir: Path) -> None:
    host.data.values["executable"] = str(tmp_media_dir / "no-such-funasr-subs")
    host.script.script_update(host.data)
    recording = make_media(tmp_media_dir / "rec.mkv")
    host.stop_recording(recording)
    errors = [msg for lvl, msg in host.settle() if lvl == LOG_ERROR]
    assert len(errors) == 1 and "funasr-subs program not found" in errors[0] and "settings" in errors[0]


def test_program_folder_is_accepted(host: Host, tmp_media_dir: Path) -> None:
    """Pointing the setting at the Python environment's folder (or its bin/) works too."""
    host.data.values["executable"] = str(Path(console_script()).parent)
    host.script.script_update(host.data)
    host.stop_recording(make_media(tmp_media_dir / "rec.mkv"))
    host.settle()
    assert (tmp_media_dir / "rec.zh.srt").is_file()


def test_disabled_script_ignores_recordings(host: Host, tmp_media_dir: Path) -> None:
    host.data.values["enabled"] = False
    host.script.script_update(host.data)
    recording = make_media(tmp_media_dir / "rec.mkv")
    host.stop_recording(recording)
    assert host.settle(5) == []
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == ["rec.mkv"]


def test_other_events_and_no_file_are_ignored(host: Host) -> None:
    host.obs.fire(host.obs.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    host.stop_recording(None)
    log = host.settle(5)
    assert [lvl for lvl, _ in log] == [LOG_WARNING] and "no file" in log[0][1]


def test_unload_stops_a_waiting_job_and_removes_hooks(host: Host, tmp_media_dir: Path) -> None:
    host.stop_recording(tmp_media_dir / "still-being-written.mkv")  # never appears: the job keeps waiting
    worker = host.script._worker
    assert worker is not None and host.script.wait_idle(0) is False
    started = time.monotonic()
    host.script.script_unload()
    assert time.monotonic() - started < 3
    assert not worker._thread.is_alive()
    assert host.obs.callbacks == [] and host.obs.timers == []
    assert all(lvl != LOG_ERROR for lvl, _ in host.obs.log)
    host.script.script_load(host.data)  # the fixture's unload needs a loaded script; OBS reloads the same way


class GrowingFile:
    """A stop event whose ``wait`` (the pause between checks) appends the next chunk: a recording still growing."""

    def __init__(self, path: Path, chunks: list[bytes]) -> None:
        self.path, self.chunks, self.waits = path, list(chunks), 0

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        if self.chunks:
            with open(self.path, "ab") as fh:
                fh.write(self.chunks.pop(0))
        return False

    def is_set(self) -> bool:
        return False


def test_wait_until_final_waits_for_the_last_write(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = load_script(monkeypatch, FakeObs())
    path = tmp_path / "rec.mkv"
    growing = GrowingFile(path, [b"a" * 10, b"b" * 10, b"", b"c" * 10])  # one quiet pause mid-way, as OBS has
    path.write_bytes(b"")
    assert script.wait_until_final(str(path), growing, poll_s=0, stable_polls=2, timeout_s=60)
    assert path.stat().st_size == 30 and growing.chunks == []
    assert growing.waits == 4 + 2  # every chunk, then two unchanged checks


def test_wait_until_final_gives_up_on_a_missing_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = load_script(monkeypatch, FakeObs())
    stop = threading.Event()
    assert script.wait_until_final(str(tmp_path / "missing.mkv"), stop, poll_s=0.01, timeout_s=0.1) is False
    stop.set()
    assert script.wait_until_final(str(tmp_path / "missing.mkv"), stop, poll_s=60, timeout_s=600) is False


def test_command_is_an_argv_list_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script(monkeypatch, FakeObs())
    cfg = script.Config(server="wss://nas:10095", insecure=True, formats=" srt , ass ", language="", hotwords_file="")
    media = "/rec/it's; rm -rf ~ $(x).mkv"
    assert script.build_command("/bin/funasr-subs", cfg, media) == [
        "/bin/funasr-subs",
        "transcribe",
        "--server",
        "wss://nas:10095",
        "--insecure",
        "--format",
        "srt,ass",
        "--lang",
        "",
        media,
    ]


def test_script_grammar_is_python_38() -> None:
    """OBS may embed an older Python than ours: the script must parse as Python 3.8."""
    ast.parse(SCRIPT.read_text(encoding="utf-8"), feature_version=(3, 8))


def test_error_line_picks_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script(monkeypatch, FakeObs())
    out = "done: a\nerror: rec.mkv: no FunASR server at ws://x (connection refused)\n1 of 1 file(s) failed\n"
    assert script.error_line(out) == "rec.mkv: no FunASR server at ws://x (connection refused)"
    assert script.error_line("funasr-subs: error: bad flag\n") == "bad flag"
    assert script.error_line("Traceback\nKeyError: 1\n") == "KeyError: 1"

"""The public Python API end to end: real media, real ffmpeg, the real websocket test server, real plugins."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import funasr_subs
from funasr_subs import (
    CancelledError,
    Cue,
    ProtocolError,
    Result,
    ServerUnavailableError,
    Settings,
    build_cues,
    generate_subtitles,
)
from tests.funasr_server import FunasrTestServer, build_reply, dump_reply, sentences_for
from tests.media import make_media
from tests.plugin_pkg.install import install_into, plugins_on_path

STAGES = ["probe", "upload", "recognise", "write"]


@pytest.fixture
def testplugin(tmp_path: Path) -> Iterator[ModuleType]:
    """The test plugins installed for this test (loaded lazily by the job, as in real use); yields the recorder."""
    with plugins_on_path(tmp_path / "site"):
        yield importlib.import_module("funasr_subs_testplugin")


def _settings(server: FunasrTestServer, **changes: object) -> Settings:
    return Settings(server=server.url, retries=0, **changes)  # type: ignore[arg-type]


def test_generate_subtitles_writes_timed_subtitles(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "talk one.mp4", bursts=[(1000, 1000), (3000, 1400)], duration_ms=5000)
    result = generate_subtitles(media, _settings(funasr_server, formats=("srt", "vtt")))
    assert isinstance(result, Result) and result.status == "done"
    assert result.written == (tmp_media_dir / "talk one.zh.srt", tmp_media_dir / "talk one.zh.vtt")
    assert result.sidecar is not None and result.sidecar.is_file()
    assert len(result.cues) == 2
    first, second = result.cues
    assert abs(first.start_ms - 1000) <= 60 and abs(second.start_ms - 3000) <= 60  # cues start with the speech
    srt = result.written[0].read_text(encoding="utf-8")
    assert first.lines[0] in srt and "00:00:01," in srt
    assert result.written[1].read_text(encoding="utf-8").startswith("WEBVTT")
    assert result.timings.total_s > 0 and result.timings.transcribe_s > 0


def test_second_run_is_skipped(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    settings = _settings(funasr_server)
    assert generate_subtitles(media, settings).status == "done"
    again = generate_subtitles(media, settings)
    assert again.status == "skipped" and "up to date" in again.reason
    assert len(funasr_server.requests) == 1


def test_progress_reports_stages_in_order(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "clip.mkv", bursts=[(500, 1500)], duration_ms=3000)
    calls: list[tuple[str, float]] = []
    generate_subtitles(media, _settings(funasr_server), progress=lambda s, f: calls.append((s, f)))
    stages = [s for i, (s, _) in enumerate(calls) if i == 0 or calls[i - 1][0] != s]
    assert stages == STAGES  # each stage once, in pipeline order, never going back
    assert all(0.0 <= f <= 1.0 for _, f in calls)
    for stage in STAGES:
        fractions = [f for s, f in calls if s == stage]
        assert fractions == sorted(fractions), f"{stage} went backwards: {fractions}"
    assert calls[-1] == ("write", 1.0)


def test_raising_progress_callback_does_not_break_the_run(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    calls: list[str] = []

    def bad(stage: str, fraction: float) -> None:
        calls.append(stage)
        raise ZeroDivisionError("callback bug")

    result = generate_subtitles(media, _settings(funasr_server), progress=bad)
    assert result.status == "done" and result.written[0].is_file()
    assert calls  # it was called (and then ignored)
    assert any("progress callback" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _only_media(folder: Path, media: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [media.name], "a cancelled job must leave no files"


def test_cancel_while_waiting_for_the_server_leaves_no_files(
    funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    funasr_server.fault = "hang"  # the server never answers: only the cancel can end this job quickly
    cancel = threading.Event()

    def cancel_once_the_server_has_the_file() -> None:
        if funasr_server.wait_until(lambda: bool(funasr_server.connections) and funasr_server.requests != []):
            cancel.set()

    helper = threading.Thread(target=cancel_once_the_server_has_the_file)
    helper.start()
    try:
        with pytest.raises(CancelledError) as info:
            generate_subtitles(media, _settings(funasr_server), cancel=cancel)
    finally:
        cancel.set()
        helper.join()
    assert info.value.path == media
    _only_media(tmp_media_dir, media)


def test_cancel_after_recognition_writes_nothing(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    cancel = threading.Event()

    def progress(stage: str, fraction: float) -> None:
        if stage == "recognise":
            cancel.set()

    with pytest.raises(CancelledError):
        generate_subtitles(media, _settings(funasr_server), progress=progress, cancel=cancel)
    assert len(funasr_server.replies) == 1  # the server did answer; the job still wrote nothing
    _only_media(tmp_media_dir, media)


def test_cancel_before_start_contacts_no_server(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        generate_subtitles(media, _settings(funasr_server), cancel=cancel)
    assert funasr_server.connections == []
    _only_media(tmp_media_dir, media)


def test_entry_point_plugin_receives_written_event(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, testplugin: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    result = generate_subtitles(media, _settings(funasr_server))
    assert result.status == "done"
    written = [e for e in testplugin.EVENTS if e["event"] == "written"]
    assert {e["plugin"] for e in written} == {"recorder", "recorder_class"}
    recorder = next(e for e in written if e["plugin"] == "recorder")
    assert recorder == {
        "plugin": "recorder",
        "event": "written",
        "media": str(media),
        "written": [str(p) for p in result.written],
        "cues": len(result.cues),
    }
    # the broken plugins were skipped with their reason; the job did not notice
    warnings = [r.getMessage() for r in caplog.records if r.name == "funasr_subs.plugins"]
    assert any("'broken_import'" in m and "No module named" in m for m in warnings)
    assert any("'raising'" in m and "chat server unreachable" in m for m in warnings)


def test_entry_point_plugin_receives_failure_event(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, testplugin: ModuleType
) -> None:
    media = make_media(tmp_media_dir / "clip.mkv")
    funasr_server.fault = "refuse"
    with pytest.raises(ServerUnavailableError):
        generate_subtitles(media, _settings(funasr_server))
    assert [
        {"plugin": "recorder", "event": "failed", "media": str(media), "error": "ServerUnavailableError"}
    ] == testplugin.EVENTS
    _only_media(tmp_media_dir, media)


def _console_script() -> str:
    name = "funasr-subs.exe" if os.name == "nt" else "funasr-subs"
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the project first (pip install -e '.[test]')")
    return str(path)


def test_installed_command_loads_entry_point_plugins(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    site = install_into(tmp_path / "site")
    events = tmp_path / "events.jsonl"
    media = make_media(tmp_path / "clip.mkv")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["FUNASR_SUBS_TESTPLUGIN_EVENTS"] = str(events)
    proc = subprocess.run(
        [_console_script(), "transcribe", "--server", funasr_server.url, str(media)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    assert {(e["plugin"], e["event"], e["media"]) for e in lines} == {
        ("recorder", "written", str(media)),
        ("recorder_class", "written", str(media)),
    }
    assert "'broken_import'" in proc.stderr  # the skip reason reaches the user's log, once
    assert proc.stderr.count("'broken_import'") == 1


# --- build_cues: re-timing a saved reply ----------------------------------------------------------------------
def _reply() -> dict[str, object]:
    return build_reply("clip", sentences_for([(1000, 2000), (4000, 6600)]))  # (start_ms, end_ms) spans


def test_build_cues_from_dict_and_text_agree() -> None:
    reply = _reply()
    from_dict = build_cues(reply, Settings())
    from_text = build_cues(dump_reply(reply), Settings())
    assert from_dict == from_text
    assert all(isinstance(c, Cue) for c in from_dict)
    assert from_dict[0].start_ms == 1000
    text = "".join("".join(c.lines) for c in from_dict)
    # the default shows an in-line ，。 as a space and drops it at a line end
    assert text.replace(" ", "") == str(reply["text"]).replace("，", "").replace("。", "")


def test_build_cues_uses_the_settings_and_offset() -> None:
    reply = _reply()
    default = build_cues(reply, Settings())
    narrow = build_cues(reply, Settings(max_width=4, max_lines=1))
    assert len(narrow) > len(default)
    assert all(len(line) <= 4 for c in narrow for line in c.lines)
    shifted = build_cues(reply, Settings(), offset_ms=500)
    assert [c.start_ms for c in shifted] == [c.start_ms + 500 for c in default]


def test_build_cues_reads_a_2pass_session() -> None:
    first = build_reply("clip", sentences_for([(1000, 2000)])) | {"mode": "2pass-offline"}
    online = {"mode": "2pass-online", "text": "锄禾", "is_final": False}
    second = build_reply("clip", sentences_for([(4000, 6600)])) | {"mode": "2pass-offline", "is_final": True}
    cues = build_cues({"mode": "2pass-offline", "session": [first, online, second], "is_final": True})
    assert cues[0].start_ms == 1000 and cues[-1].end_ms >= 6600

    def bare(text: str) -> str:
        return "".join(ch for ch in text if ch not in "，。 ")

    # both final replies, in order; the online partial is not part of the subtitles
    assert bare("".join("".join(c.lines) for c in cues)) == bare(str(first["text"]) + str(second["text"]))


def test_build_cues_retimes_a_sidecar_like_the_pipeline(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(
        tmp_media_dir / "late.mp4", bursts=[(1000, 1200), (3000, 900)], duration_ms=5000, audio_delay_ms=700
    )
    result = generate_subtitles(media, _settings(funasr_server))
    assert result.sidecar is not None
    side = json.loads(result.sidecar.read_text(encoding="utf-8"))
    # the late audio start is restored (the PCM sent is padded to the container's timeline, or offset_ms shifts the
    # reply), and the sidecar alone gives the same cues again
    assert abs(result.cues[0].start_ms - 1700) <= 30
    assert abs(side["audio"]["offset_ms"] + _first_reply_ms(side["reply"]) - 1700) <= 30
    assert tuple(build_cues(side["reply"], Settings(), offset_ms=side["audio"]["offset_ms"])) == result.cues
    narrow = build_cues(side["reply"], Settings(max_width=3, max_lines=1), offset_ms=side["audio"]["offset_ms"])
    assert all(len(line) <= 3 for cue in narrow for line in cue.lines)  # the settings given, not the sidecar's
    assert tuple(narrow) != result.cues and narrow[0].start_ms == result.cues[0].start_ms


def _first_reply_ms(reply: dict[str, object]) -> int:
    return int(json.loads(str(reply["timestamp"]))[0][0])


def test_build_cues_rejects_a_non_funasr_reply() -> None:
    with pytest.raises(ProtocolError):
        build_cues("<html>502 Bad Gateway</html>", Settings())


# --- the package surface --------------------------------------------------------------------------------------
def test_public_names_and_version() -> None:
    for name in funasr_subs.__all__:
        assert getattr(funasr_subs, name) is not None, name
    assert funasr_subs.__version__ == importlib.metadata.version("funasr-subs")
    assert {"generate_subtitles", "build_cues", "Settings", "Result", "FunasrSubsError", "CancelledError"} <= set(
        funasr_subs.__all__
    )

"""The Kodi add-on, run from plugins/kodi as Kodi runs it (``__main__`` with Kodi's argv), with small fakes of the
``xbmc*`` modules it uses; the real funasr-subs program does the work against the test server."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.funasr_server import FunasrTestServer
from tests.media import make_media

ROOT = Path(__file__).resolve().parent.parent
KODI = ROOT / "plugins" / "kodi"
ADDON = KODI / "service.subtitles.funasr"
SERVICE = ADDON / "service.py"
ADDON_ID = "service.subtitles.funasr"
BASE = f"plugin://{ADDON_ID}/"


def setting_defaults() -> dict[str, str]:
    root = ET.parse(ADDON / "resources" / "settings.xml").getroot()
    return {s.get("id", ""): (s.findtext("default") or "") for s in root.iter("setting")}


def strings() -> dict[int, str]:
    po = (ADDON / "resources" / "language" / "resource.language.en_gb" / "strings.po").read_text(encoding="utf-8")
    return {int(k): v for k, v in re.findall(r'msgctxt "#(\d+)"\nmsgid "(.*)"', po)}


class Kodi:
    """What the fake Kodi knows (playing file, settings) and what the add-on did to it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.playing = ""
        self.total_time = 3.0
        self.settings = setting_defaults()
        self.strings = strings()
        self.items: list[tuple[str, Any]] = []
        self.ended: list[int] = []
        self.notifications: list[tuple[str, str, str]] = []
        self.dialogs: list[list[str]] = []
        self.logs: list[tuple[int, str]] = []
        self.abort = False

    def translate(self, path: str) -> str:
        if path.startswith("special://profile/"):
            return str(self.home / "userdata" / path[len("special://profile/") :])
        if path.startswith("special://"):
            return str(self.home / path[len("special://") :])
        return path

    def modules(self) -> dict[str, ModuleType]:
        kodi = self

        xbmc = ModuleType("xbmc")
        xbmc.LOGDEBUG, xbmc.LOGINFO, xbmc.LOGWARNING, xbmc.LOGERROR = 0, 1, 2, 3  # type: ignore[attr-defined]
        xbmc.ENGLISH_NAME = 2  # type: ignore[attr-defined]

        class Player:
            def isPlaying(self) -> bool:
                return bool(kodi.playing)

            def getPlayingFile(self) -> str:
                if not kodi.playing:
                    raise RuntimeError("Kodi is not playing any media file")
                return kodi.playing

            def getTotalTime(self) -> float:
                return kodi.total_time

        class Monitor:
            def abortRequested(self) -> bool:
                return kodi.abort

        xbmc.Player = Player  # type: ignore[attr-defined]
        xbmc.Monitor = Monitor  # type: ignore[attr-defined]
        xbmc.log = lambda msg, level=0: kodi.logs.append((level, msg))  # type: ignore[attr-defined]
        xbmc.convertLanguage = lambda code, fmt: {"de": "German"}.get(code, "")  # type: ignore[attr-defined]

        xbmcaddon = ModuleType("xbmcaddon")

        class Addon:
            def __init__(self, addon_id: str | None = None) -> None:
                self.id = addon_id or ADDON_ID

            def getAddonInfo(self, key: str) -> str:
                return {"id": self.id, "profile": f"special://profile/addon_data/{self.id}/", "version": "0.1.0"}[key]

            def getSetting(self, key: str) -> str:
                if key not in kodi.settings:
                    raise KeyError(f"setting {key!r} is not in resources/settings.xml")
                return kodi.settings[key]

            def getLocalizedString(self, string_id: int) -> str:
                if string_id not in kodi.strings:
                    raise KeyError(f"string {string_id} is not in strings.po")
                return kodi.strings[string_id]

        xbmcaddon.Addon = Addon  # type: ignore[attr-defined]

        xbmcgui = ModuleType("xbmcgui")
        xbmcgui.NOTIFICATION_INFO, xbmcgui.NOTIFICATION_ERROR = "info", "error"  # type: ignore[attr-defined]

        class ListItem:
            def __init__(self, label: str = "", label2: str = "", path: str = "", offscreen: bool = False) -> None:
                self.label, self.label2 = label, label2
                self.props: dict[str, str] = {}
                self.art: dict[str, str] = {}

            def setProperty(self, key: str, value: str) -> None:
                self.props[key] = value

            def setArt(self, art: dict[str, str]) -> None:
                self.art.update(art)

        class DialogProgressBG:
            def __init__(self) -> None:
                self.events: list[str] = []
                kodi.dialogs.append(self.events)

            def create(self, heading: str, message: str = "") -> None:
                self.events.append("create")

            def update(self, percent: int = 0, heading: str = "", message: str = "") -> None:
                assert 0 <= percent <= 100
                self.events.append("update")

            def close(self) -> None:
                self.events.append("close")

        class Dialog:
            def notification(self, heading: str, message: str, icon: str = "info", time: int = 5000) -> None:
                kodi.notifications.append((heading, message, icon))

        xbmcgui.ListItem = ListItem  # type: ignore[attr-defined]
        xbmcgui.DialogProgressBG = DialogProgressBG  # type: ignore[attr-defined]
        xbmcgui.Dialog = Dialog  # type: ignore[attr-defined]

        xbmcplugin = ModuleType("xbmcplugin")

        def add_item(handle: int, url: str, listitem: Any, isFolder: bool = False, totalItems: int = 0) -> bool:
            assert handle == 7 and not isFolder
            kodi.items.append((url, listitem))
            return True

        xbmcplugin.addDirectoryItem = add_item  # type: ignore[attr-defined]
        xbmcplugin.endOfDirectory = lambda handle, succeeded=True: kodi.ended.append(handle)  # type: ignore[attr-defined]

        xbmcvfs = ModuleType("xbmcvfs")
        xbmcvfs.translatePath = kodi.translate  # type: ignore[attr-defined]
        return {"xbmc": xbmc, "xbmcaddon": xbmcaddon, "xbmcgui": xbmcgui, "xbmcplugin": xbmcplugin, "xbmcvfs": xbmcvfs}

    def call(self, monkeypatch: pytest.MonkeyPatch, query: str) -> list[tuple[str, Any]]:
        """One plugin invocation, as Kodi makes it; returns the directory items it listed."""
        self.items = []
        for name, module in self.modules().items():
            monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(sys, "argv", [BASE, "7", query])
        ended = len(self.ended)
        # Kodi runs the file in a fresh module registered as __main__ (PyImport_AddModule), argv untouched
        main = ModuleType("__main__")
        main.__file__ = str(SERVICE)
        monkeypatch.setitem(sys.modules, "__main__", main)
        exec(compile(SERVICE.read_bytes(), str(SERVICE), "exec"), main.__dict__)
        assert len(self.ended) == ended + 1, "every invocation must end its directory exactly once"
        return self.items


def console_script() -> str:
    path = Path(sysconfig.get_path("scripts")) / ("funasr-subs.exe" if os.name == "nt" else "funasr-subs")
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the project first (pip install -e '.[test]')")
    return str(path)


@pytest.fixture
def kodi(tmp_path: Path, funasr_server: FunasrTestServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kodi]:
    monkeypatch.setenv("FUNASR_SUBS_RETRIES", "0")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("FUNASR_SUBS_CONFIG", raising=False)
    k = Kodi(tmp_path / "kodi")
    k.settings.update({"server": funasr_server.url, "executable": console_script()})
    yield k


def _download_query(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == BASE
    return "?" + parts.query


def test_search_then_download_generates_and_hands_over_an_srt(
    kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_media_dir: Path
) -> None:
    film = make_media(tmp_media_dir / "Film (2024).mkv", bursts=[(1000, 1000)], duration_ms=3000)
    kodi.playing = str(film)
    items = kodi.call(monkeypatch, "?action=search&languages=Chinese&preferredlanguage=Chinese")
    assert len(items) == 1
    url, item = items[0]
    assert item.label == "Chinese" and item.label2 == "Generate with FunASR: Film (2024).mkv"
    assert item.props["sync"] == "true" and item.art["thumb"] == "zh"
    assert parse_qs(urlsplit(url).query)["action"] == ["download"]

    items = kodi.call(monkeypatch, _download_query(url))
    assert len(items) == 1
    srt = Path(items[0][0])
    profile = kodi.home / "userdata" / "addon_data" / ADDON_ID
    assert srt.is_file() and srt.suffix == ".srt" and profile in srt.parents
    assert srt.name == "Film (2024).zh.srt"
    assert "00:00:01," in srt.read_text(encoding="utf-8")
    assert kodi.dialogs and kodi.dialogs[-1][0] == "create" and kodi.dialogs[-1][-1] == "close"
    assert kodi.notifications == []
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == [film.name]  # nothing written into the library


def test_second_search_offers_the_generated_subtitle_without_running_again(
    kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_media_dir: Path, funasr_server: FunasrTestServer
) -> None:
    film = make_media(tmp_media_dir / "film.mp4")
    kodi.playing = str(film)
    first = kodi.call(monkeypatch, _download_query(kodi.call(monkeypatch, "?action=search")[0][0]))[0][0]
    (url, item) = kodi.call(monkeypatch, "?action=search&languages=Chinese")[0]
    assert "made by FunASR" in item.label2 and item.art["icon"] == "5"
    kodi.settings["executable"] = str(tmp_media_dir / "gone")  # running the engine now would fail loudly
    again = kodi.call(monkeypatch, _download_query(url))
    assert again[0][0] == first
    assert kodi.notifications == [] and len(funasr_server.requests) == 1


def test_two_films_with_the_same_name_do_not_share_subtitles(
    kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_media(tmp_path / "a" / "movie.mkv", bursts=[(500, 600)])
    b = make_media(tmp_path / "b" / "movie.mkv", bursts=[(2000, 600)])
    kodi.playing = str(a)
    kodi.call(monkeypatch, _download_query(kodi.call(monkeypatch, "?action=search")[0][0]))
    kodi.playing = str(b)
    (_, item) = kodi.call(monkeypatch, "?action=search")[0]
    assert item.label2.startswith("Generate with FunASR")
    srt_b = Path(kodi.call(monkeypatch, _download_query(kodi.call(monkeypatch, "?action=search")[0][0]))[0][0])
    assert "00:00:02," in srt_b.read_text(encoding="utf-8")


def test_subtitle_made_by_the_daemon_next_to_the_media_is_offered(
    kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_media_dir: Path, funasr_server: FunasrTestServer
) -> None:
    film = make_media(tmp_media_dir / "film.mkv")
    subprocess.run([console_script(), "transcribe", "--server", funasr_server.url, str(film)], check=True)
    kodi.playing = str(film)
    (url, item) = kodi.call(monkeypatch, "?action=search")[0]
    assert item.label2 == "film.zh.srt (made by FunASR)"
    assert kodi.call(monkeypatch, _download_query(url))[0][0] == str(tmp_media_dir / "film.zh.srt")


def test_server_down_is_one_notification_and_no_result(
    kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_media_dir: Path, funasr_server: FunasrTestServer
) -> None:
    film = make_media(tmp_media_dir / "film.mkv")
    kodi.playing = str(film)
    funasr_server.fault = "refuse"
    items = kodi.call(monkeypatch, _download_query(kodi.call(monkeypatch, "?action=search")[0][0]))
    assert items == []
    assert len(kodi.notifications) == 1
    _, message, icon = kodi.notifications[0]
    assert icon == "error" and "film.mkv" in message and "no FunASR server" in message and "\n" not in message
    assert any(level == 3 and "no FunASR server" in msg for level, msg in kodi.logs)
    assert kodi.dialogs[-1][-1] == "close"


def test_remote_file_is_refused_with_a_reason(kodi: Kodi, monkeypatch: pytest.MonkeyPatch) -> None:
    kodi.playing = "smb://nas/films/film.mkv"
    (url, item) = kodi.call(monkeypatch, "?action=search")[0]
    assert item.label2 == "Generate with FunASR: film.mkv"
    assert kodi.call(monkeypatch, _download_query(url)) == []
    assert kodi.notifications == [("FunASR", "Only local files can be transcribed: smb://nas/films/film.mkv", "error")]
    assert kodi.dialogs == []  # no engine was started


def test_nothing_playing_lists_nothing(kodi: Kodi, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kodi.call(monkeypatch, "?action=search&languages=English") == []
    assert kodi.call(monkeypatch, "?action=manualsearch&searchstring=x") == []


def test_missing_program_says_what_to_do(kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_media_dir: Path) -> None:
    kodi.playing = str(make_media(tmp_media_dir / "film.mkv"))
    kodi.settings["executable"] = str(tmp_media_dir / "nope")
    assert kodi.call(monkeypatch, _download_query(kodi.call(monkeypatch, "?action=search")[0][0])) == []
    assert "funasr-subs program was not found" in kodi.notifications[0][1]


def test_settings_reach_the_engine(
    kodi: Kodi, monkeypatch: pytest.MonkeyPatch, tmp_media_dir: Path, funasr_server: FunasrTestServer
) -> None:
    hotwords = tmp_media_dir / "names.txt"
    hotwords.write_text("达摩院 30\n", encoding="utf-8")
    kodi.settings.update({"language": "zh-TW", "formats": "ass", "hotwords_file": str(hotwords)})
    kodi.playing = str(make_media(tmp_media_dir / "film.mkv"))
    srt = Path(kodi.call(monkeypatch, _download_query(kodi.call(monkeypatch, "?action=search")[0][0]))[0][0])
    assert srt.name == "film.zh-TW.srt" and srt.with_suffix(".ass").is_file()  # srt always, plus the formats asked
    assert funasr_server.requests[0]["hotwords"] == '{"达摩院": 30}'


# --- the add-on's files ---------------------------------------------------------------------------------------
def test_addon_xml_declares_a_kodi19_subtitle_module() -> None:
    root = ET.parse(ADDON / "addon.xml").getroot()
    assert root.get("id") == ADDON_ID == ADDON.name
    imports = {i.get("addon"): i.get("version") for i in root.iter("import")}
    assert imports == {"xbmc.python": "3.0.0"}
    module = next(e for e in root.iter("extension") if e.get("point") == "xbmc.subtitle.module")
    assert (ADDON / str(module.get("library"))).is_file()


def test_every_setting_and_string_the_service_uses_exists() -> None:
    source = SERVICE.read_text(encoding="utf-8")
    used_settings = set(re.findall(r'getSetting\("(\w+)"\)', source))
    assert used_settings and used_settings <= set(setting_defaults())
    used_strings = {int(v) for v in re.findall(r"^S_\w+ = (\d+)$", source, re.M)}
    assert used_strings and used_strings <= set(strings())
    xml = (ADDON / "resources" / "settings.xml").read_text(encoding="utf-8")
    labels = {int(a or b) for a, b in re.findall(r'(?:label|help)="(\d+)"|<heading>(\d+)</heading>', xml)}
    assert len(labels) > 10 and labels <= set(strings())


def test_service_grammar_is_python_38() -> None:
    """Kodi 19 embeds Python 3.8 on some platforms."""
    ast.parse(SERVICE.read_text(encoding="utf-8"), feature_version=(3, 8))


def test_zip_builds_in_one_command_with_the_addon_folder_on_top(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(KODI / "build_zip.py"), "--out", str(tmp_path)], capture_output=True, text=True, check=True
    )
    version = ET.parse(ADDON / "addon.xml").getroot().get("version")
    target = tmp_path / f"{ADDON_ID}-{version}.zip"
    assert proc.stdout.strip() == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by Kodi's user, not 0600 like a temp file
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {ADDON_ID}
        for rel in ("addon.xml", "service.py", "resources/settings.xml"):
            assert zf.read(f"{ADDON_ID}/{rel}") == (ADDON / rel).read_bytes()
        assert f"{ADDON_ID}/resources/language/resource.language.en_gb/strings.po" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    first = target.read_bytes()
    subprocess.run(
        [sys.executable, str(KODI / "build_zip.py"), "--out", str(tmp_path)], check=True, capture_output=True
    )
    assert target.read_bytes() == first  # reproducible
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temp files left

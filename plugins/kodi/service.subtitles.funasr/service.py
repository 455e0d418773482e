"""Kodi subtitle add-on: "Generate with FunASR" makes subtitles for the playing file with the funasr-subs program.

Kodi runs this file with ``sys.argv = ["plugin://service.subtitles.funasr/", "<handle>", "?action=..."]``.
``search`` lists one result: the subtitle made earlier for this file, or "Generate with FunASR". ``download`` returns
that subtitle, or runs ``funasr-subs transcribe --output-dir <profile>/subtitles/<id>`` (argv list, no shell) with a
background progress dialog and hands Kodi the ``.srt``. Kodi's Python cannot install packages, so the engine is the
``funasr-subs`` program installed on the same machine (setting "funasr-subs program"). Python 3.8+ (Kodi 19+).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import time
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode

import xbmc
import xbmcaddon
import xbmcgui
import xbmcplugin
import xbmcvfs

ADDON_ID = "service.subtitles.funasr"
PROGRAM = "funasr-subs"
DEFAULT_SERVER = "ws://127.0.0.1:10095"
LANGUAGE_NAMES = {"zh": "Chinese", "yue": "Chinese", "en": "English", "ja": "Japanese", "ko": "Korean"}

# strings.po ids
S_GENERATE = 32100
S_GENERATED = 32101
S_WORKING = 32102
S_NOT_LOCAL = 32103
S_NOT_FOUND = 32104
S_NOTHING_PLAYING = 32105
S_NO_SUBTITLE = 32106


class Config(NamedTuple):
    """The add-on's settings (resources/settings.xml)."""

    executable: str = ""
    server: str = DEFAULT_SERVER
    insecure: bool = False
    language: str = "zh"
    formats: str = "srt"
    hotwords_file: str = ""


def log(message: str, level: int = xbmc.LOGINFO) -> None:
    xbmc.log(f"[{ADDON_ID}] {message}", level)


def read_config(addon: xbmcaddon.Addon) -> Config:
    return Config(
        executable=addon.getSetting("executable").strip(),
        server=addon.getSetting("server").strip() or DEFAULT_SERVER,
        insecure=addon.getSetting("insecure").strip().lower() == "true",
        language=addon.getSetting("language").strip(),
        formats=addon.getSetting("formats").strip() or "srt",
        hotwords_file=addon.getSetting("hotwords_file").strip(),
    )


# --------------------------------------------------------------------------------------------------------------
# Pure helpers.


def find_executable(configured: str) -> str | None:
    """The configured program (or the program inside a configured folder), else funasr-subs on PATH."""
    names = [PROGRAM + ".exe", PROGRAM] if os.name == "nt" else [PROGRAM]
    if configured:
        path = os.path.expanduser(configured)
        candidates = (
            [os.path.join(path, sub, n) for sub in ("", "bin", "Scripts") for n in names]
            if os.path.isdir(path)
            else [path]
        )
    else:
        found = shutil.which(PROGRAM)
        candidates = ([found] if found else []) + [os.path.join(os.path.expanduser("~"), ".local", "bin", PROGRAM)]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def subtitle_formats(formats: str) -> str:
    """The configured formats, with srt always included (it is the one handed to Kodi)."""
    items = [f.strip().lower().lstrip(".") for f in formats.split(",") if f.strip()]
    return ",".join(["srt"] + [f for f in items if f != "srt"])


def build_command(executable: str, cfg: Config, media: str, output_dir: str) -> list[str]:
    """The argv list for one file (no shell ever sees it)."""
    cmd = [executable, "transcribe", "--server", cfg.server]
    if cfg.insecure:
        cmd.append("--insecure")
    cmd += ["--format", subtitle_formats(cfg.formats), "--lang", cfg.language, "--output-dir", output_dir]
    if cfg.hotwords_file:
        cmd += ["--hotwords", os.path.expanduser(cfg.hotwords_file)]
    cmd.append(media)
    return cmd


def child_environment() -> dict[str, str]:
    """Kodi's environment minus the variables that point a child Python at Kodi's own interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def error_line(text: str) -> str:
    """The line that explains a funasr-subs failure: its last ``error:`` line (prefix removed), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [
        line.split("error:", 1)[1].strip() for line in lines if line.startswith(("error:", "funasr-subs: error:"))
    ]
    return errors[-1] if errors else (lines[-1] if lines else "")


def last_line(text: str) -> str:
    """The last non-empty line of a program's output."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def media_id(media: str) -> str:
    """A folder name unique to one media path, so two films called ``movie.mkv`` never share subtitles."""
    return hashlib.sha1(media.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def estimated_percent(elapsed_s: float, duration_s: float) -> int:
    """A progress estimate (the engine reports none while the server decodes): approaches 95 %, never reaches it."""
    scale = max(10.0, duration_s * 0.1)
    return int(95 * (1 - math.exp(-elapsed_s / scale)))


def newest_srt(folder: str) -> str | None:
    try:
        names = [n for n in os.listdir(folder) if n.lower().endswith(".srt")]
    except OSError:
        return None
    paths = [os.path.join(folder, n) for n in names]
    return max(paths, key=os.path.getmtime) if paths else None


def generated_next_to(media: str, language: str) -> str | None:
    """A subtitle funasr-subs wrote next to the media earlier (its sidecar ``<stem>.funasr.json`` proves it)."""
    stem = os.path.splitext(media)[0]
    if not os.path.isfile(stem + ".funasr.json"):
        return None
    for name in ([f"{stem}.{language}.srt"] if language else []) + [stem + ".srt"]:
        if os.path.isfile(name):
            return name
    return None


# --------------------------------------------------------------------------------------------------------------
# Kodi glue.


class Job:
    """One add-on invocation: its handle, settings, and folders."""

    def __init__(self, argv: list[str]) -> None:
        self.handle = int(argv[1])
        self.base_url = argv[0]
        self.params = dict(parse_qsl(argv[2].lstrip("?"))) if len(argv) > 2 else {}
        self.addon = xbmcaddon.Addon()
        self.cfg = read_config(self.addon)
        self.profile = xbmcvfs.translatePath(self.addon.getAddonInfo("profile"))

    def text(self, string_id: int) -> str:
        return str(self.addon.getLocalizedString(string_id))

    def notify(self, message: str, error: bool = True) -> None:
        log(message, xbmc.LOGERROR if error else xbmc.LOGINFO)
        icon = xbmcgui.NOTIFICATION_ERROR if error else xbmcgui.NOTIFICATION_INFO
        xbmcgui.Dialog().notification("FunASR", message[:200], icon, 8000)

    def output_dir(self, media: str) -> str:
        return os.path.join(self.profile, "subtitles", media_id(media))

    def existing(self, media: str) -> str | None:
        return newest_srt(self.output_dir(media)) or generated_next_to(media, self.cfg.language)

    def playing_file(self) -> str:
        return xbmc.Player().getPlayingFile() if xbmc.Player().isPlaying() else ""

    def local_path(self, media: str) -> str | None:
        if media.startswith("special://"):
            media = xbmcvfs.translatePath(media)
        if "://" in media or not os.path.isfile(media):
            return None
        return os.path.abspath(media)

    def run(self) -> None:
        action = self.params.get("action", "")
        try:
            if action in ("search", "manualsearch"):
                self.search()
            elif action == "download":
                self.download()
        finally:
            xbmcplugin.endOfDirectory(self.handle)

    def search(self) -> None:
        media = self.playing_file()
        if not media:
            return
        local = self.local_path(media)
        existing = self.existing(local) if local else None
        lang = self.cfg.language or "zh"
        name = LANGUAGE_NAMES.get(lang.split("-")[0], "") or xbmc.convertLanguage(lang, xbmc.ENGLISH_NAME) or lang
        if existing:
            label2 = f"{os.path.basename(existing)} ({self.text(S_GENERATED)})"
        else:
            label2 = f"{self.text(S_GENERATE)}: {os.path.basename(media)}"
        item = xbmcgui.ListItem(label=name, label2=label2)
        item.setArt({"icon": "5" if existing else "0", "thumb": lang.split("-")[0][:2]})
        item.setProperty("sync", "true")
        item.setProperty("hearing_imp", "false")
        query = {"action": "download", "media": media}
        if existing:
            query["existing"] = existing
        url = f"{self.base_url}?{urlencode(query)}"
        xbmcplugin.addDirectoryItem(handle=self.handle, url=url, listitem=item, isFolder=False)

    def download(self) -> None:
        media = self.playing_file() or self.params.get("media", "")
        if not media:
            self.notify(self.text(S_NOTHING_PLAYING))
            return
        local = self.local_path(media)
        if local is None:
            self.notify(f"{self.text(S_NOT_LOCAL)}: {media}")
            return
        existing = self.params.get("existing", "")
        if existing and existing == self.existing(local):
            self.hand_over(existing)
            return
        srt = self.generate(local)
        if srt:
            self.hand_over(srt)

    def hand_over(self, srt: str) -> None:
        log(f"subtitle for Kodi: {srt}")
        xbmcplugin.addDirectoryItem(handle=self.handle, url=srt, listitem=xbmcgui.ListItem(label=srt), isFolder=False)

    def generate(self, media: str) -> str | None:
        executable = find_executable(self.cfg.executable)
        if executable is None:
            self.notify(f"{self.text(S_NOT_FOUND)} ({self.cfg.executable or 'PATH'})")
            return None
        out_dir = self.output_dir(media)
        os.makedirs(out_dir, exist_ok=True)
        cmd = build_command(executable, self.cfg, media, out_dir)
        log(f"running {cmd}")
        code, out, err = self.run_with_progress(cmd, os.path.basename(media))
        if code != 0:
            self.notify(error_line(err) or error_line(out) or f"{PROGRAM} failed with exit code {code}")
            return None
        srt = newest_srt(out_dir)
        if srt is None:
            self.notify(f"{self.text(S_NO_SUBTITLE)}: {last_line(err) or last_line(out)}")
        return srt

    def run_with_progress(self, cmd: list[str], name: str) -> tuple[int, str, str]:
        dialog = xbmcgui.DialogProgressBG()
        dialog.create("FunASR", f"{self.text(S_WORKING)}: {name}")
        monitor = xbmc.Monitor()
        try:
            duration = float(xbmc.Player().getTotalTime()) if xbmc.Player().isPlaying() else 0.0
        except Exception:
            duration = 0.0
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_environment(),
                encoding="utf-8",
                errors="replace",
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0,
            )
        except OSError as exc:
            dialog.close()
            return 127, "", f"cannot run {cmd[0]}: {exc.strerror or exc}"
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=0.5)
                    return proc.returncode, out, err
                except subprocess.TimeoutExpired:
                    pass
                if monitor.abortRequested():
                    proc.terminate()
                    out, err = proc.communicate()
                    return proc.returncode, out, err or "Kodi is shutting down"
                elapsed = time.monotonic() - started
                dialog.update(
                    estimated_percent(elapsed, duration), "FunASR", f"{self.text(S_WORKING)}: {name} ({elapsed:.0f} s)"
                )
        finally:
            dialog.close()


def main(argv: list[str]) -> None:
    Job(argv).run()


if __name__ == "__main__":
    main(sys.argv)

"""Built-in ``library-refresh`` plugin action: after subtitles are written, ask Jellyfin/Emby/Plex to pick them up.

Off unless ``refresh_library = true`` in the ``[serve]`` table (or ``FUNASR_SUBS_SERVE_REFRESH_LIBRARY=true``). Each
configured server gets one small call with a timeout; a failure is logged and never affects the job:

- Jellyfin and Emby: ``POST /Library/Media/Updated`` naming the media file (a targeted scan, as Sonarr does);
- Plex: the library section holding the file is found with ``GET /library/sections``, then
  ``GET /library/sections/{id}/refresh?path=<folder>`` scans just that folder.

Paths are translated back to the media server's view with the reverse of ``path_map``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from funasr_subs.config import Settings
from funasr_subs.errors import FunasrSubsError
from funasr_subs.service.config import ServiceConfig, load_service_config
from funasr_subs.service.httpclient import UpstreamError, call, join

if TYPE_CHECKING:
    from funasr_subs.pipeline import Result

log = logging.getLogger(__name__)


def refresh_jellyfin(url: str, api_key: str, server_path: str, *, timeout: float, emby: bool = False) -> bool:
    """Tell Jellyfin (or Emby) that ``server_path`` changed. True on success; failures are logged."""
    name = "Emby" if emby else "Jellyfin"
    headers = {"Content-Type": "application/json", "X-Emby-Token": api_key}
    if not emby:
        headers["Authorization"] = f'MediaBrowser Token="{api_key}"'
    body = json.dumps({"Updates": [{"Path": server_path, "UpdateType": "Modified"}]}).encode("utf-8")
    try:
        reply = call("POST", join(url, "Library/Media/Updated"), headers=headers, body=body, timeout=timeout)
    except UpstreamError as exc:
        log.warning("%s refresh for %s failed: %s", name, server_path, exc.message)
        return False
    if reply.status >= 300:
        log.warning(
            "%s refresh for %s: HTTP %d (check the API key; it needs admin rights)", name, server_path, reply.status
        )
        return False
    log.info("%s asked to rescan %s", name, server_path)
    return True


def _parent(server_path: str) -> str:
    if "\\" in server_path or (len(server_path) > 1 and server_path[1] == ":"):
        return str(PureWindowsPath(server_path).parent)
    return str(PurePosixPath(server_path).parent)


def _plex_section(sections: Any, server_path: str) -> str | None:
    """The key of the Plex section with the longest location that contains ``server_path``."""
    best: tuple[int, str] | None = None
    directories = (sections.get("MediaContainer") or {}).get("Directory") or [] if isinstance(sections, dict) else []
    for directory in directories:
        for location in directory.get("Location") or []:
            root = str(location.get("path", "")).rstrip("/\\")
            contains = root and (server_path == root or server_path.startswith((root + "/", root + "\\")))
            if contains and (best is None or len(root) > best[0]):
                best = (len(root), str(directory.get("key")))
    return None if best is None else best[1]


def refresh_plex(url: str, token: str, server_path: str, *, timeout: float) -> bool:
    """Ask Plex to scan the folder of ``server_path`` in the section that holds it. Failures are logged."""
    headers = {"X-Plex-Token": token, "Accept": "application/json"}
    try:
        reply = call("GET", join(url, "library/sections"), headers=headers, timeout=timeout)
        if reply.status != 200:
            log.warning(
                "Plex refresh for %s: listing sections gave HTTP %d (check the token)", server_path, reply.status
            )
            return False
        section = _plex_section(reply.json(), server_path)
        if section is None:
            log.warning("Plex refresh: no Plex library contains %s (check path_map)", server_path)
            return False
        refresh = join(url, f"library/sections/{section}/refresh", {"path": _parent(server_path)})
        reply = call("GET", refresh, headers=headers, timeout=timeout)
    except UpstreamError as exc:
        log.warning("Plex refresh for %s failed: %s", server_path, exc.message)
        return False
    if reply.status >= 300:
        log.warning("Plex refresh for %s: HTTP %d", server_path, reply.status)
        return False
    log.info("Plex asked to rescan %s (section %s)", _parent(server_path), section)
    return True


class LibraryRefresh:
    """The plugin object (``funasr_subs.plugins`` entry point ``library-refresh``); reads ``[serve]`` once."""

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self._config = config
        self._loaded = config is not None
        self._lock = threading.Lock()

    def config(self) -> ServiceConfig | None:
        with self._lock:
            if not self._loaded:
                self._loaded = True
                try:
                    self._config = load_service_config(Settings(), environ=os.environ)
                except FunasrSubsError as exc:
                    log.warning("library refresh disabled: %s", exc)
        return self._config

    def on_subtitle_written(self, result: Result) -> None:
        config = self.config()
        if config is None or not config.refresh_library or not result.written:
            return
        server_path = config.path_map.reverse(str(result.media))
        timeout = config.media_server_timeout
        if config.jellyfin_url and config.jellyfin_api_key:
            refresh_jellyfin(config.jellyfin_url, config.jellyfin_api_key, server_path, timeout=timeout)
        if config.emby_url and config.emby_api_key:
            refresh_jellyfin(config.emby_url, config.emby_api_key, server_path, timeout=timeout, emby=True)
        if config.plex_url and config.plex_token:
            refresh_plex(config.plex_url, config.plex_token, server_path, timeout=timeout)

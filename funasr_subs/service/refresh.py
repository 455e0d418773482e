"""Built-in ``library-refresh`` plugin action: after subtitles are written, ask Jellyfin/Emby/Plex to pick them up.

The plugin object is :class:`funasr_subs.actions.refresh.LibraryRefresh` (light: this module, and aiohttp, load
only when a refresh is configured). Off unless ``refresh_library = true`` in the ``[serve]`` table (or
``FUNASR_SUBS_SERVE_REFRESH_LIBRARY=true``). Each configured server gets a few small calls with a timeout; a failure
is logged and never affects the job:

- Jellyfin and Emby: ``POST /Library/Media/Updated`` naming the **media file** (Sonarr names the series folder).
  The server's library monitor maps a file path to that item and refreshes the item itself, and the refresh
  re-lists the external subtitle files next to it (an added ``.srt`` counts as a change of the item); a folder
  path only makes it look for new or removed items below the folder, which an existing episode is not.
- Plex: the section holding the file is found with ``GET /library/sections``, the item with the section's listing
  (``Part@file``), then ``PUT /library/metadata/{ratingKey}/refresh`` refreshes that item's metadata, which is what
  makes Plex list a new external subtitle. A partial scan of the folder (``/library/sections/{id}/refresh?path=``)
  only finds new media files, so it is used only when Plex does not know the file yet (the scan then adds it, with
  its subtitles).

Each server is given the file as **it** sees it: our path translated back with the reverse of that server's own
path map (``jellyfin_path_map``, ``emby_path_map``, ``plex_path_map``), or of ``path_map`` when it has none.
"""

from __future__ import annotations

import json
import logging
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import aiohttp

from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.httpclient import UpstreamError, call, join, one_session

log = logging.getLogger(__name__)

#: Plex's metadata type numbers for the items of a movie and a show section.
PLEX_TYPES = {"movie": "1", "show": "4"}


async def refresh_jellyfin(
    session: aiohttp.ClientSession, url: str, api_key: str, server_path: str, *, timeout: float, emby: bool = False
) -> bool:
    """Tell Jellyfin (or Emby) that the media file ``server_path`` changed. True on success; failures are logged."""
    name = "Emby" if emby else "Jellyfin"
    headers = {"Content-Type": "application/json", "X-Emby-Token": api_key}
    if not emby:
        headers["Authorization"] = f'MediaBrowser Token="{api_key}"'
    body = json.dumps({"Updates": [{"Path": server_path, "UpdateType": "Modified"}]}).encode("utf-8")
    try:
        reply = await call(
            session, "POST", join(url, "Library/Media/Updated"), headers=headers, body=body, timeout=timeout
        )
    except UpstreamError as exc:
        log.warning("%s refresh for %s failed: %s", name, server_path, exc.message)
        return False
    if reply.status >= 300:
        log.warning(
            "%s refresh for %s: HTTP %d (check the API key; it needs admin rights)", name, server_path, reply.status
        )
        return False
    log.info("%s asked to refresh %s", name, server_path)
    return True


def _parent(server_path: str) -> str:
    if "\\" in server_path or (len(server_path) > 1 and server_path[1] == ":"):
        return str(PureWindowsPath(server_path).parent)
    return str(PurePosixPath(server_path).parent)


def _plex_section(sections: Any, server_path: str) -> tuple[str, str] | None:
    """(key, type) of the Plex section with the longest location that contains ``server_path``."""
    best: tuple[int, str, str] | None = None
    directories = (sections.get("MediaContainer") or {}).get("Directory") or [] if isinstance(sections, dict) else []
    for directory in directories:
        for location in directory.get("Location") or []:
            root = str(location.get("path", "")).rstrip("/\\")
            contains = root and (server_path == root or server_path.startswith((root + "/", root + "\\")))
            if contains and (best is None or len(root) > best[0]):
                best = (len(root), str(directory.get("key")), str(directory.get("type", "")))
    return None if best is None else (best[1], best[2])


def _plex_rating_key(listing: Any, server_path: str) -> str | None:
    """The ratingKey of the item whose media part is ``server_path`` in a section listing."""
    container = listing.get("MediaContainer") if isinstance(listing, dict) else None
    for meta in (container or {}).get("Metadata") or []:
        for media in meta.get("Media") or []:
            if any(part.get("file") == server_path for part in media.get("Part") or []):
                return str(meta.get("ratingKey"))
    return None


async def refresh_plex(
    session: aiohttp.ClientSession, url: str, token: str, server_path: str, *, timeout: float
) -> bool:
    """Refresh the Plex item of ``server_path`` (or scan its folder when Plex does not know it yet)."""
    headers = {"X-Plex-Token": token, "Accept": "application/json"}
    try:
        reply = await call(session, "GET", join(url, "library/sections"), headers=headers, timeout=timeout)
        if reply.status != 200:
            log.warning(
                "Plex refresh for %s: listing sections gave HTTP %d (check the token)", server_path, reply.status
            )
            return False
        section = _plex_section(reply.json(), server_path)
        if section is None:
            log.warning("Plex refresh: no Plex library contains %s (check plex_path_map, or path_map)", server_path)
            return False
        key, kind = section
        query = {"type": PLEX_TYPES[kind]} if kind in PLEX_TYPES else {}
        listing = await call(
            session, "GET", join(url, f"library/sections/{key}/all", query), headers=headers, timeout=timeout
        )
        rating_key = _plex_rating_key(listing.json(), server_path) if listing.status == 200 else None
        if rating_key is not None:
            target = join(url, f"library/metadata/{rating_key}/refresh")
            reply = await call(session, "PUT", target, headers=headers, timeout=timeout)
            what = f"item {rating_key} ({server_path})"
        else:
            target = join(url, f"library/sections/{key}/refresh", {"path": _parent(server_path)})
            reply = await call(session, "GET", target, headers=headers, timeout=timeout)
            what = f"folder {_parent(server_path)} (Plex does not list {server_path} yet)"
    except UpstreamError as exc:
        log.warning("Plex refresh for %s failed: %s", server_path, exc.message)
        return False
    if reply.status >= 300:
        log.warning("Plex refresh for %s: HTTP %d", server_path, reply.status)
        return False
    log.info("Plex asked to refresh %s in section %s", what, key)
    return True


async def refresh_all(config: ServiceConfig, local_path: str) -> None:
    """One refresh call (or three, for Plex) to each configured media server, one after another, each naming
    ``local_path`` (our path of the media file) as that server sees it."""
    timeout = config.media_server_timeout
    async with one_session() as session:
        if config.jellyfin_url and config.jellyfin_api_key:
            path = config.server_map("jellyfin").reverse(local_path)
            await refresh_jellyfin(session, config.jellyfin_url, config.jellyfin_api_key, path, timeout=timeout)
        if config.emby_url and config.emby_api_key:
            path = config.server_map("emby").reverse(local_path)
            await refresh_jellyfin(session, config.emby_url, config.emby_api_key, path, timeout=timeout, emby=True)
        if config.plex_url and config.plex_token:
            path = config.server_map("plex").reverse(local_path)
            await refresh_plex(session, config.plex_url, config.plex_token, path, timeout=timeout)

"""Jellyfin, Emby and Plex webhooks: which events mean "a new file", and how to find that file's path.

Parsing is pure (payload in, :class:`Event` out); :func:`event_paths` makes the one or two API calls a payload
without a path needs (Jellyfin always, Plex always, Emby only when ``Item.Path`` is missing).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.httpclient import UpstreamError, call, join

log = logging.getLogger(__name__)

#: Item types with a video file worth subtitling (Jellyfin/Emby ``ItemType``/``Type``, Plex ``type``).
VIDEO_TYPES = frozenset({"movie", "episode", "video", "musicvideo", "clip"})
#: Plex container types whose episodes are fetched with ``/allLeaves``.
PLEX_CONTAINERS = frozenset({"show", "season"})
#: Why a Jellyfin payload with neither NotificationType nor ItemId is ignored, and what to change.
JELLYFIN_TEMPLATE = (
    "the payload has no NotificationType and no ItemId (the Generic destination's default template sends neither): "
    "tick 'Send All Properties (ignores template)' in the Jellyfin webhook destination"
)
_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")


class WebhookError(ValueError):
    """The payload is malformed (HTTP 400 with this message)."""


@dataclass(frozen=True)
class Event:
    """What a webhook said: whether it announces new media, and how to find its file."""

    source: str  # "jellyfin" | "emby" | "plex"
    name: str  # the event as sent (ItemAdded, library.new, ...)
    wanted: bool  # a new-item event we act on
    paths: tuple[str, ...] = ()  # paths carried by the payload itself (media-server side)
    item_id: str | None = None  # Jellyfin/Emby item id, Plex ratingKey
    item_type: str | None = None
    title: str = ""
    reason: str = ""  # why it is ignored


def json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise WebhookError naming ``what``."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise WebhookError(f"{what} is nested too deeply to be a media server's payload") from None
    if not isinstance(value, dict):
        raise WebhookError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _typed(source: str, name: str, item_type: str | None, item_id: str | None, title: str) -> Event | None:
    """The 'ignored' Event when the item type is not a video, else None."""
    if item_type is not None and item_type.lower() not in VIDEO_TYPES | PLEX_CONTAINERS:
        return Event(source, name, False, (), item_id, item_type, title, f"item type {item_type} is not a video")
    return None


def jellyfin_event(payload: Mapping[str, Any]) -> Event:
    """Jellyfin Webhook plugin, Generic destination with "Send All Properties": ``NotificationType``, ``ItemId``."""
    name = _text(payload.get("NotificationType")) or ""
    item_id, item_type = _text(payload.get("ItemId")), _text(payload.get("ItemType"))
    title = _text(payload.get("Name")) or ""
    if not name and item_id is None:
        return Event("jellyfin", name, False, (), None, item_type, title, JELLYFIN_TEMPLATE)
    if name != "ItemAdded":
        return Event(
            "jellyfin", name, False, (), item_id, item_type, title, f"event {name or '(none)'} is not ItemAdded"
        )
    ignored = _typed("jellyfin", name, item_type, item_id, title)
    if ignored or (item_type and item_type.lower() in PLEX_CONTAINERS):
        return ignored or Event("jellyfin", name, False, (), item_id, item_type, title, f"{item_type} is a folder")
    path = _text(payload.get("Path"))  # only present when a custom template adds it
    if path is None and (item_id is None or not _ID.match(item_id)):
        raise WebhookError("ItemAdded payload without a usable ItemId: enable 'Send All Properties'")
    return Event("jellyfin", name, True, (path,) if path else (), item_id, item_type, title)


def emby_event(payload: Mapping[str, Any]) -> Event:
    """Emby webhooks (``data`` field): ``Event`` ``library.new`` with ``Item.Path``."""
    name = _text(payload.get("Event")) or ""
    item: dict[str, Any] = payload["Item"] if isinstance(payload.get("Item"), dict) else {}
    item_id, item_type = _text(item.get("Id")), _text(item.get("Type"))
    title = _text(item.get("Name")) or _text(payload.get("Title")) or ""
    if name != "library.new":
        return Event("emby", name, False, (), item_id, item_type, title, f"event {name or '(none)'} is not library.new")
    ignored = _typed("emby", name, item_type, item_id, title)
    if ignored or (item_type and item_type.lower() in PLEX_CONTAINERS):
        return ignored or Event("emby", name, False, (), item_id, item_type, title, f"{item_type} is a folder")
    path = _text(item.get("Path"))
    if path is None and (item_id is None or not _ID.match(item_id)):
        raise WebhookError("library.new payload without Item.Path or Item.Id")
    return Event("emby", name, True, (path,) if path else (), item_id, item_type, title)


def plex_event(payload: Mapping[str, Any]) -> Event:
    """Plex webhooks (``payload`` field): ``event`` ``library.new`` with ``Metadata.ratingKey``."""
    name = _text(payload.get("event")) or ""
    meta: dict[str, Any] = payload["Metadata"] if isinstance(payload.get("Metadata"), dict) else {}
    key, item_type = _text(meta.get("ratingKey")), _text(meta.get("type"))
    title = _text(meta.get("title")) or ""
    if name != "library.new":
        return Event("plex", name, False, (), key, item_type, title, f"event {name or '(none)'} is not library.new")
    ignored = _typed("plex", name, item_type, key, title)
    if ignored:
        return ignored
    if key is None or not key.isdigit():
        raise WebhookError("library.new payload without a numeric Metadata.ratingKey")
    return Event("plex", name, True, (), key, item_type, title)


# --- lookups -------------------------------------------------------------------------------------------------
def _jellyfin_headers(api_key: str) -> dict[str, str]:
    # Authorization: MediaBrowser works from 10.8 through 12; X-Emby-Token is for older servers (and Emby).
    return {"Authorization": f'MediaBrowser Token="{api_key}"', "X-Emby-Token": api_key, "Accept": "application/json"}


def _item_path(data: Any) -> str | None:
    if isinstance(data, dict):
        if _text(data.get("Path")):
            return _text(data.get("Path"))
        items = data.get("Items")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return _text(items[0].get("Path"))
    return None


async def jellyfin_item_path(
    session: aiohttp.ClientSession, config: ServiceConfig, item_id: str, *, emby: bool = False
) -> str:
    """The file of a Jellyfin (or Emby) item, asked of its API with the configured key."""
    url = config.emby_url if emby else config.jellyfin_url
    key = config.emby_api_key if emby else config.jellyfin_api_key
    server = "Emby" if emby else "Jellyfin"
    flag = "--emby" if emby else "--jellyfin"
    if not url or not key:
        raise UpstreamError(f"{server} sent no file path: set {flag}-url and {flag}-api-key so it can be looked up")
    quoted = urllib.parse.quote(item_id, safe="")
    attempts: list[tuple[str, dict[str, str]]] = []
    if config.jellyfin_user_id and not emby:
        uid = config.jellyfin_user_id
        attempts += [
            (f"Items/{quoted}", {"userId": uid}),
            (f"Users/{urllib.parse.quote(uid, safe='')}/Items/{quoted}", {}),
        ]
    attempts += [("Items", {"ids": item_id, "fields": "Path", "recursive": "true"}), (f"Items/{quoted}", {})]
    headers = {"X-Emby-Token": key, "Accept": "application/json"} if emby else _jellyfin_headers(key)
    problems: list[str] = []
    for path, query in attempts:
        reply = await call(session, "GET", join(url, path, query), headers=headers, timeout=config.media_server_timeout)
        if reply.status == 200:
            found = _item_path(reply.json())
            if found:
                return found
            problems.append(f"/{path}: no Path")
        else:
            problems.append(f"/{path}: HTTP {reply.status}")
    hint = f"check {flag}-api-key" + ("" if emby else " (or set jellyfin_user_id)")
    raise UpstreamError(f"{server} at {url} gave no path for item {item_id} ({'; '.join(problems)}): {hint}")


def _plex_files(reply_body: bytes, content_type: str) -> list[str]:
    """Every ``Media/Part@file`` in a Plex metadata reply (JSON or XML)."""
    files: list[str] = []
    if "json" in content_type:
        data = json.loads(reply_body)
        for meta in (data.get("MediaContainer") or {}).get("Metadata") or []:
            for media in meta.get("Media") or []:
                files.extend(str(part["file"]) for part in media.get("Part") or [] if part.get("file"))
        return files
    root = ET.fromstring(reply_body)
    return [part.attrib["file"] for part in root.iter("Part") if part.attrib.get("file")]


async def plex_item_paths(session: aiohttp.ClientSession, config: ServiceConfig, event: Event) -> list[str]:
    """The files of a Plex item (every episode's for a show or season), asked of its API with the token."""
    if not config.plex_url or not config.plex_token:
        raise UpstreamError("Plex sends no file path: set --plex-url and --plex-token so it can be looked up")
    assert event.item_id is not None
    suffix = "/allLeaves" if (event.item_type or "").lower() in PLEX_CONTAINERS else ""
    url = join(config.plex_url, f"library/metadata/{event.item_id}{suffix}")
    headers = {"X-Plex-Token": config.plex_token, "Accept": "application/json"}
    reply = await call(session, "GET", url, headers=headers, timeout=config.media_server_timeout)
    if reply.status in (401, 403):
        raise UpstreamError(
            f"Plex at {config.plex_url} answered HTTP {reply.status} for item {event.item_id}: check --plex-token"
        )
    if reply.status == 404:
        raise UpstreamError(
            f"Plex at {config.plex_url} has no item {event.item_id} (HTTP 404): it was removed or replaced since "
            "the webhook was sent, or --plex-url names another Plex server"
        )
    if reply.status != 200:
        raise UpstreamError(f"Plex at {config.plex_url} answered HTTP {reply.status} for item {event.item_id}")
    try:
        files = _plex_files(reply.body, reply.content_type)
    except (ValueError, ET.ParseError, AttributeError, TypeError, RecursionError) as exc:
        raise UpstreamError(f"Plex's reply for item {event.item_id} could not be read ({exc})") from None
    if not files:
        raise UpstreamError(f"Plex item {event.item_id} has no media file")
    return files


async def event_paths(session: aiohttp.ClientSession, config: ServiceConfig, event: Event) -> list[str]:
    """The media-server-side paths of a wanted event, looking them up when the payload has none."""
    if event.paths:
        return list(event.paths)
    assert event.item_id is not None
    if event.source == "jellyfin":
        return [await jellyfin_item_path(session, config, event.item_id)]
    if event.source == "emby":
        return [await jellyfin_item_path(session, config, event.item_id, emby=True)]
    return await plex_item_paths(session, config, event)


def unique(paths: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for p in paths:
        seen.setdefault(p, None)
    return list(seen)

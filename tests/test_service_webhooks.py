"""Jellyfin/Emby/Plex webhooks over real HTTP: the real payload shapes queue exactly the right file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from funasr_subs.service import ServiceConfig, ServiceHandle
from funasr_subs.service.pathmap import PathMap
from funasr_subs.watch.state import StateDB
from tests.servicekit import Seen, StandIn, json_reply, multipart, request, service

JELLYFIN_KEY = "0123456789abcdef0123456789abcdef"
PLEX_TOKEN = "plex-token-xyz"
TOKEN = "webhook-test-token-0123456789"  # the service's own; callers that present it get refusals in detail
AUTH = {"X-Api-Key": TOKEN}
ITEM_ID = "5e1f3f0a9c2b4d7e8f6a1b2c3d4e5f60"
SERVER_DIR = "/data/tv/Show One/Season 01"  # how the media server (in its container) sees the folder
EPISODE = "Show One - S01E01 - Pilot é.mkv"


def jellyfin_payload(notification: str = "ItemAdded", item_type: str = "Episode") -> dict[str, object]:
    """The Jellyfin Webhook plugin's Generic destination with "Send All Properties" (10.9)."""
    return {
        "ServerId": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "ServerName": "jellyfin",
        "ServerVersion": "10.9.11",
        "ServerUrl": "http://192.168.1.10:8096",
        "NotificationType": notification,
        "Timestamp": "2024-06-01T20:15:00.0000000+02:00",
        "UtcTimestamp": "2024-06-01T18:15:00.0000000Z",
        "Name": "Pilot",
        "Overview": "It begins.",
        "Tagline": "",
        "ItemId": ITEM_ID,
        "ItemType": item_type,
        "RunTimeTicks": 26000000000,
        "RunTime": "00:43:20",
        "Year": 2024,
        "SeriesName": "Show One",
        "SeasonNumber": 1,
        "SeasonNumber00": "01",
        "EpisodeNumber": 1,
        "EpisodeNumber00": "01",
        "Provider_tvdb": "123456",
    }


def emby_payload(path: str, event: str = "library.new", item_type: str = "Episode") -> dict[str, object]:
    """Emby's built-in webhook (4.8): the ``data`` form field."""
    return {
        "Title": "New Pilot on emby",
        "Date": "2024-06-01T18:15:00.0000000Z",
        "Event": event,
        "Severity": "Info",
        "Item": {
            "Name": "Pilot",
            "ServerId": "d4e5f6",
            "Id": "123456",
            "Path": path,
            "Type": item_type,
            "MediaType": "Video",
            "IsFolder": False,
            "SeriesName": "Show One",
        },
        "Server": {"Name": "emby", "Id": "d4e5f6", "Version": "4.8.0.0"},
    }


def plex_payload(event: str = "library.new", rating_key: str = "1936", kind: str = "episode") -> dict[str, object]:
    """Plex's webhook ``payload`` field."""
    return {
        "event": event,
        "user": True,
        "owner": True,
        "Account": {"id": 1, "title": "owner"},
        "Server": {"title": "plex", "uuid": "abc123"},
        "Metadata": {
            "librarySectionType": "show",
            "ratingKey": rating_key,
            "key": f"/library/metadata/{rating_key}",
            "type": kind,
            "title": "Pilot",
            "grandparentTitle": "Show One",
            "librarySectionTitle": "TV Shows",
            "librarySectionID": 2,
            "addedAt": 1700000000,
        },
    }


def plex_xml(files: list[str]) -> bytes:
    parts = "".join(
        f'<Video ratingKey="{1936 + i}" type="episode" title="E{i}"><Media id="{i}" container="mkv">'
        f'<Part id="{i}" key="/library/parts/{i}/file.mkv" file="{f}" size="123"/></Media></Video>'
        for i, f in enumerate(files)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><MediaContainer size="{len(files)}">{parts}</MediaContainer>'.encode()
    )


@dataclass
class Library:
    root: Path
    season: Path
    episode: Path
    db: StateDB

    def queued(self) -> list[tuple[Path, str]]:
        return [(job.path, job.source) for job in self.db.jobs("queued")]


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    root = tmp_path / "media" / "tv"
    season = root / "Show One" / "Season 01"
    season.mkdir(parents=True)
    episode = season / EPISODE
    episode.write_bytes(b"\x1aE\xdf\xa3 pretend mkv")
    with StateDB(tmp_path / "state") as db:
        yield Library(root, season, episode, db)


def config_for(library: Library, **extra: object) -> ServiceConfig:
    return ServiceConfig(
        port=0,
        roots=(library.root,),
        path_map=PathMap.parse(["/data/tv=" + str(library.root)]),
        state_dir=library.db.state_dir,
        token=TOKEN,
        **extra,  # type: ignore[arg-type]
    )


def jellyfin_item(seen: Seen) -> tuple[int, str, bytes]:
    if seen.headers.get("authorization") != f'MediaBrowser Token="{JELLYFIN_KEY}"':
        return 401, "text/plain", b"Unauthorized"
    return json_reply({"Name": "Pilot", "Id": ITEM_ID, "Path": f"{SERVER_DIR}/{EPISODE}", "Type": "Episode"})


@pytest.fixture
def jellyfin() -> Iterator[StandIn]:
    with StandIn({("GET", f"/Items/{ITEM_ID}"): jellyfin_item}) as stand_in:
        yield stand_in


def post_json(svc: ServiceHandle, path: str, data: object) -> tuple[int, dict[str, object]]:
    answer = request(svc, "POST", path, json.dumps(data).encode(), {"Content-Type": "application/json", **AUTH})
    return answer.status, answer.json()


# --- Jellyfin ---------------------------------------------------------------------------------------------------
def test_jellyfin_item_added_is_looked_up_and_queued(library: Library, jellyfin: StandIn) -> None:
    config = config_for(library, jellyfin_url=jellyfin.url, jellyfin_api_key=JELLYFIN_KEY)
    with service(config, library.db) as svc:
        status, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert status == 202, body
    assert library.queued() == [(library.episode, "jellyfin")]
    assert body["queued"] == [str(library.episode)]
    assert "no watch daemon" in str(body["warning"])
    lookups = [s for s in jellyfin.seen if s.path.startswith("/Items")]
    assert lookups and lookups[-1].headers["authorization"] == f'MediaBrowser Token="{JELLYFIN_KEY}"'


def test_jellyfin_repeat_is_not_queued_twice(library: Library, jellyfin: StandIn) -> None:
    config = config_for(library, jellyfin_url=jellyfin.url, jellyfin_api_key=JELLYFIN_KEY)
    with service(config, library.db) as svc:
        first, _ = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
        second, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert (first, second) == (202, 200) and body["status"] == "already"
    assert len(library.queued()) == 1


def test_jellyfin_items_list_endpoint_is_the_fallback(library: Library) -> None:
    """Servers where GET /Items/{id} needs a user answer the /Items?ids= query instead."""

    def items(seen: Seen) -> tuple[int, str, bytes]:
        assert seen.query["ids"] == [ITEM_ID] and seen.query["fields"] == ["Path"]
        return json_reply({"Items": [{"Id": ITEM_ID, "Path": f"{SERVER_DIR}/{EPISODE}"}], "TotalRecordCount": 1})

    with StandIn({("GET", "/Items"): items}) as jf:
        config = config_for(library, jellyfin_url=jf.url + "/jellyfin", jellyfin_api_key=JELLYFIN_KEY)
        jf.routes[("GET", "/jellyfin/Items")] = items
        with service(config, library.db) as svc:
            status, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert status == 202, body
    assert library.queued() == [(library.episode, "jellyfin")]


def test_jellyfin_other_events_and_series_are_acknowledged_and_ignored(library: Library, jellyfin: StandIn) -> None:
    config = config_for(library, jellyfin_url=jellyfin.url, jellyfin_api_key=JELLYFIN_KEY)
    with service(config, library.db) as svc:
        playback = post_json(svc, "/webhook/jellyfin", jellyfin_payload("PlaybackStart"))
        series = post_json(svc, "/webhook/jellyfin", jellyfin_payload(item_type="Series"))
        audio = post_json(svc, "/webhook/jellyfin", jellyfin_payload(item_type="Audio"))
    for status, body in (playback, series, audio):
        assert status == 200 and body["status"] == "ignored"
    assert jellyfin.seen == [], "ignored events need no lookup"
    assert library.queued() == []


def test_jellyfin_wrong_api_key_is_502_and_nothing_queued(library: Library, jellyfin: StandIn) -> None:
    config = config_for(library, jellyfin_url=jellyfin.url, jellyfin_api_key="wrong-key")
    with service(config, library.db) as svc:
        status, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert status == 502 and "HTTP 401" in str(body["error"]) and "jellyfin-api-key" in str(body["error"])
    assert library.queued() == []


def test_jellyfin_unreachable_is_502(library: Library) -> None:
    config = config_for(library, jellyfin_url="http://127.0.0.1:9", jellyfin_api_key=JELLYFIN_KEY)
    with service(config, library.db) as svc:
        status, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert status == 502 and "failed" in str(body["error"])


def test_jellyfin_path_outside_roots_is_refused(library: Library) -> None:
    def evil(seen: Seen) -> tuple[int, str, bytes]:
        return json_reply({"Path": "/etc/passwd"})

    with StandIn({("GET", f"/Items/{ITEM_ID}"): evil}) as jf:
        config = config_for(library, jellyfin_url=jf.url, jellyfin_api_key=JELLYFIN_KEY)
        with service(config, library.db) as svc:
            status, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert status == 403 and "outside the library roots" in str(body["refused"])
    assert library.queued() == []


# --- Emby -----------------------------------------------------------------------------------------------------
def post_form(
    svc: ServiceHandle, path: str, parts: list[tuple[str, str | None, str | None, bytes]]
) -> tuple[int, dict[str, object]]:
    body, ctype = multipart(parts)
    answer = request(svc, "POST", path, body, {"Content-Type": ctype, **AUTH})
    return answer.status, answer.json()


def test_emby_library_new_with_item_path_is_queued(library: Library) -> None:
    data = json.dumps(emby_payload(f"{SERVER_DIR}/{EPISODE}")).encode()
    with service(config_for(library), library.db) as svc:
        status, body = post_form(svc, "/webhook/emby", [("data", None, None, data)])
    assert status == 202, body
    assert library.queued() == [(library.episode, "emby")]


def test_emby_json_body_and_other_events(library: Library) -> None:
    with service(config_for(library), library.db) as svc:
        played = post_json(svc, "/webhook/emby", emby_payload(f"{SERVER_DIR}/{EPISODE}", event="playback.start"))
        added = post_json(svc, "/webhook/emby", emby_payload(f"{SERVER_DIR}/{EPISODE}"))
    assert played[0] == 200 and played[1]["status"] == "ignored"
    assert added[0] == 202
    assert library.queued() == [(library.episode, "emby")]


@pytest.mark.parametrize(
    ("make_path", "status", "reason"),
    [
        (lambda lib, outside: "/data/tv/../../../etc/passwd", 403, "outside the library roots"),
        (lambda lib, outside: "/etc/passwd", 403, "outside the library roots"),
        (lambda lib, outside: str(outside), 403, "outside the library roots"),
        (lambda lib, outside: f"{SERVER_DIR}/link-out.mkv", 403, "really"),
        (lambda lib, outside: "Show One/Season 01/" + EPISODE, 403, "not absolute"),
        (lambda lib, outside: f"{SERVER_DIR}/missing.mkv", 404, f"no such file (mapped from {SERVER_DIR}/missing.mkv"),
        (lambda lib, outside: SERVER_DIR, 422, "not a regular file"),
        (lambda lib, outside: f"{SERVER_DIR}/bad\x00name.mkv", 403, "control characters"),
        # names no file system holds, inside the roots (was: a 500, the stat's ENAMETOOLONG uncaught)
        (lambda lib, outside: f"{SERVER_DIR}/{'a' * 300}.mkv", 400, "not a file name this system can hold"),
        (lambda lib, outside: f"{SERVER_DIR}/{'b/' * 2100}x.mkv", 400, "not a file name this system can hold"),
    ],
)
def test_path_escapes_are_refused(library: Library, tmp_path: Path, make_path, status: int, reason: str) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside" / "secret.mkv"
    outside.parent.mkdir()
    outside.write_bytes(b"secret")
    os.symlink(outside, library.season / "link-out.mkv")
    data = json.dumps(emby_payload(make_path(library, outside))).encode()
    with service(config_for(library), library.db) as svc:
        got, body = post_form(svc, "/webhook/emby", [("data", None, None, data)])
    assert got == status, body
    assert reason in json.dumps(body, ensure_ascii=False)
    assert library.db.jobs() == []


def test_symlink_inside_the_roots_is_accepted(library: Library) -> None:
    os.symlink(library.episode, library.season / "alias.mkv")
    data = json.dumps(emby_payload(f"{SERVER_DIR}/alias.mkv")).encode()
    with service(config_for(library), library.db) as svc:
        status, _ = post_form(svc, "/webhook/emby", [("data", None, None, data)])
    assert status == 202


def test_without_roots_every_path_is_refused(library: Library) -> None:
    data = json.dumps(emby_payload(f"{SERVER_DIR}/{EPISODE}")).encode()
    config = ServiceConfig(port=0, path_map=PathMap.parse(["/data/tv=" + str(library.root)]), token=TOKEN)
    with service(config, library.db) as svc:
        status, body = post_form(svc, "/webhook/emby", [("data", None, None, data)])
    assert status == 403 and "--root" in json.dumps(body)
    assert library.queued() == []


def test_running_daemon_means_no_warning(library: Library) -> None:
    with StateDB(library.db.state_dir) as daemon:
        assert daemon.acquire_daemon_lock()
        data = json.dumps(emby_payload(f"{SERVER_DIR}/{EPISODE}")).encode()
        with service(config_for(library), library.db) as svc:
            status, body = post_form(svc, "/webhook/emby", [("data", None, None, data)])
    assert status == 202 and "warning" not in body


# --- Plex -----------------------------------------------------------------------------------------------------
def test_plex_library_new_is_looked_up_and_queued(library: Library) -> None:
    def metadata(seen: Seen) -> tuple[int, str, bytes]:
        if seen.headers.get("x-plex-token") != PLEX_TOKEN:
            return 401, "text/html", b"<html>401 Unauthorized</html>"
        return 200, "text/xml;charset=utf-8", plex_xml([f"{SERVER_DIR}/{EPISODE}"])

    with StandIn({("GET", "/library/metadata/1936"): metadata}) as plex:
        config = config_for(library, plex_url=plex.url, plex_token=PLEX_TOKEN)
        parts = [
            ("payload", None, "application/json", json.dumps(plex_payload()).encode()),
            ("thumb", "image.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + os.urandom(50_000)),
        ]
        with service(config, library.db) as svc:
            status, body = post_form(svc, "/webhook/plex", parts)
            other = post_form(
                svc, "/webhook/plex", [("payload", None, None, json.dumps(plex_payload("media.play")).encode())]
            )
    assert status == 202, body
    assert library.queued() == [(library.episode, "plex")]
    assert other[0] == 200 and other[1]["status"] == "ignored"
    assert [s.path for s in plex.seen] == ["/library/metadata/1936"]


def test_plex_new_season_queues_every_episode_via_all_leaves(library: Library) -> None:
    second = library.season / "Show One - S01E02.mkv"
    second.write_bytes(b"pretend")
    files = [f"{SERVER_DIR}/{EPISODE}", f"{SERVER_DIR}/{second.name}"]

    def leaves(seen: Seen) -> tuple[int, str, bytes]:
        return json_reply({"MediaContainer": {"Metadata": [{"Media": [{"Part": [{"file": f}]}]} for f in files]}})

    with StandIn({("GET", "/library/metadata/77/allLeaves"): leaves}) as plex:
        config = config_for(library, plex_url=plex.url, plex_token=PLEX_TOKEN)
        payload = json.dumps(plex_payload(rating_key="77", kind="season")).encode()
        with service(config, library.db) as svc:
            status, body = post_form(svc, "/webhook/plex", [("payload", None, None, payload)])
    assert status == 202, body
    assert sorted(library.queued()) == sorted([(library.episode, "plex"), (second, "plex")])


def test_plex_without_url_is_502_with_the_fix(library: Library) -> None:
    with service(config_for(library), library.db) as svc:
        status, body = post_form(svc, "/webhook/plex", [("payload", None, None, json.dumps(plex_payload()).encode())])
    assert status == 502 and "--plex-url" in str(body["error"])


def test_a_webhook_path_is_mapped_with_that_servers_own_path_map(library: Library, jellyfin: StandIn) -> None:
    # Sonarr's mount (/tv) in path_map; Jellyfin names the file under /data/tv, which only its own map knows
    config = ServiceConfig(
        port=0,
        roots=(library.root,),
        path_map=PathMap.parse(["/tv=" + str(library.root)]),
        jellyfin_path_map=PathMap.parse(["/data/tv=" + str(library.root)]),
        state_dir=library.db.state_dir,
        token=TOKEN,
        jellyfin_url=jellyfin.url,
        jellyfin_api_key=JELLYFIN_KEY,
    )
    with service(config, library.db) as svc:
        status, body = post_json(svc, "/webhook/jellyfin", jellyfin_payload())
    assert status == 202, body
    assert library.queued() == [(library.episode, "jellyfin")]


def test_plex_item_it_no_longer_has_is_a_502_that_does_not_blame_the_token(library: Library) -> None:
    with StandIn({}) as plex:  # answers 404 to everything, as Plex does for an unknown ratingKey
        config = config_for(library, plex_url=plex.url, plex_token=PLEX_TOKEN)
        with service(config, library.db) as svc:
            payload = json.dumps(plex_payload(rating_key="424242")).encode()
            status, body = post_form(svc, "/webhook/plex", [("payload", None, None, payload)])
    assert status == 502
    assert "no item 424242" in str(body["error"]) and "token" not in str(body["error"])


def test_jellyfin_default_template_is_ignored_with_a_warning_that_says_what_to_tick(
    library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    # the Generic destination without "Send All Properties": whatever its default template renders, no ids
    with service(config_for(library), library.db) as svc:
        status, body = post_json(svc, "/webhook/jellyfin", {"Name": "Pilot", "ServerName": "jellyfin"})
    assert status == 200 and body["status"] == "ignored"
    assert "Send All Properties" in str(body["reason"])
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "Send All Properties" in r.getMessage()]
    assert warned, "a setup mistake is a warning in the service log, not a quiet INFO line"

"""The library-refresh plugin action against real stand-in Jellyfin/Emby/Plex servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

from funasr_subs.actions.refresh import LibraryRefresh
from funasr_subs.pipeline import Result
from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.pathmap import PathMap
from tests.servicekit import HeadedReply, Seen, StandIn, json_reply

MEDIA = Path("/mnt/media/tv/Show/Season 01/S01E01.mkv")
RESULT = Result(media=MEDIA, status="done", written=(MEDIA.with_suffix(".zh.srt"),))
PATH_MAP = PathMap.parse(["/data/tv=/mnt/media/tv"])


def no_content(seen: Seen) -> tuple[int, str, bytes]:
    return 204, "text/plain", b""


def plex_sections(seen: Seen) -> tuple[int, str, bytes]:
    return json_reply(
        {
            "MediaContainer": {
                "Directory": [
                    {"key": "1", "type": "movie", "Location": [{"id": 1, "path": "/data/movies"}]},
                    {"key": "2", "type": "show", "Location": [{"id": 2, "path": "/data/tv"}]},
                ]
            }
        }
    )


def plex_episodes(seen: Seen) -> tuple[int, str, bytes]:
    def episode(key: str, file: str) -> dict[str, object]:
        return {"ratingKey": key, "type": "episode", "Media": [{"Part": [{"file": file}]}]}

    return json_reply(
        {
            "MediaContainer": {
                "Metadata": [
                    episode("5500", "/data/tv/Show/Season 01/S01E00.mkv"),
                    episode("5501", "/data/tv/Show/Season 01/S01E01.mkv"),
                ]
            }
        }
    )


def test_declared_as_a_plugin_entry_point() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="funasr_subs.plugins")}
    assert names.get("library-refresh") == "funasr_subs.actions.refresh:LibraryRefresh"


def test_refresh_asks_each_configured_server_with_the_server_side_path() -> None:
    with (
        StandIn({("POST", "/Library/Media/Updated"): no_content}) as jellyfin,
        StandIn({("POST", "/emby/Library/Media/Updated"): no_content}) as emby,
        StandIn(
            {
                ("GET", "/library/sections"): plex_sections,
                ("GET", "/library/sections/2/all"): plex_episodes,
                ("PUT", "/library/metadata/5501/refresh"): no_content,
            }
        ) as plex,
    ):
        config = ServiceConfig(
            path_map=PATH_MAP,
            refresh_library=True,
            jellyfin_url=jellyfin.url,
            jellyfin_api_key="jf-key",
            emby_url=emby.url + "/emby",
            emby_api_key="emby-key",
            plex_url=plex.url,
            plex_token="plex-token",
        )
        LibraryRefresh(config).on_subtitle_written(RESULT)
    (jf,) = jellyfin.seen
    assert json.loads(jf.body) == {
        "Updates": [{"Path": "/data/tv/Show/Season 01/S01E01.mkv", "UpdateType": "Modified"}]
    }
    assert jf.headers["authorization"] == 'MediaBrowser Token="jf-key"'
    (em,) = emby.seen
    assert em.headers["x-emby-token"] == "emby-key" and "authorization" not in em.headers
    # Plex: the item is found in its section's listing, then its metadata is refreshed (which re-reads subtitles)
    assert [(s.method, s.path) for s in plex.seen] == [
        ("GET", "/library/sections"),
        ("GET", "/library/sections/2/all"),
        ("PUT", "/library/metadata/5501/refresh"),
    ]
    assert plex.seen[1].query == {"type": ["4"]}
    assert all(s.headers["x-plex-token"] == "plex-token" for s in plex.seen)


def test_plex_file_it_does_not_list_yet_gets_a_folder_scan() -> None:
    with StandIn(
        {
            ("GET", "/library/sections"): plex_sections,
            ("GET", "/library/sections/2/all"): lambda seen: json_reply({"MediaContainer": {"Metadata": []}}),
            ("GET", "/library/sections/2/refresh"): no_content,
        }
    ) as plex:
        config = ServiceConfig(path_map=PATH_MAP, refresh_library=True, plex_url=plex.url, plex_token="t")
        LibraryRefresh(config).on_subtitle_written(RESULT)
    assert [(s.method, s.path) for s in plex.seen][-1] == ("GET", "/library/sections/2/refresh")
    assert plex.seen[-1].query == {"path": ["/data/tv/Show/Season 01"]}


def test_disabled_or_nothing_written_makes_no_call() -> None:
    with StandIn({("POST", "/Library/Media/Updated"): no_content}) as jellyfin:
        off = ServiceConfig(jellyfin_url=jellyfin.url, jellyfin_api_key="k")
        LibraryRefresh(off).on_subtitle_written(RESULT)
        on = ServiceConfig(jellyfin_url=jellyfin.url, jellyfin_api_key="k", refresh_library=True)
        LibraryRefresh(on).on_subtitle_written(Result(media=MEDIA, status="skipped", reason="up to date"))
    assert jellyfin.seen == []


def test_failures_are_logged_and_never_raise(caplog) -> None:  # type: ignore[no-untyped-def]
    def denied(seen: Seen) -> tuple[int, str, bytes]:
        return 401, "text/plain", b"no"

    with StandIn({("POST", "/Library/Media/Updated"): denied, ("GET", "/library/sections"): plex_sections}) as srv:
        config = ServiceConfig(
            refresh_library=True,
            jellyfin_url=srv.url,
            jellyfin_api_key="bad",
            emby_url="http://127.0.0.1:9",  # nothing listens on the discard port
            emby_api_key="k",
            plex_url=srv.url,
            plex_token="t",
            media_server_timeout=2,
        )
        started = time.monotonic()
        LibraryRefresh(config).on_subtitle_written(RESULT)  # no path_map: /mnt/... is in no Plex section
    assert time.monotonic() - started < 5
    text = caplog.text
    assert "Jellyfin refresh" in text and "HTTP 401" in text
    assert "Emby refresh" in text and "failed" in text
    assert "no Plex library contains /mnt/media/tv/Show/Season 01/S01E01.mkv" in text


def test_reads_the_serve_table_of_the_config_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with StandIn({("POST", "/Library/Media/Updated"): no_content}) as jellyfin:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[serve]\nrefresh_library = true\njellyfin_url = "{jellyfin.url}"\njellyfin_api_key = "k"\n'
            'path_map = ["/data/tv=/mnt/media/tv"]\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("FUNASR_SUBS_CONFIG", str(config))
        LibraryRefresh().on_subtitle_written(RESULT)
    assert json.loads(jellyfin.seen[0].body)["Updates"][0]["Path"] == "/data/tv/Show/Season 01/S01E01.mkv"


def test_a_job_without_a_configured_refresh_does_not_load_an_http_client() -> None:
    # the plugin is loaded for every written subtitle: aiohttp (~0.12 s) must wait until a refresh is configured
    code = (
        "import sys; from pathlib import Path\n"
        "from funasr_subs.actions.refresh import LibraryRefresh\n"
        "from funasr_subs.pipeline import Result\n"
        "done = Result(media=Path('/m/a.mkv'), status='done', written=(Path('/m/a.srt'),))\n"
        "LibraryRefresh().on_subtitle_written(done)\n"
        "print('aiohttp' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env["XDG_CONFIG_HOME"] = "/nonexistent-config-home"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"


def test_each_media_server_is_refreshed_with_the_path_as_it_mounts_the_library() -> None:
    # the usual setup: Sonarr sees /tv, Jellyfin (and Emby, which has no map of its own) /media/tv, Plex /data/tv
    with (
        StandIn({("POST", "/Library/Media/Updated"): no_content}) as jellyfin,
        StandIn({("POST", "/Library/Media/Updated"): no_content}) as emby,
        StandIn(
            {
                ("GET", "/library/sections"): plex_sections,
                ("GET", "/library/sections/2/all"): plex_episodes,
                ("PUT", "/library/metadata/5501/refresh"): no_content,
            }
        ) as plex,
    ):
        config = ServiceConfig(
            path_map=PathMap.parse(["/tv=/mnt/media/tv", "/movies=/mnt/media/movies"]),
            jellyfin_path_map=PathMap.parse(["/media=/mnt/media"]),
            plex_path_map=PathMap.parse(["/data=/mnt/media"]),
            refresh_library=True,
            jellyfin_url=jellyfin.url,
            jellyfin_api_key="jf-key",
            emby_url=emby.url,
            emby_api_key="emby-key",
            plex_url=plex.url,
            plex_token="plex-token",
        )
        LibraryRefresh(config).on_subtitle_written(RESULT)
    (jf,) = jellyfin.seen
    assert json.loads(jf.body)["Updates"][0]["Path"] == "/media/tv/Show/Season 01/S01E01.mkv"
    (em,) = emby.seen
    assert json.loads(em.body)["Updates"][0]["Path"] == "/tv/Show/Season 01/S01E01.mkv"
    assert [(s.method, s.path) for s in plex.seen][-1] == ("PUT", "/library/metadata/5501/refresh")


def test_per_server_path_maps_come_from_the_serve_table_and_flags(tmp_path: Path) -> None:
    from funasr_subs.cli import build_parser
    from funasr_subs.commands.serve import split_args
    from funasr_subs.config import Settings
    from funasr_subs.service.config import load_service_config

    config_file = tmp_path / "config.toml"
    config_file.write_text('[serve]\nplex_path_map = ["/data=/mnt/media"]\n', encoding="utf-8")
    args = build_parser().parse_args(["serve", "--jellyfin-path-map", "/media=/mnt/media"])
    _, flags = split_args(args)
    config = load_service_config(Settings(), flags, config_path=config_file, environ={})
    local = "/mnt/media/tv/a.mkv"
    assert config.server_map("jellyfin").reverse(local) == "/media/tv/a.mkv"
    assert config.server_map("plex").reverse(local) == "/data/tv/a.mkv"
    assert config.server_map("emby").reverse(local) == local  # neither its own map nor path_map


def test_a_redirect_is_named_as_such_not_blamed_on_the_key(caplog) -> None:  # type: ignore[no-untyped-def]
    def loop(seen: Seen) -> HeadedReply:  # e.g. http:// redirected to https://, or a redirect loop
        return 301, "text/html", b"moved", {"Location": seen.path}

    with StandIn({("POST", "/Library/Media/Updated"): loop}) as jellyfin:
        config = ServiceConfig(refresh_library=True, jellyfin_url=jellyfin.url, jellyfin_api_key="k")
        LibraryRefresh(config).on_subtitle_written(RESULT)
    assert len(jellyfin.seen) == 1, "a redirect is never followed (the key would go along)"
    line = next(r.getMessage() for r in caplog.records if "Jellyfin refresh" in r.getMessage())
    assert "redirect to http://127.0.0.1" in line and "HTTP 301" in line and "API key" not in line, line

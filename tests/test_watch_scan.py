"""Which files the daemon picks up, and per-folder hotwords (nearest wins) reaching the real test server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funasr_subs.errors import ConfigError
from funasr_subs.watch.daemon import WatchDaemon
from funasr_subs.watch.scan import (
    DEFAULT_SUFFIXES,
    HotwordsLookup,
    folder_ignored,
    is_partial_name,
    iter_media,
    name_qualifies,
    parse_suffixes,
)
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.watch_support import job, options, server_settings


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Film (2024).mkv", True),
        ("EPISODE.MP4", True),
        ("talk.m4a", True),
        ("notes.txt", False),
        ("film.zh.srt", False),
        ("film.funasr.json", False),
        (".hidden.mkv", False),
        ("film.mkv.part", False),
        ("film.mkv.crdownload", False),
        ("film.mkv.!qB", False),
        ("film.mkv.tmp", False),
        ("film.f137.mp4", False),  # yt-dlp: one format before merging
        ("film.temp.mp4", False),  # yt-dlp post-processing
        ("film", False),
    ],
)
def test_name_rules(name: str, ok: bool) -> None:
    assert name_qualifies(name, DEFAULT_SUFFIXES) is ok


def test_suffix_list_parsing_and_partial_names() -> None:
    assert parse_suffixes(" mkv, .MP4 ,,webm") == {"mkv", "mp4", "webm"}
    assert name_qualifies("a.webm", parse_suffixes("webm")) and not name_qualifies("a.mkv", parse_suffixes("webm"))
    assert is_partial_name("x.MKV.PART") and not is_partial_name("x.mkv")


def test_walk_prunes_hidden_and_ignored_folders(tmp_path: Path) -> None:
    for rel in ["a.mkv", "s1/b.mkv", "s1/deep/c.mp3", ".cache/d.mkv", "skip/e.mkv", "skip/sub/f.mkv", "s1/g.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "skip" / ".funasr-subs-ignore").touch()
    found = sorted(str(p.relative_to(tmp_path)) for p, _ in iter_media(tmp_path, DEFAULT_SUFFIXES))
    assert found == ["a.mkv", "s1/b.mkv", "s1/deep/c.mp3"]
    assert folder_ignored(tmp_path / "skip" / "sub", tmp_path)
    assert folder_ignored(tmp_path / ".cache", tmp_path)
    assert not folder_ignored(tmp_path / "s1" / "deep", tmp_path)
    assert folder_ignored(tmp_path.parent, tmp_path)  # outside the root


def test_hotwords_merge_from_root_down_nearest_wins(tmp_path: Path) -> None:
    show = tmp_path / "Show" / "Season 1"
    show.mkdir(parents=True)
    (tmp_path / "hotwords.txt").write_text("达摩院 10\n阿里巴巴 5\n", encoding="utf-8")
    (tmp_path / "Show" / "hotwords.txt").write_text("# cast\n张三 30\n达摩院 40\n", encoding="utf-8")
    lookup = HotwordsLookup()
    words = lookup.for_media(show / "e01.mkv", tmp_path, {"全局": 7, "阿里巴巴": 1})
    assert words == {"全局": 7, "阿里巴巴": 5, "达摩院": 40, "张三": 30}
    assert lookup.for_media(tmp_path / "x.mkv", None, {}) == {"达摩院": 10, "阿里巴巴": 5}
    (tmp_path / "Show" / "hotwords.txt").write_text("张三 31\n", encoding="utf-8")  # edits apply to the next job
    assert lookup.for_media(show / "e01.mkv", tmp_path)["张三"] == 31
    (tmp_path / "Show" / "hotwords.txt").write_text("张三 lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Show/hotwords.txt, line 1"):
        lookup.for_media(show / "e01.mkv", tmp_path)


def test_daemon_sends_folder_hotwords_and_skips_ignored_files(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    (root / "Show").mkdir(parents=True)
    (root / "Other").mkdir()
    (root / "Private").mkdir()
    (root / "hotwords.txt").write_text("达摩院 10\n", encoding="utf-8")
    (root / "Show" / "hotwords.txt").write_text("张三 30\n达摩院 40\n", encoding="utf-8")
    (root / "Private" / ".funasr-subs-ignore").touch()
    for rel in ["Show/e01.mkv", "Other/talk.mp3", "Private/home.mkv", ".trash/old.mkv", "dl.f137.mp4"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make_media(root / rel, [(500, 800)], 2000)
    settings = server_settings(funasr_server.url, hotwords={"全局": 5})
    assert WatchDaemon(options((root,), state, once=True), settings).run() == 0
    sent = {r["wav_name"]: json.loads(r["hotwords"]) for r in funasr_server.requests}
    assert sent == {"e01": {"全局": 5, "达摩院": 40, "张三": 30}, "talk": {"全局": 5, "达摩院": 10}}
    assert (root / "Show" / "e01.zh.srt").exists() and not (root / "Private" / "home.zh.srt").exists()


def test_bad_hotwords_file_fails_the_file_with_its_line(tmp_path: Path, funasr_server: FunasrTestServer) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    (root / "hotwords.txt").write_text("好词 20\n坏词 x\n", encoding="utf-8")
    media = make_media(root / "a.mkv", [(500, 800)], 2000)
    assert WatchDaemon(options((root,), state, once=True), server_settings(funasr_server.url)).run() == 1
    record = job(state, media)
    assert record is not None and record.state == "failed"
    assert record.last_error is not None and "hotwords.txt, line 2" in record.last_error
    assert funasr_server.requests == []

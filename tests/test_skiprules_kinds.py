"""Forced, SDH and commentary subtitles, and other languages' subtitles: which ones mean "subtitles exist"."""

from __future__ import annotations

from pathlib import Path

import pytest

from funasr_subs.cli import main
from funasr_subs.config import Settings
from funasr_subs.errors import ConfigError
from funasr_subs.media.probe import probe
from funasr_subs.pipeline import generate_subtitles
from tests.funasr_server import FunasrTestServer
from tests.media import make_tagged_media

CHI = (1500, 800)


def fast(server: FunasrTestServer, **changes: object) -> Settings:
    return Settings(server=server.url, retries=0, connect_timeout=3, reply_timeout=10).replace(**changes)


def test_a_forced_chinese_stream_is_no_reason_to_skip(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])], ["chi"], subtitle_dispositions=["forced"])
    assert probe(media).subtitle_kinds == (frozenset({"forced"}),)
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "done", result.reason
    assert media.with_suffix(".zh.srt").exists()
    # counted again when forced tracks are not to be ignored (subgen's IGNORE_FORCED_SUBTITLES=false)
    again = make_tagged_media(tmp_path / "again.mkv", [("chi", [CHI])], ["chi"], subtitle_dispositions=["forced"])
    strict = generate_subtitles(again, fast(funasr_server, ignore_subtitle_kinds=()))
    assert strict.status == "skipped" and "embedded chi subtitle" in strict.reason


@pytest.mark.parametrize(("disposition", "status"), [("comment", "done"), ("hearing_impaired", "skipped")])
def test_commentary_is_ignored_and_sdh_counts(
    funasr_server: FunasrTestServer, tmp_path: Path, disposition: str, status: str
) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])], ["chi"], subtitle_dispositions=[disposition])
    assert generate_subtitles(media, fast(funasr_server)).status == status


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("film.zh.forced.srt", "done"),
        ("film.chi.forced.ass", "done"),
        ("film.zh.commentary.srt", "done"),
        ("film.zh.sdh.srt", "skipped"),
    ],
)
def test_a_forced_subtitle_file_next_to_it_is_no_reason_to_skip(
    funasr_server: FunasrTestServer, tmp_path: Path, name: str, status: str
) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])])
    (tmp_path / name).write_text("1\n00:00:00,500 --> 00:00:01,500\n歌词\n", encoding="utf-8")
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == status, result.reason


def test_other_languages_that_block_a_file_are_configurable(
    funasr_server: FunasrTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    config = tmp_path / "config.toml"
    config.write_text('skip_subtitle_languages = ["eng"]\n', encoding="utf-8")
    make_tagged_media(root / "english.mkv", [("chi", [CHI])], ["eng"])
    make_tagged_media(root / "bare.mkv", [("chi", [CHI])])
    (root / "sidecar.mkv").write_bytes((root / "bare.mkv").read_bytes())
    (root / "sidecar.en.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nhi\n", encoding="utf-8")
    argv = ["watch", "--once", "--settle", "0.2", "--state-dir", str(state), "--server", funasr_server.url]
    assert main([*argv, "--retries", "0", "--config", str(config), str(root)]) == 0
    log = capsys.readouterr().err
    assert "embedded eng subtitle" in log and "sidecar.en.srt next to it" in log
    assert (root / "bare.zh.srt").exists()
    assert not (root / "english.zh.srt").exists() and not (root / "sidecar.zh.srt").exists()


def test_an_unknown_subtitle_kind_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown subtitle kind 'signs'"):
        Settings(ignore_subtitle_kinds=("signs",))


def test_ffmpegs_own_report_says_which_streams_are_forced(tmp_path: Path) -> None:
    import subprocess

    from funasr_subs.media.ffreport import parse_report

    media = make_tagged_media(
        tmp_path / "film.mkv", [("chi", [CHI])], ["chi", "eng", "chi"], subtitle_dispositions=["forced", "", "comment"]
    )
    dump = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(media)], capture_output=True, text=True).stderr
    report = parse_report(media, dump.splitlines())
    assert report is not None
    assert report.info.subtitles == ("chi", "eng", "chi")
    assert report.info.subtitle_kinds == (frozenset({"forced"}), frozenset(), frozenset({"commentary"}))


def test_a_signs_and_songs_title_makes_a_stream_forced_in_either_reading() -> None:
    from funasr_subs.media.ffreport import parse_report
    from funasr_subs.media.probe import parse_probe

    lines = [
        "Input #0, matroska,webm, from 'film.mkv':",
        "  Duration: 00:00:02.06, start: 0.000000, bitrate: 4 kb/s",
        "  Stream #0:0(chi): Subtitle: ass",
        "    Metadata:",
        "      title           : Signs & Songs",
        "  Stream #0:1(chi): Subtitle: ass",
        "    Metadata:",
        "      title           : Full Dialogue",
    ]
    report = parse_report(Path("film.mkv"), lines)
    assert report is not None and report.info.subtitle_kinds == (frozenset({"forced"}), frozenset())
    streams = [
        {"codec_type": "subtitle", "tags": {"language": "chi", "title": "Signs & Songs"}, "disposition": {}},
        {"codec_type": "subtitle", "tags": {"language": "chi", "title": "Full Dialogue"}, "disposition": {}},
    ]
    probed = parse_probe(Path("film.mkv"), {"format": {}, "streams": streams})
    assert probed.subtitle_kinds == report.info.subtitle_kinds

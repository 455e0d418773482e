"""Skip rules on real files ffmpeg makes: language-tagged audio tracks, embedded subtitle streams, and subtitle files
named the usual ways; through the pipeline, ``watch --once`` + ``status``, and ``transcribe`` (warns, does it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from funasr_subs.config import Settings
from funasr_subs.pipeline import generate_subtitles
from funasr_subs.skiprules import external_rule
from tests.funasr_server import FunasrTestServer
from tests.media import make_tagged_media
from tests.test_hook import COMMAND

JPN = (300, 500)
CHI = (1500, 800)


def fast(server: FunasrTestServer, **changes: object) -> Settings:
    return Settings(server=server.url, retries=0, connect_timeout=3, reply_timeout=10).replace(**changes)


def test_japanese_only_audio_is_skipped_with_the_reason(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "anime.mkv", [("jpn", [JPN])])
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped"
    assert "audio is jpn" in result.reason and "(audio-language)" in result.reason
    assert funasr_server.files == [], "nothing may be sent to the server"
    assert not media.with_suffix(".zh.srt").exists()


def test_the_chinese_track_is_picked_when_another_is_the_default(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    media = make_tagged_media(tmp_path / "dual.mkv", [("jpn", [JPN]), ("chi", [CHI])], default_audio=0)
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "done"
    assert json.loads(result.sidecar.read_text(encoding="utf-8"))["audio"]["stream"] == 1  # type: ignore[union-attr]
    (event,) = pysubs2.load(str(result.written[0]))
    assert abs(event.start - CHI[0]) <= 100


@pytest.mark.parametrize("tag", ["chi", "zho"])
def test_embedded_chinese_subtitle_stream_is_skipped(funasr_server: FunasrTestServer, tmp_path: Path, tag: str) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])], subtitles=["eng", tag])
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped" and f"embedded {tag} subtitle" in result.reason
    other = make_tagged_media(tmp_path / "other.mkv", [("chi", [CHI])], subtitles=["eng"])
    assert generate_subtitles(other, fast(funasr_server)).status == "done", "an English stream is no reason"


@pytest.mark.parametrize("name", ["film.chs.srt", "film.zh-Hans.srt", "film.chi.ass", "film.sc.srt", "film.简体.srt"])
def test_external_chinese_subtitle_under_another_name_is_skipped(
    funasr_server: FunasrTestServer, tmp_path: Path, name: str
) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])])
    (tmp_path / name).write_text("1\n00:00:01,000 --> 00:00:02,000\n字幕\n", encoding="utf-8")
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped" and name in result.reason and "(external-subtitles)" in result.reason
    assert funasr_server.files == []


def test_our_own_subtitles_and_other_languages_are_no_reason(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("", [CHI])])  # untagged audio: nothing says it is not ours
    (tmp_path / "film.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n", encoding="utf-8")
    (tmp_path / "film2.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n字\n", encoding="utf-8")
    first = generate_subtitles(media, fast(funasr_server))
    assert first.status == "done"
    again = generate_subtitles(media, fast(funasr_server, overwrite=True))
    assert again.status == "done", "film.zh.srt is ours: it must not block a redo"


def test_each_rule_can_be_switched_off(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "anime.mkv", [("jpn", [JPN])], subtitles=["chi"])
    assert generate_subtitles(media, fast(funasr_server, skip=("audio-language",))).status == "skipped"
    assert generate_subtitles(media, fast(funasr_server, skip=("embedded-subtitles",))).status == "skipped"
    assert generate_subtitles(media, fast(funasr_server, skip=())).status == "done"


def test_external_rule_names() -> None:
    ours = {"ep.zh.srt"}
    siblings = ["ep.zh.srt", "ep.eng.srt", "ep.forced.cht.ass", "episode.chs.srt", "ep.chs.txt"]
    found = external_rule("ep", siblings, "zh", ours)
    assert found is not None and "ep.forced.cht.ass" in found.reason
    assert external_rule("ep", ["ep.zh.srt", "ep.eng.srt", "episode.chs.srt", "ep.chs.txt"], "zh", ours) is None


def test_watch_skips_and_status_says_why(
    funasr_server: FunasrTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, state = tmp_path / "library", tmp_path / "state"
    root.mkdir()
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    make_tagged_media(root / "anime.mkv", [("jpn", [JPN])])
    make_tagged_media(root / "drama.mkv", [("chi", [CHI])])
    argv = ["watch", "--once", "--settle", "0.2", "--state-dir", str(state), "--server", funasr_server.url]
    assert main([*argv, "--retries", "0", "--config", str(tmp_path / "none.toml"), str(root)]) == 0
    log = capsys.readouterr().err
    assert "anime.mkv" in log and "audio is jpn" in log
    assert (root / "drama.zh.srt").exists() and not (root / "anime.zh.srt").exists()
    assert main(["status", "--state-dir", str(state)]) == 0
    status = capsys.readouterr().out
    assert "skipped" in status and "anime.mkv" in status and "audio is jpn" in status


def test_transcribe_of_a_named_file_warns_and_does_it(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "anime.mkv", [("jpn", [JPN])])
    argv = [*COMMAND, "transcribe", "--server", funasr_server.url, "--retries", "0", str(media)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "audio is jpn" in proc.stderr and "anyway" in proc.stderr
    assert media.with_suffix(".zh.srt").exists()


#: Chinese as real files tag it: ISO 639-2/B and /T, BCP-47 with region and script, underscores, lists, names.
CHINESE_TAGS = ["zh_CN", "chi;eng", "zh-Hans-CN", "ZHO", "Chinese (Simplified)", "cmn-Hans"]


@pytest.mark.parametrize("tag", CHINESE_TAGS)
def test_chinese_in_every_form_a_tag_takes(funasr_server: FunasrTestServer, tmp_path: Path, tag: str) -> None:
    # the Chinese track is picked over the default Japanese one, and is no reason to skip the file
    media = make_tagged_media(tmp_path / "dual.mkv", [("jpn", [JPN]), (tag, [CHI])], default_audio=0)
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "done", result.reason
    assert json.loads(result.sidecar.read_text(encoding="utf-8"))["audio"]["stream"] == 1  # type: ignore[union-attr]
    # an embedded subtitle stream so tagged is one in the target language
    film = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])], subtitles=["eng", tag])
    embedded = generate_subtitles(film, fast(funasr_server))
    assert embedded.status == "skipped" and "(embedded-subtitles)" in embedded.reason


@pytest.mark.parametrize("name", ["film.zh_CN.srt", "film.chi;eng.ass", "film.zh-Hans-CN.srt", "film.Chinese.srt"])
def test_external_subtitles_tagged_the_other_ways(funasr_server: FunasrTestServer, tmp_path: Path, name: str) -> None:
    media = make_tagged_media(tmp_path / "film.mkv", [("chi", [CHI])])
    (tmp_path / name).write_text("1\n00:00:01,000 --> 00:00:02,000\n字幕\n", encoding="utf-8")
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped" and name in result.reason and "(external-subtitles)" in result.reason


def test_a_list_of_other_languages_is_still_skipped(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "anime.mkv", [("jpn;eng", [JPN]), ("ger", [CHI])])
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped" and "(audio-language)" in result.reason
    assert funasr_server.files == []


def test_a_model_language_our_table_does_not_list_is_matched_in_its_other_codes(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    # a Vietnamese model (--lang vi): audio tagged vie (ISO 639-2) is its language; jpn is not
    vietnamese = make_tagged_media(tmp_path / "phim.mkv", [("vie", [CHI])])
    assert generate_subtitles(vietnamese, fast(funasr_server, lang="vi")).status == "done"
    japanese = make_tagged_media(tmp_path / "anime.mkv", [("jpn", [JPN])])
    assert generate_subtitles(japanese, fast(funasr_server, lang="vi")).status == "skipped"

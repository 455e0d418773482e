"""generate_subtitles end to end in-process: real ffmpeg, the real test server, real files."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pysubs2
import pytest

from funasr_subs import build_cues
from funasr_subs.config import Settings
from funasr_subs.errors import (
    CancelledError,
    CorruptMediaError,
    MediaNotFoundError,
    NoAudioError,
    NoSpeechError,
    NoTimestampsError,
    NotMediaError,
    OutputError,
)
from funasr_subs.pipeline import generate_subtitles, is_up_to_date, output_paths
from tests.funasr_server import FunasrTestServer
from tests.media import make_corrupt_media, make_media, make_multi_audio, make_no_audio_video

BURSTS = [(1000, 900), (3500, 1200), (6500, 2600)]


def fast(test_server: FunasrTestServer, **changes: object) -> Settings:
    base = Settings(server=test_server.url, retries=0, connect_timeout=3, reply_timeout=10)
    return base.replace(**changes)


def starts(path: Path) -> list[int]:
    return [e.start for e in pysubs2.load(str(path))]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("send", ["pcm", "mp4"])
def test_cue_starts_match_the_speech(funasr_server: FunasrTestServer, tmp_media_dir: Path, send: str) -> None:
    media = make_media(tmp_media_dir / "ep 01.mkv", bursts=BURSTS, duration_ms=10_000)
    result = generate_subtitles(media, fast(funasr_server, send=send, formats=("srt", "ass", "vtt")))
    assert result.status == "done"
    srt = tmp_media_dir / "ep 01.zh.srt"
    assert set(result.written) == {srt, tmp_media_dir / "ep 01.zh.ass", tmp_media_dir / "ep 01.zh.vtt"}
    cue_starts = starts(srt)
    for burst_start, _ in BURSTS:
        assert min(abs(s - burst_start) for s in cue_starts) <= 100
    assert starts(tmp_media_dir / "ep 01.zh.ass")[0] == pytest.approx(cue_starts[0], abs=10)  # ASS: centiseconds
    assert leftovers(tmp_media_dir) == []


@pytest.mark.parametrize("send", ["pcm", "mp4"])
@pytest.mark.parametrize("name", ["late.mp4", "late.mkv", "late.ts"])
def test_late_audio_start_shifts_every_cue(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, send: str, name: str
) -> None:
    # mp4/mkv: found from ffmpeg's own run (padded PCM, the mp4's empty edit); MPEG-TS: from ffprobe's start times
    media = make_media(tmp_media_dir / name, bursts=BURSTS, duration_ms=12_000, audio_delay_ms=2000)
    result = generate_subtitles(media, fast(funasr_server, send=send))
    cue_starts = starts(result.written[0])
    for burst_start, _ in BURSTS:
        assert min(abs(s - (burst_start + 2000)) for s in cue_starts) <= 100
    side = json.loads(result.sidecar.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    rebuilt = build_cues(side["reply"], fast(funasr_server, send=send), offset_ms=side["audio"]["offset_ms"])
    assert [c.start_ms for c in rebuilt] == [c.start_ms for c in result.cues]  # retime needs nothing else


def test_display_text_has_no_spaces_between_chinese(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=10_000)
    result = generate_subtitles(media, fast(funasr_server).replace(punctuation="keep"))
    for cue in result.cues:
        for line in cue.lines:
            assert " " not in line and line
        assert len(cue.lines) <= 2
    # the default shows an in-line ，。 as one space: a space only where the reply has a mark
    default = generate_subtitles(media, fast(funasr_server).replace(overwrite=True))
    assert default.sidecar is not None
    said = json.loads(default.sidecar.read_text(encoding="utf-8"))["reply"]["text"]
    for cue in default.cues:
        for line in cue.lines:
            for piece in line.split(" ")[:-1]:
                assert piece[-1:] + "，" in said or piece[-1:] + "。" in said, (piece, said)


def test_sidecar_holds_the_raw_reply_and_what_rebuilding_needs(
    funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS, duration_ms=10_000)
    result = generate_subtitles(media, fast(funasr_server, hotwords={"达摩院": 9}))
    side = json.loads((tmp_media_dir / "a.funasr.json").read_text(encoding="utf-8"))
    assert side["reply"] == json.loads(funasr_server.replies[0])
    st = media.stat()
    assert side["media"] == {"name": "a.mkv", "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    assert side["settings"]["hotwords"] == {"达摩院": 9} and side["settings"]["send"] == "pcm"
    assert side["version"] and side["audio"]["offset_ms"] == 0
    assert list(side["outputs"]) == ["a.zh.srt"] and result.sidecar == tmp_media_dir / "a.funasr.json"


def test_naming_lang_and_output_dir(funasr_server: FunasrTestServer, tmp_media_dir: Path, tmp_path: Path) -> None:
    media = make_media(tmp_media_dir / "film.mkv", bursts=BURSTS[:1], duration_ms=3000)
    out = tmp_path / "out"
    out.mkdir()
    result = generate_subtitles(media, fast(funasr_server, lang="", output_dir=out))
    assert result.written == (out / "film.srt",) and result.sidecar == out / "film.funasr.json"
    assert not (tmp_media_dir / "film.srt").exists()
    assert output_paths(media, Settings(lang="zh-CN", formats=("ass",))) == {"ass": tmp_media_dir / "film.zh-CN.ass"}


def test_a_users_subtitle_is_never_replaced_without_overwrite(
    funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    mine = tmp_media_dir / "a.zh.srt"
    mine.write_text("1\n00:00:00,000 --> 00:00:01,000\nhand made\n", encoding="utf-8")
    result = generate_subtitles(media, fast(funasr_server))
    assert result.status == "skipped" and "--overwrite" in result.reason
    assert "hand made" in mine.read_text(encoding="utf-8") and funasr_server.requests == []
    result = generate_subtitles(media, fast(funasr_server, overwrite=True))
    assert result.status == "done" and "hand made" not in mine.read_text(encoding="utf-8")


def test_our_own_subtitles_are_up_to_date_then_redone_when_the_media_changes(
    funasr_server: FunasrTestServer, tmp_media_dir: Path
) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    settings = fast(funasr_server)
    assert not is_up_to_date(media, settings)
    generate_subtitles(media, settings)
    assert is_up_to_date(media, settings)
    again = generate_subtitles(media, settings)
    assert again.status == "skipped" and len(funasr_server.requests) == 1
    # a replaced file (new size and mtime) is ours to redo, without --overwrite
    make_media(media, bursts=BURSTS[:2], duration_ms=6000)
    assert not is_up_to_date(media, settings)
    redone = generate_subtitles(media, settings)
    assert redone.status == "done" and len(starts(redone.written[0])) >= 2
    # a subtitle the user edited after we wrote it is theirs now
    srt = redone.written[0]
    srt.write_text(srt.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    make_media(media, bursts=BURSTS[:1], duration_ms=3000)
    assert generate_subtitles(media, settings).status == "skipped"


def test_audio_track_by_index_and_language(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_multi_audio(tmp_media_dir / "multi.mkv")
    by_lang = generate_subtitles(media, fast(funasr_server, audio_track="chi", lang="a"))
    by_index = generate_subtitles(media, fast(funasr_server, audio_track="0", lang="b"))
    assert [c.start_ms for c in by_lang.cues] != [c.start_ms for c in by_index.cues]
    assert json.loads(by_index.sidecar.read_text(encoding="utf-8"))["audio"]["stream"] == 0  # type: ignore[union-attr]
    with pytest.raises(NoAudioError, match="--audio-track"):
        generate_subtitles(media, fast(funasr_server, audio_track="7", lang="c"))


def test_silence_is_no_speech_and_writes_nothing(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "quiet.mkv", bursts=[], duration_ms=2000)
    with pytest.raises(NoSpeechError, match="no speech") as info:
        generate_subtitles(media, fast(funasr_server))
    assert info.value.path == media
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == ["quiet.mkv"]


def test_server_without_timestamp_model_given_mp4(tmp_media_dir: Path) -> None:
    """(From PCM, the default, such text is timed by speech activity: tests/test_backends.py.)"""
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    with FunasrTestServer(timestamps=False) as server, pytest.raises(NoTimestampsError, match="timestamp model"):
        generate_subtitles(media, fast(server).replace(send="mp4"))
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == ["a.mkv"]


@pytest.mark.parametrize(
    "shape",
    ["stamp_sents_string", "numeric_strings", "stamp_sents_empty", "timestamp_list", "timestamp_int", "no_punc"],
)
def test_every_reply_shape_gives_the_same_timing(tmp_media_dir: Path, shape: str) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:2], duration_ms=6000)
    with FunasrTestServer(shape=shape) as server:  # type: ignore[arg-type]
        result = generate_subtitles(media, fast(server))
    cue_starts = [c.start_ms for c in result.cues]
    for burst_start, _ in BURSTS[:2]:
        assert min(abs(s - burst_start) for s in cue_starts) <= 100


def test_bad_inputs_have_their_own_errors(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    settings = fast(funasr_server)
    with pytest.raises(MediaNotFoundError):
        generate_subtitles(tmp_media_dir / "missing.mkv", settings)
    text = tmp_media_dir / "notes.mkv"
    text.write_text("this is not a video", encoding="utf-8")
    with pytest.raises(NotMediaError, match="not a media file"):
        generate_subtitles(text, settings)
    with pytest.raises(NoAudioError, match="no audio stream"):
        generate_subtitles(make_no_audio_video(tmp_media_dir / "mute.mp4"), settings)
    corrupt = make_corrupt_media(tmp_media_dir / "broken.mkv")
    with pytest.raises((CorruptMediaError, NotMediaError)) as info:
        generate_subtitles(corrupt, settings)
    assert str(corrupt) in str(info.value)
    assert not [p for p in tmp_media_dir.iterdir() if p.suffix in (".srt", ".json", ".tmp")]


def test_unwritable_output_folder_is_an_output_error(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    # /proc refuses new files even for root, which permission bits would not
    with pytest.raises(OutputError, match="output-dir"):
        generate_subtitles(media, fast(funasr_server, output_dir=Path("/proc")))
    assert not list(Path("/proc").glob(".a.*"))


def test_progress_stages_in_order(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    seen: list[tuple[str, float]] = []
    generate_subtitles(media, fast(funasr_server), progress=lambda stage, f: seen.append((stage, f)))
    stages = [s for s, _ in seen]
    order = ["probe", "upload", "recognise", "write"]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == order
    assert seen[-1] == ("write", 1.0)
    uploads = [f for s, f in seen if s == "upload"]
    assert uploads == sorted(uploads)


def test_cancel_during_the_job_writes_nothing(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    media = make_media(tmp_media_dir / "a.mkv", bursts=BURSTS[:1], duration_ms=3000)
    funasr_server.fault = "hang"
    cancel = threading.Event()

    def on_progress(stage: str, fraction: float) -> None:
        if stage == "upload":
            cancel.set()

    with pytest.raises(CancelledError):
        generate_subtitles(media, fast(funasr_server, reply_timeout=30), progress=on_progress, cancel=cancel)
    assert sorted(os.listdir(tmp_media_dir)) == ["a.mkv"]

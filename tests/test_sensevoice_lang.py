"""SenseVoice on the C++ server (``svs_lang``/``svs_itn``, its tags) and the languages it speaks: profiles, file
tags, skip rules and the service's ``language``, through the real CLI, the real stand-in server and real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest
import requests

from funasr_subs.config import Settings
from funasr_subs.errors import NoTimestampsError
from funasr_subs.pipeline import generate_subtitles
from funasr_subs.protocol import parse_reply, start_message
from funasr_subs.service import ServiceConfig
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_media, make_tagged_media
from tests.servicekit import service
from tests.speech import ZH_SENTENCES, build_speech, espeak_available
from tests.test_cli_transcribe import cli

BURSTS = [(1000, 900), (3500, 1200)]


@pytest.fixture
def sensevoice() -> Iterator[FunasrTestServer]:
    with FunasrTestServer(model="sensevoice") as server:
        yield server


@pytest.fixture
def film(tmp_path: Path) -> Path:
    return make_media(tmp_path / "film.mkv", bursts=BURSTS, duration_ms=5500)


# --- the messages and replies (pure) -----------------------------------------------------------------------------
def test_start_message_carries_svs_lang_and_svs_itn_with_the_types_the_server_reads() -> None:
    plain = json.loads(start_message(wav_name="a", wav_format="pcm"))
    asked = json.loads(start_message(wav_name="a", wav_format="pcm", itn=False, svs_lang="yue"))
    assert "svs_lang" not in plain and "svs_itn" not in plain  # Paraformer users send what they sent before
    assert asked["svs_lang"] == "yue" and asked["svs_itn"] is False and asked["itn"] is False
    with pytest.raises(ValueError, match="svs_lang"):
        start_message(wav_name="a", wav_format="pcm", svs_lang="fr")  # the server would quietly use auto


def test_sensevoice_reply_without_times_is_refused_naming_sensevoice_and_the_timestamp_model() -> None:
    # as sensevoice-small.cpp line 354 builds it, two speech segments joined by funasrruntime.cpp line 296
    reply = {
        "is_final": False,
        "mode": "offline",
        "text": "<|zh|><|NEUTRAL|><|Speech|> 欢迎大家。<|zh|><|HAPPY|><|BGM|> 今天天气好。",
        "wav_name": "a",
    }
    with pytest.raises(NoTimestampsError) as caught:
        parse_reply(reply)
    message = str(caught.value)
    assert "SenseVoice" in message and "cannot be timed" in message
    assert "speech_paraformer-large-vad-punc" in message  # what to run for timed output


def test_a_tags_only_sensevoice_reply_is_silence_not_an_error() -> None:
    """No speech: SenseVoice still writes its tags; they are not words (they would read as 'nospeech' ...)."""
    reply = {"is_final": False, "mode": "offline", "text": "<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|> ", "wav_name": "a"}
    transcript = parse_reply(reply)
    assert transcript.tokens == () and "<|" not in transcript.text


def test_tags_never_reach_the_display_text_when_times_come_with_them() -> None:
    """The Python server (FunASR #2427) sends SenseVoice's tags, <|withitn|> too, next to a timestamp list."""
    reply = {
        "mode": "offline",
        "text": "<|ja|><|HAPPY|><|BGM|><|withitn|>こんにちは。",
        "timestamp": [[0, 100], [100, 200], [200, 300], [300, 400], [400, 500]],
        "wav_name": "a",
    }
    transcript = parse_reply(reply)
    assert "".join(t.text for t in transcript.tokens) == "こんにちは"
    assert "<|" not in transcript.text and "HAPPY" not in transcript.text and "withitn" not in transcript.text


# --- through the CLI ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "lang", "itn"), [(["--language", "ja"], "ja", True), (["--language", "yue", "--no-itn"], "yue", False)]
)
def test_transcribe_sends_the_language_to_sensevoice_and_with_send_mp4_refuses_its_untimed_text(
    sensevoice: FunasrTestServer, film: Path, flags: list[str], lang: str, itn: bool
) -> None:
    """(With PCM, the default, such text is timed by speech activity: tests/test_backends.py.)"""
    done = cli("transcribe", "--server", sensevoice.url, "--retries", "0", "--send", "mp4", *flags, str(film))
    assert done.returncode == 1, done.stderr
    assert [r["svs_lang"] for r in sensevoice.requests] == [lang] and sensevoice.requests[0]["svs_itn"] is itn
    assert sensevoice.violations == []
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors and errors[0].startswith(f"error: {film}: the server sent text without timestamps"), done.stderr
    assert "SenseVoice" in errors[0] and "--model-dir" in errors[0] and "--send pcm" in errors[0], done.stderr
    assert "NEUTRAL" not in done.stderr and f"<|{lang}|>" not in done.stderr
    assert sorted(p.name for p in film.parent.iterdir()) == ["film.mkv"]  # nothing half-written


def test_without_a_language_nothing_new_is_sent(funasr_server: FunasrTestServer, film: Path) -> None:
    done = cli("transcribe", "--server", funasr_server.url, str(film))
    assert done.returncode == 0, done.stderr
    assert "svs_lang" not in funasr_server.requests[0] and "svs_itn" not in funasr_server.requests[0]
    assert film.with_name("film.zh.srt").exists()


@pytest.mark.parametrize(
    ("language", "tag", "width", "cps"),
    [("ja", "ja", "13", "4"), ("ko", "ko", "16", "9"), ("yue", "yue", "16", "9"), ("en", "en", "42", "20")],
)
def test_a_language_brings_its_profile_and_file_tag_and_check_holds_to_them(
    funasr_server: FunasrTestServer, tmp_path: Path, language: str, tag: str, width: str, cps: str
) -> None:
    """Timed text (the timestamp stand-in) under --language: .<tag>.srt, cut by that language's profile, which
    ``funasr-subs check --profile`` then finds kept (the stand-in speaks slower than 4 a second for ja)."""
    media = make_media(tmp_path / "talk.mkv", bursts=[(1000, 600), (3000, 800)], duration_ms=5000)
    done = cli("transcribe", "--server", funasr_server.url, "--language", language, str(media))
    assert done.returncode == 0, done.stderr
    srt = media.with_name(f"talk.{tag}.srt")
    assert srt.exists() and not media.with_name("talk.zh.srt").exists(), done.stderr
    assert funasr_server.requests[0]["svs_lang"] == language
    checked = cli("check", "--profile", language, str(srt))
    said = checked.stdout + checked.stderr
    assert checked.returncode == 0, said
    assert "all within the rules" in said and f"({language}: 2 lines of {width}, 833-7000 ms, {cps} chars/s" in said, (
        said
    )


@pytest.mark.parametrize(
    ("profile", "line", "broken"),
    [
        ("ja", "こんにちはありがとうございま", "too wide"),
        ("ko", "안녕하세요 감사합니다 오늘 날씨가 좋네요", "too wide"),
    ],
)
def test_check_holds_a_file_to_the_netflix_width_of_its_language(
    tmp_path: Path, profile: str, line: str, broken: str
) -> None:
    """14 kana are one too many for Japanese (13), fine for Chinese (16); 17 of Korean (spaces 0.5) too many."""
    srt = tmp_path / f"x.{profile}.srt"
    srt.write_text(f"1\n00:00:01,000 --> 00:00:06,000\n{line}\n", encoding="utf-8")
    strict = cli("check", "--profile", profile, str(srt))
    lenient = cli("check", "--profile", "zh", str(srt)) if profile == "ja" else None
    assert strict.returncode == 1 and broken in strict.stdout + strict.stderr, strict.stdout + strict.stderr
    if lenient is not None:
        assert lenient.returncode == 0, lenient.stdout + lenient.stderr


def test_retime_keeps_the_language_its_sidecar_recorded(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "talk.mkv", bursts=[(1000, 600), (3000, 800)], duration_ms=5000)
    assert cli("transcribe", "--server", funasr_server.url, "--language", "ja", str(media)).returncode == 0
    redone = cli("retime", "--max-width", "10", str(media))
    assert redone.returncode == 0, redone.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.funasr.json", "talk.ja.srt", "talk.mkv"]
    checked = cli("check", "--profile", "ja", "--max-width", "10", str(media.with_name("talk.ja.srt")))
    assert checked.returncode == 0 and "ja: 2 lines of 10" in checked.stdout, checked.stdout + checked.stderr


def test_cantonese_is_written_in_traditional_characters_by_default_and_hk_on_request(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    media = make_media(tmp_path / "show.mkv", bursts=[(1000, 1400)], duration_ms=3000)
    hant = cli("transcribe", "--server", funasr_server.url, "--language", "yue", str(media))
    assert hant.returncode == 0, hant.stderr
    text = pysubs2.load(str(media.with_name("show.yue.srt")))[0].plaintext
    assert "锄" not in text and "鋤" in text  # the stand-in's 锄禾日当午, in Traditional characters
    settings = Settings(language="yue", script="hk")
    assert settings.script == "hk" and settings.output_lang == "yue" and settings.profile == "yue"


def test_a_japanese_subtitle_blocks_a_japanese_job_not_a_chinese_one(
    funasr_server: FunasrTestServer, film: Path
) -> None:
    film.with_name("film.ja.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nこんにちは\n", encoding="utf-8")
    japanese = cli("transcribe", "--server", funasr_server.url, "--language", "ja", str(film))
    chinese = cli("transcribe", "--server", funasr_server.url, str(film))
    assert "film.ja.srt" in japanese.stderr, japanese.stderr  # transcribe warns (watch and hook skip)
    assert "film.ja.srt" not in chinese.stderr, chinese.stderr


# --- the service: Bazarr's /asr and the OpenAI language ------------------------------------------------------------
def _asr(url: str, pcm: bytes, language: str) -> requests.Response:
    return requests.post(
        f"{url}/asr",
        params={"task": "transcribe", "language": language, "output": "srt", "encode": "false"},
        files={"audio_file": pcm},
        timeout=(5, 60),
    )


def test_a_sensevoice_service_takes_each_language_it_speaks_and_tells_the_server(
    funasr_server: FunasrTestServer, film: Path, tmp_path: Path
) -> None:
    """serve --language auto: Bazarr's ja, ko, yue and OpenAI's en are each sent as that request's svs_lang (the
    stand-in gives times, so each comes back timed); French is refused in one line."""
    spool = tmp_path / "spool"
    spool.mkdir()
    settings = Settings(server=funasr_server.url, language="auto")
    pcm = decode_pcm(film)
    with service(ServiceConfig(settings=settings, port=0, upload_dir=spool)) as svc:
        answers = {code: _asr(svc.url, pcm, code) for code in ("ja", "kor", "yue")}
        openai = requests.post(
            f"{svc.url}/v1/audio/transcriptions",
            data={"model": "whisper-1", "language": "en", "response_format": "verbose_json"},
            files={"file": ("film.mkv", film.read_bytes())},
            timeout=(5, 60),
        )
        french = _asr(svc.url, pcm, "fr")
    assert {code: a.status_code for code, a in answers.items()} == {"ja": 200, "kor": 200, "yue": 200}
    assert all(a.text.count(" --> ") == len(BURSTS) for a in answers.values())
    assert openai.status_code == 200, openai.text
    assert openai.json()["language"] == "english"
    assert [r["svs_lang"] for r in funasr_server.requests] == ["ja", "ko", "yue", "en"]
    assert french.status_code == 422 and "SenseVoice transcribes zh, yue, en, ja, ko" in french.json()["error"]


def test_a_paraformer_service_refuses_japanese_saying_what_would_transcribe_it(
    funasr_server: FunasrTestServer, film: Path, tmp_path: Path
) -> None:
    settings = Settings(server=funasr_server.url)
    with service(ServiceConfig(settings=settings, port=0, upload_dir=tmp_path)) as svc:
        bazarr = _asr(svc.url, decode_pcm(film), "ja")
        openai = requests.post(
            f"{svc.url}/v1/audio/transcriptions",
            data={"model": "whisper-1", "language": "ja"},
            files={"file": ("film.mkv", film.read_bytes())},
            timeout=(5, 60),
        )
    assert bazarr.status_code == 422 and "--language auto" in bazarr.json()["error"]
    assert openai.status_code == 400 and "--language auto" in openai.json()["error"]["message"]
    assert funasr_server.files == []


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")
def test_a_sensevoice_answer_to_the_service_is_timed_by_speech_activity_without_its_tags(
    sensevoice: FunasrTestServer, tmp_path: Path
) -> None:
    """Bazarr's /asr on a SenseVoice server: its untimed text is timed segment by segment (it was a 502 before)."""
    audio = build_speech(ZH_SENTENCES[:2], pauses_ms=(900,))
    settings = Settings(server=sensevoice.url, language="auto", retries=0)
    with service(ServiceConfig(settings=settings, port=0, upload_dir=tmp_path)) as svc:
        answer = _asr(svc.url, audio.pcm, "ko")
    assert answer.status_code == 200, answer.text
    cues = pysubs2.SSAFile.from_string(answer.text)
    assert len(cues) >= 2 and all("<|" not in c.text and "HAPPY" not in c.text for c in cues), answer.text
    assert abs(cues[0].start - audio.truth[0][0]) <= 250, (cues[0].start, audio.truth)
    assert {r["svs_lang"] for r in sensevoice.requests} == {"ko"}


# --- skip rules for the languages (the pipeline, as watch and hook run it) -----------------------------------------
def _fast(server: FunasrTestServer, **changes: object) -> Settings:
    return Settings(server=server.url, retries=0, connect_timeout=3, reply_timeout=10).replace(**changes)


@pytest.mark.parametrize(
    ("tag", "language", "status"),
    [
        ("jpn", None, "skipped"),
        ("jpn", "ja", "done"),
        ("jpn", "auto", "done"),
        ("chi", "yue", "done"),
        ("kor", "ja", "skipped"),
    ],
)
def test_the_audio_rule_knows_what_the_chosen_language_hears(
    funasr_server: FunasrTestServer, tmp_path: Path, tag: str, language: str | None, status: str
) -> None:
    """Japanese audio is skipped by a Chinese job, done by a Japanese one or by SenseVoice left to guess; a Cantonese
    film's audio tagged chi is Cantonese's; Korean audio is not Japanese."""
    media = make_tagged_media(tmp_path / "film.mkv", [(tag, [(300, 800)])])
    result = generate_subtitles(media, _fast(funasr_server, language=language))
    assert result.status == status, result.reason
    if status == "skipped":
        assert f"audio is {tag}" in result.reason and funasr_server.files == []


def test_the_japanese_track_is_picked_for_a_japanese_job(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_tagged_media(tmp_path / "dual.mkv", [("chi", [(300, 500)]), ("jpn", [(1500, 800)])], default_audio=0)
    result = generate_subtitles(media, _fast(funasr_server, language="ja"))
    assert result.status == "done" and result.written[0].name == "dual.ja.srt"
    (event,) = pysubs2.load(str(result.written[0]))
    assert abs(event.start - 1500) <= 100

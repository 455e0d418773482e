"""``POST /detect-language`` as Bazarr calls it, over real HTTP: SenseVoice (``serve --language auto``) is asked
which language the first 30 s speak, through the C++ server's stand-in and funasr-server's; a Paraformer service
answers its own language without asking."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from funasr_subs.config import Settings
from funasr_subs.recognition.language import Spoken, spoken_language
from funasr_subs.service import ServiceConfig
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_corrupt_media, make_media
from tests.other_servers import FunasrHttpServer
from tests.servicekit import service

BURSTS = [(1000, 1600), (4000, 1200)]
#: s16le 16 kHz mono: what 30 s of audio are as sent.
THIRTY_SECONDS = 30 * 32_000


def bazarr_detect(url: str, pcm: bytes, *, encode: str = "false", timeout: float = 60) -> requests.Response:
    """Bazarr's whisperai provider (``detect_language``): its Session's User-Agent, ``encode=false`` and the whole
    film's PCM as ``files={'audio_file': ...}``."""
    return requests.post(
        f"{url}/detect-language",
        params={"encode": encode},
        files={"audio_file": pcm},
        headers={"User-Agent": "Subliminal/2.1.0"},
        timeout=(5, timeout),
    )


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_media(tmp_path_factory.mktemp("detect") / "film.wav", bursts=BURSTS, duration_ms=6000)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


def _sensevoice(server_url: str, spool: Path, **changes: object) -> ServiceConfig:
    settings = Settings(server=server_url, language="auto", retries=0).replace(**changes)
    return ServiceConfig(settings=settings, port=0, upload_dir=spool)


@pytest.fixture
def cantonese() -> Iterator[FunasrTestServer]:
    with FunasrTestServer(model="sensevoice", language="yue") as server:
        yield server


# --- reading the language (pure) ----------------------------------------------------------------------------------
def test_each_language_weighs_the_words_after_its_tags_and_nospeech_counts_for_none() -> None:
    # three English words, eight Cantonese characters, then a segment SenseVoice heard no speech in
    text = (
        "<|en|><|NEUTRAL|><|Speech|> hello my friend."
        "<|yue|><|HAPPY|><|BGM|> 佢哋喺度講緊嘢我。"
        "<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|> "
    )
    spoken = spoken_language({"mode": "offline", "text": text, "wav_name": "a"})
    assert spoken == Spoken("yue", 8 / 11, 11)


def test_funasr_servers_language_field_names_it_when_words_came_with_it() -> None:
    assert spoken_language({"text": "hello world", "language": "en"}) == Spoken("en", 1.0, 2)
    assert spoken_language({"text": "", "language": "en"}) is None  # no words: nothing was heard in English
    assert spoken_language({"text": "hello", "language": "unknown"}) is None  # no tag in SenseVoice's text


def test_no_language_without_speech_or_without_tags() -> None:
    assert spoken_language({"text": "<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|> "}) is None
    assert spoken_language({"text": "锄禾日当午。"}) is None  # Paraformer tags nothing
    assert spoken_language({"text": ""}) is None


# --- Bazarr against SenseVoice ------------------------------------------------------------------------------------
def test_cantonese_speech_is_detected_as_cantonese_asking_svs_lang_auto(
    cantonese: FunasrTestServer, film: Path, spool: Path
) -> None:
    with service(_sensevoice(cantonese.url, spool)) as svc:
        answer = bazarr_detect(svc.url, decode_pcm(film))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"detected_language": "cantonese", "language_code": "yue", "confidence": 1.0}
    assert [r["svs_lang"] for r in cantonese.requests] == ["auto"]
    assert cantonese.requests[0]["wav_format"] == "pcm"
    assert not list(spool.iterdir()), "the spooled upload must be deleted"


def test_the_language_most_words_are_in_wins_and_the_confidence_is_its_share(film: Path, spool: Path) -> None:
    """English in the first (longer) burst, Cantonese in the second: 8 English words against 6 characters. The
    upload is the media file itself (encode=true: decoded by our ffmpeg)."""
    server = FunasrTestServer(model="sensevoice", language=("en", "yue"))
    with server, service(_sensevoice(server.url, spool)) as svc:
        answer = bazarr_detect(svc.url, film.read_bytes(), encode="true")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"detected_language": "english", "language_code": "en", "confidence": round(8 / 14, 3)}


def test_english_through_funasr_server_reads_its_language_field(film: Path, spool: Path) -> None:
    with FunasrHttpServer(language="en") as server, service(_sensevoice(server.url, spool)) as svc:
        answer = bazarr_detect(svc.url, decode_pcm(film))
    assert answer.status_code == 200, answer.text
    assert answer.json()["language_code"] == "en" and answer.json()["detected_language"] == "english"
    assert [t["language"] for t in server.transcriptions] == ["auto"]  # one request, the server left to choose


def test_only_the_first_30_seconds_are_sent(tmp_path: Path, spool: Path) -> None:
    """A 2-minute upload: Cantonese in its first 30 s, English in the three bursts after them. ≤ 30 s of audio
    reach each server, and the answer is Cantonese, whether the upload is raw PCM or a file we decode."""
    long = make_media(tmp_path / "long.wav", bursts=[(2000, 2000), (40_000, 3000), (70_000, 3000), (100_000, 3000)],
                      duration_ms=120_000)  # fmt: skip
    languages = ("yue", "en", "en", "en")
    with FunasrTestServer(model="sensevoice", language=languages) as ws, FunasrHttpServer(language=languages) as http:
        answers = []
        for url in (ws.url, http.url):
            with service(_sensevoice(url, spool)) as svc:
                answers.append(bazarr_detect(svc.url, decode_pcm(long)))
                answers.append(bazarr_detect(svc.url, long.read_bytes(), encode="true"))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert [a.json()["language_code"] for a in answers] == ["yue"] * 4
    assert [f.audio_bytes for f in ws.files] == [THIRTY_SECONDS, THIRTY_SECONDS]
    assert [t["duration_ms"] for t in http.transcriptions] == [30_000, 30_000]


def test_no_speech_heard_answers_the_configured_language_with_confidence_zero(tmp_path: Path, spool: Path) -> None:
    """whisper always names a language (its most likely one); with nothing heard, the configured one, confidence 0:
    a silent upload, and tones SenseVoice hears no speech in (``<|nospeech|>``)."""
    silence = decode_pcm(make_media(tmp_path / "silence.wav", bursts=[], duration_ms=3000))
    tones = decode_pcm(make_media(tmp_path / "tones.wav", bursts=BURSTS, duration_ms=6000))
    server = FunasrTestServer(model="sensevoice", language="nospeech")
    with server, service(_sensevoice(server.url, spool, lang="zh")) as svc:
        quiet = bazarr_detect(svc.url, silence)
        music = bazarr_detect(svc.url, tones)
    expected = {"detected_language": "chinese", "language_code": "zh", "confidence": 0.0}
    assert (quiet.status_code, quiet.json()) == (200, expected)
    assert (music.status_code, music.json()) == (200, expected)
    assert len(server.files) == 2 and "nospeech" in server.files[1].reply["text"]  # type: ignore[index]


def test_server_down_is_a_503_with_retry_after(cantonese: FunasrTestServer, film: Path, spool: Path) -> None:
    cantonese.fault = "refuse"
    with service(_sensevoice(cantonese.url, spool)) as svc:
        answer = bazarr_detect(svc.url, decode_pcm(film))
    assert answer.status_code == 503, answer.text
    assert "FunASR server is unavailable" in answer.json()["error"]
    assert 1 <= int(answer.headers["Retry-After"]) <= 30
    assert not list(spool.iterdir())


def test_a_server_that_answers_garbage_is_passed_over_for_the_next(film: Path, spool: Path) -> None:
    broken = FunasrTestServer(model="sensevoice", language="en")
    broken.fault = "garbage"
    good = FunasrTestServer(model="sensevoice", language="yue")
    with broken, good:
        config = _sensevoice(good.url, spool, servers=(broken.url, good.url))
        with service(config) as svc:
            answer = bazarr_detect(svc.url, decode_pcm(film))
    assert answer.status_code == 200, answer.text
    assert answer.json()["language_code"] == "yue"
    assert len(broken.requests) == 1 and len(good.requests) == 1


def test_an_upload_ffmpeg_cannot_read_is_a_422_naming_the_upload(cantonese: FunasrTestServer, spool: Path) -> None:
    with service(_sensevoice(cantonese.url, spool)) as svc:
        answer = bazarr_detect(svc.url, b"this is no media file " * 100, encode="true")
    assert answer.status_code == 422, answer.text
    assert "the upload cannot be used" in answer.json()["error"] and str(spool) not in answer.text
    assert not any(f.audio_bytes for f in cantonese.files) and not list(spool.iterdir())


def test_a_short_upload_with_a_damaged_stretch_is_still_heard(cantonese: FunasrTestServer, tmp_path: Path) -> None:
    """ffmpeg complains about the scrambled middle of a 6 s file: that is no reason to refuse it for falling short
    of 30 s (it has no more to give)."""
    damaged = make_corrupt_media(tmp_path / "damaged.mp4", "garbled")
    with service(_sensevoice(cantonese.url, tmp_path)) as svc:
        answer = bazarr_detect(svc.url, damaged.read_bytes(), encode="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["language_code"] == "yue"


def test_a_client_that_gives_up_stops_the_request_to_the_server(film: Path, spool: Path) -> None:
    """Bazarr's read timeout: the server never answers; when the client goes, the connection to it is closed."""
    with FunasrTestServer(model="sensevoice", language="yue") as server:
        server.fault = "hang"
        with service(_sensevoice(server.url, spool)) as svc:
            gone = threading.Event()

            def impatient() -> None:
                with pytest.raises(requests.exceptions.ReadTimeout):
                    bazarr_detect(svc.url, decode_pcm(film), timeout=1)
                gone.set()

            caller = threading.Thread(target=impatient)
            caller.start()
            assert server.wait_for_requests(1)
            caller.join(10)
            assert gone.is_set()
            assert server.wait_for_closed(len(server.connections)), "the hung request must be abandoned"


# --- Paraformer -----------------------------------------------------------------------------------------------------
def test_a_paraformer_service_answers_its_language_and_asks_the_server_nothing(
    funasr_server: FunasrTestServer, film: Path, spool: Path
) -> None:
    """(today's answer, kept: a server of one language has nothing to detect)"""
    config = ServiceConfig(settings=Settings(server=funasr_server.url, lang="zh"), port=0, upload_dir=spool)
    with service(config) as svc:
        answer = bazarr_detect(svc.url, decode_pcm(film))
    assert answer.status_code == 200
    assert answer.json() == {"detected_language": "chinese", "language_code": "zh", "confidence": 1.0}
    assert funasr_server.connections == [] and funasr_server.requests == []


def test_words_in_a_language_we_do_not_know_count_for_none_of_ours(film: Path, spool: Path) -> None:
    """A server whose model tags a language SenseVoice does not (``<|fr|>``): its words counted for the language
    tagged before them, so 8 Chinese characters and 6 French words were Chinese with confidence 1.0. They are part
    of what was heard, never the answer: Chinese, 8 of 14."""
    server = FunasrTestServer(model="sensevoice", language=("zh", "fr"))
    with server, service(_sensevoice(server.url, spool)) as svc:
        answer = bazarr_detect(svc.url, decode_pcm(film))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"detected_language": "chinese", "language_code": "zh", "confidence": round(8 / 14, 3)}

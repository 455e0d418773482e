"""The programs that call the service, played from their real request shapes: Bazarr (python-requests), the
jellyfin-plugin-webhook, Emby, Plex, and OpenAI-style clients; plus the refusals an attacker would probe."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from funasr_subs import __version__
from funasr_subs.config import Settings
from funasr_subs.service import ServiceConfig, ServiceHandle
from funasr_subs.service.pathmap import PathMap
from funasr_subs.watch.state import StateDB
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_media
from tests.servicekit import multipart, request, service
from tests.test_service_webhooks import EPISODE, SERVER_DIR, Library, emby_payload, jellyfin_payload

TOKEN = "callers-test-token-0123456789"
BURSTS = [(500, 900), (2000, 800)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_media(tmp_path_factory.mktemp("callers") / "episode.mkv", bursts=BURSTS, duration_ms=3500)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


# --- Bazarr ---------------------------------------------------------------------------------------------------
def bazarr_transcribe(url: str, pcm: bytes, language: str) -> requests.Response:
    """Bazarr's whisperai provider: requests.post with its query and the PCM as files={'audio_file': ...}."""
    return requests.post(
        f"{url}/asr",
        params={"task": "transcribe", "language": language, "output": "srt", "encode": "false"},
        files={"audio_file": pcm},
        timeout=(5, 60),
    )


def test_bazarr_test_connection_gets_the_version_without_credentials(spool: Path) -> None:
    """Bazarr keeps only the endpoint's host and sends GET /status with no token: it needs 200 and a version."""
    with StateDB(spool.parent / "state") as db, service(ServiceConfig(port=0, token=TOKEN), db) as svc:
        reply = requests.get(f"http://127.0.0.1:{svc.port}/status", timeout=5)
        full = requests.get(f"http://127.0.0.1:{svc.port}/status", headers={"X-Api-Key": TOKEN}, timeout=5)
    assert reply.status_code == 200 and reply.json()["version"] == __version__
    assert "counts" not in reply.json() and "queued" not in reply.json(), "the queue stays behind the token"
    assert full.status_code == 200 and "counts" in full.json()


def test_bazarr_chinese_audio_gets_a_timed_srt(funasr_server: FunasrTestServer, media: Path, spool: Path) -> None:
    config = ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=spool)
    with service(config) as svc:
        reply = bazarr_transcribe(svc.url, decode_pcm(media), "zh")
    assert reply.status_code == 200, reply.text
    assert reply.text.count(" --> ") == len(BURSTS)


@pytest.mark.parametrize("language", ["ja", "en", "ko"])
def test_bazarr_asking_for_another_language_is_refused_before_the_upload_is_stored(
    funasr_server: FunasrTestServer, media: Path, spool: Path, language: str
) -> None:
    """Bazarr files the result under the language it asked for: Japanese audio must not get a Chinese transcript
    saved as a Japanese subtitle. A 4xx is "no subtitle" for Bazarr."""
    config = ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=spool)
    with service(config) as svc:
        reply = bazarr_transcribe(svc.url, decode_pcm(media), language)
    assert reply.status_code == 422
    assert f"language={language}" in reply.json()["error"] and "chinese" in reply.json()["error"]
    assert funasr_server.files == [] and not list(spool.iterdir())


def test_language_codes_the_model_speaks_are_accepted(
    funasr_server: FunasrTestServer, media: Path, spool: Path
) -> None:
    config = ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=spool)
    pcm = decode_pcm(media)
    with service(config) as svc:
        codes = [bazarr_transcribe(svc.url, pcm, code).status_code for code in ("zh", "zh-CN", "chi", "zho")]
    assert codes == [200] * 4


# --- Jellyfin / Emby / Plex --------------------------------------------------------------------------------------
@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    root = tmp_path / "media" / "tv"
    season = root / "Show One" / "Season 01"
    season.mkdir(parents=True)
    episode = season / EPISODE
    episode.write_bytes(b"\x1aE\xdf\xa3 pretend mkv")
    with StateDB(tmp_path / "state") as db:
        yield Library(root, season, episode, db)


def hooks_config(library: Library, token: str | None = TOKEN) -> ServiceConfig:
    return ServiceConfig(
        port=0, roots=(library.root,), path_map=PathMap.parse(["/data/tv=" + str(library.root)]), token=token
    )


def test_jellyfin_plugin_text_plain_body_is_read(library: Library) -> None:
    """jellyfin-plugin-webhook's Generic destination posts its template output; with a path in the template."""
    payload = {**jellyfin_payload(), "Path": f"{SERVER_DIR}/{EPISODE}"}
    with service(hooks_config(library), library.db) as svc:
        answer = request(
            svc,
            "POST",
            f"/webhook/jellyfin?token={TOKEN}",
            json.dumps(payload).encode(),
            {"Content-Type": "text/plain; charset=utf-8"},
        )
    assert answer.status == 202, answer.body
    assert library.queued() == [(library.episode, "jellyfin")]


def emby_form(path: str) -> tuple[bytes, str]:
    return multipart([("data", None, None, json.dumps(emby_payload(path)).encode())])


def test_emby_library_new_with_token_in_the_query(library: Library) -> None:
    body, ctype = emby_form(f"{SERVER_DIR}/{EPISODE}")
    with service(hooks_config(library), library.db) as svc:
        answer = request(svc, "POST", f"/webhook/emby?token={TOKEN}", body, {"Content-Type": ctype})
    assert answer.status == 202 and library.queued() == [(library.episode, "emby")]


def test_one_token_parameter_only(library: Library) -> None:
    body, ctype = emby_form(f"{SERVER_DIR}/{EPISODE}")
    guesses = "&".join(f"token=g{i}" for i in range(500)) + f"&token={TOKEN}"  # 500 guesses in one request
    with service(hooks_config(library), library.db) as svc:
        answer = request(svc, "POST", f"/webhook/emby?{guesses}", body, {"Content-Type": ctype})
    assert answer.status == 400 and "give it once" in answer.json()["error"]
    assert library.queued() == []


def test_a_non_media_file_is_not_queued(library: Library) -> None:
    notes = library.season / "Show One - S01E01.nfo"
    notes.write_text("<episodedetails/>", encoding="utf-8")
    body, ctype = emby_form(f"{SERVER_DIR}/{notes.name}")
    with service(hooks_config(library), library.db) as svc:
        answer = request(svc, "POST", "/webhook/emby", body, {"Content-Type": ctype, "X-Api-Key": TOKEN})
    assert answer.status == 422 and "not a media file" in json.dumps(answer.json())
    assert library.db.jobs() == []


@pytest.mark.parametrize(
    "payload",
    [
        b'{"Event": "library.new", "Item": ' * 100_000 + b"{}" + b"}" * 100_000,
        json.dumps(emby_payload(f"{SERVER_DIR}/bad\ud800name.mkv")).encode(),
    ],
    ids=["deep-json", "surrogate-path"],
)
def test_hostile_payloads_are_400_not_500(library: Library, payload: bytes) -> None:
    with service(hooks_config(library), library.db) as svc:
        answer = request(
            svc, "POST", "/webhook/emby", payload, {"Content-Type": "application/json", "X-Api-Key": TOKEN}
        )
    assert answer.status == 400, answer.body
    assert library.db.jobs() == []


def test_json_limit_names_no_setting_it_does_not_obey(library: Library) -> None:
    big = b'{"x": "' + b"a" * (1024 * 1024) + b'"}'
    with service(hooks_config(library), library.db) as svc:
        answer = request(
            svc, "POST", "/webhook/jellyfin", big, {"Content-Type": "application/json", "X-Api-Key": TOKEN}
        )
    assert answer.status == 413
    assert "max_upload_mb" not in answer.json()["error"] and "fixed limit" in answer.json()["error"]


def test_an_unauthenticated_caller_cannot_tell_missing_from_outside_or_see_link_targets(
    library: Library, tmp_path: Path
) -> None:
    """No token configured (a local service): a refusal does not say whether a file exists or where a link points."""
    secret = tmp_path / "private" / "secret-name.mkv"
    secret.parent.mkdir()
    secret.write_bytes(b"x")
    os.symlink(secret, library.season / "link.mkv")
    probes = [f"{SERVER_DIR}/missing.mkv", f"{SERVER_DIR}/link.mkv", "/etc/passwd", "/etc/no-such-file", SERVER_DIR]
    answers = []
    with service(hooks_config(library, token=None), library.db) as svc:
        for path in probes:
            body, ctype = emby_form(path)
            answer = request(svc, "POST", "/webhook/emby", body, {"Content-Type": ctype})
            answers.append((answer.status, answer.json()["refused"][0]["reason"]))
    assert len(set(answers)) == 1, answers
    assert answers[0][0] == 403
    assert "secret-name" not in json.dumps(answers) and "private" not in json.dumps(answers)


# --- OpenAI's transcription API ----------------------------------------------------------------------------------
def openai_post(svc: ServiceHandle, media: Path, **fields: str | list[str]) -> requests.Response:
    """What the openai SDK sends: multipart ``file`` plus fields; lists as repeated ``name[]`` parts."""
    data: list[tuple[str, str]] = [("model", "whisper-1")]
    for key, value in fields.items():
        data += [(f"{key}[]", v) for v in value] if isinstance(value, list) else [(key, value)]
    return requests.post(
        f"{svc.url}/v1/audio/transcriptions",
        data=data,
        files={"file": (media.name, media.read_bytes(), "video/x-matroska")},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )


def test_openai_transcriptions_every_response_format(funasr_server: FunasrTestServer, media: Path, spool: Path) -> None:
    config = ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=spool, token=TOKEN)
    with service(config) as svc:
        plain = openai_post(svc, media)
        text = openai_post(svc, media, response_format="text")
        srt = openai_post(svc, media, response_format="srt")
        vtt = openai_post(svc, media, response_format="vtt")
        verbose = openai_post(
            svc, media, response_format="verbose_json", timestamp_granularities=["segment", "word"], language="zh"
        )
        bad = openai_post(svc, media, language="ja")
        wrong = openai_post(svc, media, response_format="docx")
        anonymous = requests.post(f"{svc.url}/v1/audio/transcriptions", files={"file": b"x"}, timeout=10)
    assert plain.status_code == 200 and set(plain.json()) == {"text"} and plain.json()["text"]
    assert text.text.strip() == plain.json()["text"]
    assert srt.text.count(" --> ") == len(BURSTS) and vtt.text.startswith("WEBVTT")
    data = verbose.json()
    assert (
        data["task"] == "transcribe" and data["language"] == "chinese" and data["duration"] == pytest.approx(3.5, 0.1)
    )
    starts = [round(s["start"] * 1000) for s in data["segments"]]
    assert starts == pytest.approx([b[0] for b in BURSTS], abs=100)
    assert data["words"] and all(w["start"] <= w["end"] for w in data["words"])
    assert data["text"] == plain.json()["text"]
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "language"
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "response_format"
    assert anonymous.status_code == 401 and "message" in anonymous.json()["error"]
    assert len(funasr_server.files) == 1, "the same upload is answered from the result cache"

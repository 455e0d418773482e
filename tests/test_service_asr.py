"""``POST /asr`` and ``/detect-language`` over real HTTP, through the real FunASR test server: Bazarr's requests."""

from __future__ import annotations

import http.client
import json
import os
import threading
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.config import Settings
from funasr_subs.service import ServiceConfig
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_media
from tests.servicekit import multipart, request, service

BURSTS = [(1000, 1500), (4000, 1200)]

# What Bazarr's Whisper provider (requests.Session + files={"audio_file": bytes}) puts on the wire.
BAZARR_HEADERS = {"User-Agent": "Subliminal/2.1.0", "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}


def bazarr_asr(
    port: int, data: bytes, *, encode: str, output: str = "srt", conn: http.client.HTTPConnection | None = None
):  # type: ignore[no-untyped-def]
    body, ctype = multipart([("audio_file", "audio_file", None, data)])
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        f"/asr?task=transcribe&language=zh&output={output}&encode={encode}",
        body=body,
        headers={**BAZARR_HEADERS, "Content-Type": ctype},
    )
    response = conn.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    if own:
        conn.close()
    return result


def assert_cues_at_bursts(srt: str, bursts: list[tuple[int, int]]) -> None:
    subs = pysubs2.SSAFile.from_string(srt, format_="srt")
    assert len(subs) == len(bursts), srt
    for event, (start, duration) in zip(subs, bursts, strict=True):
        assert abs(event.start - start) <= 100, (event.start, start)
        assert event.end >= start + duration - 100
        assert event.text.strip()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_media(tmp_path_factory.mktemp("asr") / "episode.mkv", bursts=BURSTS, duration_ms=6000)


@pytest.fixture
def config(funasr_server: FunasrTestServer, tmp_path: Path) -> ServiceConfig:
    spool = tmp_path / "spool"
    spool.mkdir()
    return ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=spool)


def test_bazarr_encode_false_raw_pcm_gives_timed_srt(
    config: ServiceConfig, media: Path, funasr_server: FunasrTestServer
) -> None:
    pcm = decode_pcm(media)  # what Bazarr's ffmpeg call produces: s16le mono 16 kHz
    with service(config) as svc:
        status, headers, body = bazarr_asr(svc.port, pcm, encode="false")
    assert status == 200, body
    assert headers["Asr-Engine"] == "funasr"
    assert_cues_at_bursts(body.decode("utf-8"), BURSTS)
    assert funasr_server.requests[-1]["wav_format"] == "pcm"
    assert not list(Path(config.upload_dir or "").iterdir()), "the spooled upload must be deleted"


def test_bazarr_encode_true_any_media_gives_timed_srt(config: ServiceConfig, media: Path) -> None:
    with service(config) as svc:
        status, _, body = bazarr_asr(svc.port, media.read_bytes(), encode="true")
    assert status == 200, body
    assert_cues_at_bursts(body.decode("utf-8"), BURSTS)


def test_other_outputs_vtt_json_txt_tsv(config: ServiceConfig, media: Path) -> None:
    pcm = decode_pcm(media)
    with service(config) as svc:
        got = {out: bazarr_asr(svc.port, pcm, encode="false", output=out) for out in ("vtt", "json", "txt", "tsv")}
    assert all(status == 200 for status, _, _ in got.values())
    vtt = got["vtt"][2].decode()
    assert vtt.startswith("WEBVTT")
    assert_cues_at_bursts(pysubs2.SSAFile.from_string(vtt, format_="vtt").to_string("srt"), BURSTS)
    data = json.loads(got["json"][2])
    assert [round(s["start"] * 1000) for s in data["segments"]] == pytest.approx([b[0] for b in BURSTS], abs=100)
    # the default drops 。 at a cue end: a space stands for it in the running text
    assert data["text"] == " ".join(s["text"] for s in data["segments"]) and data["language"] == "zh"
    txt_lines = got["txt"][2].decode().splitlines()
    assert txt_lines == [s["text"] for s in data["segments"]]
    tsv = got["tsv"][2].decode().splitlines()
    assert tsv[0] == "start\tend\ttext" and len(tsv) == 1 + len(BURSTS)
    assert abs(int(tsv[1].split("\t")[0]) - BURSTS[0][0]) <= 100


def test_detect_language_reports_the_model_language(config: ServiceConfig, media: Path) -> None:
    body, ctype = multipart([("audio_file", "audio_file", None, decode_pcm(media))])
    with service(config) as svc:
        answer = request(svc, "POST", "/detect-language?encode=false", body, {"Content-Type": ctype})
    assert answer.status == 200
    assert answer.json()["detected_language"] == "chinese" and answer.json()["language_code"] == "zh"


def test_keep_alive_session_detect_then_transcribe(config: ServiceConfig, media: Path) -> None:
    """Bazarr's requests.Session reuses one connection: detect-language, then /asr on the same socket."""
    pcm = decode_pcm(media)
    with service(config) as svc:
        conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=60)
        body, ctype = multipart([("audio_file", "audio_file", None, pcm)])
        conn.request("POST", "/detect-language?encode=false", body=body, headers={"Content-Type": ctype})
        first = conn.getresponse()
        assert first.status == 200 and json.loads(first.read())["language_code"] == "zh"
        status, _, srt = bazarr_asr(svc.port, pcm, encode="false", conn=conn)
        conn.close()
    assert status == 200
    assert_cues_at_bursts(srt.decode(), BURSTS)


def test_concurrent_requests_are_all_served(
    config: ServiceConfig, tmp_path: Path, funasr_server: FunasrTestServer
) -> None:
    """Four uploads at once (two FunASR slots) and health checks meanwhile: every one answered correctly."""
    layouts = [[(500 + 300 * i, 800)] for i in range(4)]
    pcms = [decode_pcm(make_media(tmp_path / f"c{i}.wav", bursts=b, duration_ms=2500)) for i, b in enumerate(layouts)]
    results: dict[int, tuple[int, bytes]] = {}
    with service(config) as svc:

        def one(i: int) -> None:
            status, _, body = bazarr_asr(svc.port, pcms[i], encode="false")
            results[i] = (status, body)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        health = [request(svc, "GET", "/health").status for _ in range(5)]
        for t in threads:
            t.join(60)
    assert health == [200] * 5
    assert sorted(results) == [0, 1, 2, 3]
    for i, (status, body) in results.items():
        assert status == 200
        assert_cues_at_bursts(body.decode(), layouts[i])
    assert len(funasr_server.requests) == 4


def test_server_down_is_503_with_retry_after(
    config: ServiceConfig, media: Path, funasr_server: FunasrTestServer
) -> None:
    funasr_server.fault = "refuse"
    quick = ServiceConfig(
        settings=config.settings.replace(retries=0, connect_timeout=2), port=0, upload_dir=config.upload_dir
    )
    with service(quick) as svc:
        status, headers, body = bazarr_asr(svc.port, decode_pcm(media), encode="false")
    assert status == 503 and 1 <= int(headers["Retry-After"]) <= 30  # when the server is probed next
    assert "FunASR server is unavailable" in json.loads(body)["error"]
    assert not list(Path(config.upload_dir or "").iterdir())


def test_garbage_upload_with_encode_true_is_422(config: ServiceConfig) -> None:
    with service(config) as svc:
        status, _, body = bazarr_asr(svc.port, os.urandom(4096), encode="true")
    assert status == 422, body
    message = json.loads(body)["error"]
    assert "funasr-subs-upload" not in message, "the spool file's name must not leak"


def test_silence_gives_an_empty_subtitle(config: ServiceConfig) -> None:
    silence = bytes(16000 * 2 * 2)  # two seconds of digital silence, s16le 16 kHz
    with service(config) as svc:
        status, _, body = bazarr_asr(svc.port, silence, encode="false")
    assert status == 200 and body.strip() == b""


def test_a_pool_of_servers_serves_bazarr_while_one_is_down(
    config: ServiceConfig, media: Path, funasr_server: FunasrTestServer
) -> None:
    with FunasrTestServer() as down:
        down.fault = "refuse"
        pool = config.settings.replace(servers=(down.url, funasr_server.url), retries=0, connect_timeout=2)
        with service(ServiceConfig(settings=pool, port=0, upload_dir=config.upload_dir)) as svc:
            for i in range(3):  # the first finds one server down; the next ones go straight to the other
                upload = decode_pcm(media) + bytes(320 * i)  # not the same bytes: the result cache would answer
                status, _, body = bazarr_asr(svc.port, upload, encode="false")
                assert status == 200, body
                assert_cues_at_bursts(body.decode("utf-8"), BURSTS)
    assert len(funasr_server.requests) == 3 and down.requests == []


@pytest.mark.parametrize("fault", ["deep_json", "inf_time", "huge_times"])
def test_a_reply_that_cannot_be_right_is_502_alone_and_goes_to_the_good_server_in_a_pool(
    fault: str, config: ServiceConfig, media: Path, funasr_server: FunasrTestServer
) -> None:
    with FunasrTestServer() as bad:
        bad.fault = fault  # type: ignore[assignment]
        alone = config.settings.replace(server=bad.url, retries=0)
        with service(ServiceConfig(settings=alone, port=0, upload_dir=config.upload_dir)) as svc:
            status, _, body = bazarr_asr(svc.port, decode_pcm(media), encode="false")
        assert status == 502, body
        assert "could not be used" in json.loads(body)["error"]
        pool = config.settings.replace(servers=(bad.url, funasr_server.url), retries=0)
        with service(ServiceConfig(settings=pool, port=0, upload_dir=config.upload_dir)) as svc:
            status, _, body = bazarr_asr(svc.port, decode_pcm(media) + bytes(320), encode="false")
        assert status == 200, body
        assert_cues_at_bursts(body.decode("utf-8"), BURSTS)
        assert len(bad.files) == 2 and len(funasr_server.requests) == 1

"""The real ``openai`` package against our real service: what its users' code does, and what it gets back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pysubs2
import pytest
import requests

from funasr_subs.config import Settings
from funasr_subs.service import ServiceConfig, ServiceHandle
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.servicekit import service

TOKEN = "openai-sdk-test-token-0123456789"
BURSTS = [(500, 900), (2000, 800)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_media(tmp_path_factory.mktemp("openai") / "talk.m4a", bursts=BURSTS, duration_ms=3500, video=False)


@pytest.fixture
def svc(funasr_server: FunasrTestServer, tmp_path: Path) -> Iterator[ServiceHandle]:
    config = ServiceConfig(settings=Settings(server=funasr_server.url), port=0, upload_dir=tmp_path, token=TOKEN)
    with service(config) as handle:
        yield handle


def client(svc: ServiceHandle, key: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{svc.url}/v1", max_retries=0, timeout=30)


def test_stream_true_yields_the_transcript_as_openai_streams_it(svc: ServiceHandle, media: Path) -> None:
    sdk = client(svc)
    with media.open("rb") as audio:
        whole = sdk.audio.transcriptions.create(model="whisper-1", file=audio)
    with media.open("rb") as audio:
        events = list(sdk.audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}, kinds
    assert len(kinds) - 1 == len(BURSTS)  # one delta per cue
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert done.text and done.text == whole.text
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta") == done.text


def test_models_are_listed_and_errors_come_in_openais_shape(svc: ServiceHandle, media: Path) -> None:
    sdk = client(svc)
    assert {m.id for m in sdk.models.list()} >= {"whisper-1"}
    assert sdk.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("gpt-9")
    assert "gpt-9" in missing.value.message and missing.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.files.list()  # an endpoint we do not have
    assert "no such endpoint" in unknown.value.message
    with pytest.raises(openai.AuthenticationError) as denied:
        client(svc, key="wrong-key-0123456789").models.list()
    assert "token" in denied.value.message and denied.value.code == "invalid_api_key"
    with pytest.raises(openai.BadRequestError) as bad, media.open("rb") as audio:
        sdk.audio.transcriptions.create(model="whisper-1", file=audio, stream=True, response_format="srt")
    assert bad.value.param == "stream"


def test_the_text_has_a_space_where_a_cue_break_dropped_its_mark(svc: ServiceHandle, media: Path) -> None:
    """The default drops ，。 at a cue's end; the running text keeps a space there, as inside a line (was: the cues
    run together, ``谁知盘中餐`` for ``谁知盘。中餐``)."""
    sdk = client(svc)
    with media.open("rb") as audio:
        srt = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    texts = [event.plaintext.replace("\n", " ") for event in pysubs2.SSAFile.from_string(srt).events]
    assert len(texts) == len(BURSTS)
    with media.open("rb") as audio:
        whole = sdk.audio.transcriptions.create(model="whisper-1", file=audio)
    assert whole.text == " ".join(texts)
    with media.open("rb") as audio:
        events = list(sdk.audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    assert events[-1].type == "transcript.text.done" and events[-1].text == whole.text


def test_the_event_stream_says_it_is_utf8(svc: ServiceHandle, media: Path) -> None:
    """A plain HTTP client (requests, as scripts use it) decodes the stream right: the header names UTF-8 (was: no
    charset, so ``text/*`` read as ISO-8859-1 and every Chinese character came out as mojibake)."""
    with media.open("rb") as audio:
        answer = requests.post(
            f"{svc.url}/v1/audio/transcriptions",
            data={"model": "whisper-1", "stream": "true"},
            files={"file": ("talk.m4a", audio)},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
    done = [line for line in answer.text.splitlines() if "transcript.text.done" in line]
    assert len(done) == 1 and "锄禾" in done[0], answer.text[:200]

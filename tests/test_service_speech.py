"""The service's cues on the speech heard, as ``transcribe`` makes them: Bazarr's raw PCM (``encode=false``) and an
OpenAI client's upload, real espeak-ng speech through the stand-in timed like FunASR (``habits=True``)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import openai
import pysubs2
import pytest
import requests

from funasr_subs.config import Settings
from funasr_subs.model import Cue, Token
from funasr_subs.service import ServiceConfig
from funasr_subs.service.asr import Recognised, pack_speech
from funasr_subs.service.openai import words_in_cues
from tests.funasr_server import FunasrTestServer
from tests.servicekit import service
from tests.speech import ZH_SENTENCES, SpeechAudio, build_speech, espeak_available, write_speech
from tests.test_service_callers import bazarr_transcribe

TOKEN = "service-speech-test-token-0123456789"
#: The stand-in's first answer has no words for the speech here: the 5th and 6th sentences (fault "lose").
LOSE_AT_MS, LOSE_MS = 15_000, 10_000


@pytest.fixture(scope="module")
def talk() -> SpeechAudio:
    """Ten Chinese sentences with pauses of 180-1500 ms, in music and noise at 20 dB (44 s)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    return build_speech(ZH_SENTENCES, snr_db=20, seed=2)


def start_errors(audio: SpeechAudio, starts: list[int]) -> list[int]:
    """For each sentence, how far the nearest cue start is from its true onset (ms)."""
    return [min(abs(start - onset) for start in starts) for onset, _ in audio.truth]


def test_bazarr_raw_pcm_cues_start_on_the_speech_onsets(talk: SpeechAudio, tmp_path: Path) -> None:
    """Bazarr uploads raw PCM (``encode=false``): it is heard as it is sent, every cue starts within 100 ms of its
    sentence's onset, where the token times alone (``--no-speech-activity``, and every answer before) put two of
    them 400-600 ms early. The speech the first answer has no words for is sent again, as ``transcribe`` does, and
    the result cache keeps the speech: the same audio asked again as JSON comes back with the same times."""
    server = FunasrTestServer(habits=True, lose_at_ms=LOSE_AT_MS, lose_ms=LOSE_MS, lose_requests=1)
    server.fault = "lose"
    with server:
        config = ServiceConfig(settings=Settings(server=server.url), port=0, upload_dir=tmp_path)
        with service(config) as svc:
            srt = bazarr_transcribe(svc.url, talk.pcm, "zh")
            requests_made = len(server.files)
            as_json = requests.post(
                f"{svc.url}/asr",
                params={"task": "transcribe", "language": "zh", "output": "json", "encode": "false"},
                files={"audio_file": talk.pcm},
                timeout=(5, 60),
            )
            assert len(server.files) == requests_made, "asked again: answered from the result cache"
        server.fault = None
        deaf = ServiceConfig(settings=Settings(server=server.url, speech_activity=False), port=0, upload_dir=tmp_path)
        with service(deaf) as svc:
            tokens_only = bazarr_transcribe(svc.url, talk.pcm, "zh")
    assert srt.status_code == 200 and as_json.status_code == 200, srt.text
    assert requests_made == 2, "the stretch without words was sent again on its own"
    cues = [(e.start, e.end) for e in pysubs2.SSAFile.from_string(srt.text)]
    after = start_errors(talk, [s for s, _ in cues])
    before = start_errors(talk, [e.start for e in pysubs2.SSAFile.from_string(tokens_only.text)])
    assert max(after) <= 100 and statistics.median(after) <= 20, after
    assert sorted(before)[-2] >= 400, before  # what the service answered before: two cues far too early
    lost = [(s, e) for s, e in talk.truth if s >= LOSE_AT_MS and e <= LOSE_AT_MS + LOSE_MS]
    assert len(lost) == 2 and all(any(a < e and b > s for a, b in cues) for s, e in lost), cues
    segments = json.loads(as_json.text)["segments"]
    assert [(round(s["start"] * 1000), round(s["end"] * 1000)) for s in segments] == cues


def test_openai_segments_and_words_follow_the_cue_edges(talk: SpeechAudio, tmp_path: Path) -> None:
    """The openai package's ``verbose_json`` with segments and words: each segment starts within 100 ms of its
    sentence's onset, and no word starts before its segment or ends after it (a first token that ran on from the
    pause before starts where the speech does)."""
    media = write_speech(tmp_path / "talk.m4a", talk)
    with FunasrTestServer(habits=True) as server:
        config = ServiceConfig(settings=Settings(server=server.url), port=0, upload_dir=tmp_path, token=TOKEN)
        with service(config) as svc, media.open("rb") as audio:
            sdk = openai.OpenAI(api_key=TOKEN, base_url=f"{svc.url}/v1", max_retries=0, timeout=60)
            verbose = sdk.audio.transcriptions.create(
                model="whisper-1",
                file=audio,
                response_format="verbose_json",
                timestamp_granularities=["segment", "word"],
            )
    segments = [(round(s.start * 1000), round(s.end * 1000)) for s in verbose.segments or []]
    errors = start_errors(talk, [s for s, _ in segments])
    assert max(errors) <= 100 and statistics.median(errors) <= 20, errors
    words = [(round(w.start * 1000), round(w.end * 1000)) for w in verbose.words or []]
    assert len(words) >= len("".join(ZH_SENTENCES)) * 0.9
    assert all(any(s <= a <= b <= e for s, e in segments) for a, b in words), (segments, words)
    assert [a for a, _ in words] == sorted(a for a, _ in words)


def test_a_word_stays_inside_the_segment_it_overlaps_most() -> None:
    cues = [Cue(1000, 2500, ("今天",)), Cue(3000, 4000, ("明天",))]
    tokens = [
        Token("今", 600, 1200),  # ran on from the pause before: starts with its segment
        Token(" ", 1200, 1300),  # whitespace: no word, as no cue shows it
        Token("天", 1300, 2900),  # ran on into the pause: ends with its segment
        Token("明", 2450, 3400),  # overlaps the second more: starts with it
        Token("天", 3500, 4600),
    ]
    assert words_in_cues(tokens, cues) == [
        ("今", 1000, 1200), ("天", 1300, 2500), ("明", 3000, 3400), ("天", 3500, 4000)
    ]  # fmt: skip
    assert words_in_cues([Token("外", 2600, 2700)], cues) == [("外", 2500, 2500)]  # nearest: the cue before
    assert words_in_cues(tokens[:1], []) == [("今", 600, 1200)]


def test_the_cache_keeps_the_speech_packed() -> None:
    """Eight bytes a speech interval (a speech run every 2 s of a 2-hour film: 29 kB a cached entry), read back."""
    heard = [(0, 1500), (2000, 2_147_483_000)]
    kept = Recognised((), 0, pack_speech(heard))
    assert kept.speech == heard and len(kept.heard) == 16
    assert Recognised((), 0).speech == []

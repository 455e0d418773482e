"""Issue 22: the servers behind one interface — the C++ websocket server and funasr-server's HTTP API — and cues
timed by our own speech activity, segment by segment, where a server gives text without usable times (SenseVoice on
either, Paraformer through funasr-server). Real espeak-ng speech, the real stand-ins, the real CLI."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from funasr_subs.protocol import parse_reply
from funasr_subs.recognition.httpapi import reply_from_answer, wav_header
from funasr_subs.recognition.segments import marks_after, plan_pieces, spread, timed_reply
from funasr_subs.sidecar import read_sidecar
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.other_servers import FunasrHttpServer, estimated_segments
from tests.speech import EN_SENTENCES, ZH_SENTENCES, SpeechAudio, build_speech, espeak_available, write_speech
from tests.tls_certs import server_ssl_context

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")
#: 25 s of speech: three pieces of at most 15 s for a segmented server
PAUSES_MS = (700, 1200, 900)


# --- the pure core ---------------------------------------------------------------------------------------------
def test_pieces_are_cut_at_the_longest_pauses_first_and_padded_within_their_half_of_a_pause() -> None:
    speech = [(1000, 4000), (4300, 8000), (10000, 13000), (13200, 17000), (17500, 19000)]
    pieces = plan_pieces(speech, 20_000, max_ms=8000, pad_ms=200)
    # the 2 s pause first, then the 500 ms one (not the 200 or 300 ms ones); the pads stop halfway into a pause
    assert [(p.start_ms, p.end_ms) for p in pieces] == [(800, 8200), (9800, 17200), (17300, 19200)]
    assert pieces[0].speech == ((200, 3200), (3500, 7200))  # ms of the piece
    assert all(p.duration_ms <= 8000 + 400 for p in pieces)
    (long,) = [plan_pieces([(0, 40_000)], 40_000, max_ms=15_000, pad_ms=0)]
    assert [(p.start_ms, p.end_ms) for p in long] == [(0, 13_333), (13_333, 26_666), (26_666, 40_000)]


def test_text_is_spread_over_the_speech_by_characters_and_no_token_spans_a_pause() -> None:
    times = spread(["hello", "a", "你", "好"], [(0, 800), (1800, 2000)])
    assert times == [(0, 666), (666, 800), (1800, 1900), (1900, 2000)]  # by the middle of 5 + 1 + 1 + 1 of 1000
    assert all(not (a < 1800 and b > 800) for a, b in times)
    # a mark near a pause moves the pause to it: 好 after the comma starts the second interval
    assert spread(list("一二三四五六"), [(0, 1000), (2000, 3000)], marks_after("一二，三四五六"))[2] == (2000, 2250)


def test_a_reply_without_times_becomes_a_timed_reply_without_its_tags() -> None:
    reply = timed_reply(
        "<|zh|><|HAPPY|><|BGM|> 你好。<|en|><|NEUTRAL|><|Speech|> good day.", [(100, 500), (900, 1400)], "a"
    )
    transcript = parse_reply(reply)
    assert "<|" not in transcript.text and "HAPPY" not in transcript.text
    assert [(t.text.strip("。."), t.start_ms, t.end_ms) for t in transcript.tokens] == [
        ("你", 100, 300), ("好", 300, 500), ("good", 900, 1185), ("day", 1185, 1400)
    ]  # fmt: skip


def test_funasr_server_answers_become_replies_real_times_only_from_fun_asr_nano() -> None:
    nano = {"text": "你好世界", "duration": 3.0, "segments": [
        {"id": 0, "start": 1.0, "end": 1.6, "text": "你好", "words": [
            {"word": "你", "start": 1.0, "end": 1.2}, {"word": "好", "start": 1.3, "end": 1.6}]},
        {"id": 1, "start": 2.0, "end": 2.4, "text": "世界", "words": []}]}  # fmt: skip
    times = [(t.start_ms, t.end_ms) for t in parse_reply(reply_from_answer(nano, True, "a")).tokens]
    assert times == [(1000, 1200), (1300, 1600), (2000, 2200), (2200, 2400)]  # its words; else its segment
    # SenseVoice's and Paraformer's segments are the duration split by text length: not kept as times
    estimated = {"text": "你好世界", "duration": 3.0, "segments": estimated_segments("你好世界", 3.0)}
    assert "timestamp" not in reply_from_answer(estimated, False, "a")
    # (the stand-in's estimate, as build_openai_fallback_segments makes it: parts of <= 80 characters by length)
    parts = estimated_segments(" ".join(["word"] * 40), 10.0)
    assert len(parts) == 3 and parts[0]["start"] == 0.0 and parts[-1]["end"] == 10.0
    assert all(len(p["text"]) <= 80 for p in parts) and parts[1]["start"] == parts[0]["end"]
    with wave.open(io.BytesIO(wav_header(3200) + bytes(3200))) as wav:  # what soundfile reads on the server
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()) == (16000, 1, 2, 1600)


# --- through the CLI -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def talk() -> SpeechAudio:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    return build_speech(ZH_SENTENCES[:6], pauses_ms=PAUSES_MS)


@pytest.fixture
def film(talk: SpeechAudio, tmp_media_dir: Path) -> Path:
    return write_speech(tmp_media_dir / "talk.mkv", talk)


def _transcribe(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["transcribe", "--retries", "1", "--retry-backoff", "0.05", *args])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err, err
    return err


def _start_errors(srt: Path, truth: tuple[tuple[int, int], ...]) -> list[int]:
    """For each true sentence, how far the nearest cue start is from its start (ms)."""
    cues = pysubs2.load(str(srt))
    return [min(abs(c.start - start) for c in cues) for start, _ in truth]


def _cues_inside_speech(srt: Path, truth: tuple[tuple[int, int], ...], within: int) -> bool:
    """Every cue starts in a sentence (or ``within`` ms of one), never in the pause between two."""
    return all(any(s - within <= c.start <= e for s, e in truth) for c in pysubs2.load(str(srt)))


@pytest.fixture
def sensevoice_cpp() -> Iterator[FunasrTestServer]:
    with FunasrTestServer(model="sensevoice") as server:
        yield server


@needs_espeak
@pytest.mark.parametrize("model", ["sensevoice", "paraformer"])
def test_the_same_speech_gives_cues_within_100_ms_from_the_websocket_server_and_250_ms_through_funasr_server(
    funasr_server: FunasrTestServer, film: Path, talk: SpeechAudio, capsys: pytest.CaptureFixture[str], model: str
) -> None:
    """The C++ server's own token times first (the reference), then funasr-server's untimed models, segment-timed."""
    _transcribe(capsys, "--server", funasr_server.url, str(film))
    srt = film.with_name("talk.zh.srt")
    assert max(_start_errors(srt, talk.truth)) <= 100 and _cues_inside_speech(srt, talk.truth, 100)
    assert len(funasr_server.files) == 1  # a whole file: its times are the server's
    with FunasrHttpServer(models=(model,)) as http_api:
        err = _transcribe(capsys, "--server", http_api.url, "--overwrite", str(film))
    assert max(_start_errors(srt, talk.truth)) <= 250 and _cues_inside_speech(srt, talk.truth, 250)
    asked = http_api.transcriptions
    assert {(a["model"], a["response_format"]) for a in asked} == {(model, "verbose_json")}
    assert len(asked) == 3 and all(a["duration_ms"] <= 15_000 + 400 for a in asked)  # pieces, cut at pauses
    assert "times from our speech activity" in err
    side = read_sidecar(film.with_name("talk.funasr.json"))
    assert side.reply["timing"] == "segments" and side.speech is not None and len(side.audio["pieces"]) == 3


@needs_espeak
def test_fun_asr_nano_through_funasr_server_keeps_its_own_times(
    film: Path, talk: SpeechAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nano's segments and words are real: they win over the spread (its words sit where the stand-in heard
    sound, which is not where a character count would put them)."""
    with FunasrHttpServer(models=("fun-asr-nano (vLLM)",)) as http_api:
        _transcribe(capsys, "--server", http_api.url, str(film))
    side = read_sidecar(film.with_name("talk.funasr.json"))
    assert {a["model"] for a in http_api.transcriptions} == {"fun-asr-nano"}
    assert max(_start_errors(film.with_name("talk.zh.srt"), talk.truth)) <= 100
    assert "timing" not in side.reply and len(http_api.transcriptions) == 3  # its own times, not the spread


@needs_espeak
def test_sensevoice_on_the_cpp_server_is_segment_timed_within_250_ms_without_its_tags(
    sensevoice_cpp: FunasrTestServer, film: Path, talk: SpeechAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _transcribe(capsys, "--server", sensevoice_cpp.url, "--language", "zh", str(film))
    srt = film.with_name("talk.zh.srt")
    assert max(_start_errors(srt, talk.truth)) <= 250 and _cues_inside_speech(srt, talk.truth, 250)
    assert "<|" not in srt.read_text(encoding="utf-8") and "NEUTRAL" not in srt.read_text(encoding="utf-8")
    # the whole file once (it said text without times), then its speech segments
    assert sensevoice_cpp.files[0].audio_bytes // 32 >= talk.duration_ms - 100
    assert len(sensevoice_cpp.files) == 1 + 3 and "text without times" in err
    assert {r["svs_lang"] for r in sensevoice_cpp.requests} == {"zh"}


@needs_espeak
@pytest.mark.parametrize(
    ("language", "sentences", "voice"),
    [("en", EN_SENTENCES, "en"), ("yue", ZH_SENTENCES, "cmn"), ("ja", ZH_SENTENCES, "cmn")],
)
def test_languages_through_funasr_server_are_tagged_and_keep_their_profiles_rules(
    tmp_media_dir: Path, capsys: pytest.CaptureFixture[str], language: str, sentences: tuple[str, ...], voice: str
) -> None:
    audio = build_speech(sentences[:4], voice=voice, pauses_ms=(1500,))  # room to stay on screen (ja: 4 a second)
    media = write_speech(tmp_media_dir / "talk.mka", audio)
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        _transcribe(capsys, "--server", http_api.url, "--language", language, str(media))
    srt = media.with_name(f"talk.{language}.srt")
    assert srt.exists() and not media.with_name("talk.zh.srt").exists()
    assert {a["language"] for a in http_api.transcriptions} == {language}
    assert max(_start_errors(srt, audio.truth)) <= 250
    assert main(["check", "--profile", language, str(srt)]) == 0
    assert "all within the rules" in capsys.readouterr().out


@needs_espeak
def test_failover_between_two_funasr_servers_and_a_cache_hit_the_second_time(
    film: Path, talk: SpeechAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunasrHttpServer(models=("sensevoice",)) as failing, FunasrHttpServer(models=("sensevoice",)) as good:
        failing.fail = 1000  # /health is fine; every transcription answers 500
        _transcribe(capsys, "--server", failing.url, "--server", good.url, str(film))
        assert failing.transcriptions and len(good.transcriptions) == 3  # each piece it failed went to the other
        side = read_sidecar(film.with_name("talk.funasr.json"))
        assert {p["server"] for p in side.audio["pieces"]} == {good.url}
        assert max(_start_errors(film.with_name("talk.zh.srt"), talk.truth)) <= 250
        asked = len(failing.transcriptions) + len(good.transcriptions)
        _transcribe(capsys, "--server", failing.url, "--server", good.url, str(film))
        assert len(failing.transcriptions) + len(good.transcriptions) == asked  # up to date: nothing sent again


@needs_espeak
def test_an_unknown_model_is_one_clear_line(film: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FunasrHttpServer(models=("whisper-large",)) as http_api:
        code = main(["transcribe", "--retries", "0", "--server", http_api.url, str(film)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) >= 1, errors
    assert "HTTP 400" in errors[0] and "Unknown model 'whisper-large'" in errors[0], errors
    assert sorted(p.name for p in film.parent.iterdir()) == ["talk.mkv"]  # nothing half-written


def test_send_mp4_to_funasr_server_is_one_clear_line(tmp_media_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Segment-timed requests are cut from PCM: a container cannot be sent to funasr-server."""
    media = make_media(tmp_media_dir / "a.mkv", bursts=[(1000, 800)], duration_ms=3000)
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        code = main(["transcribe", "--retries", "0", "--send", "mp4", "--server", http_api.url, str(media)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code != 0 and len(errors) == 1 and "drop --send mp4" in errors[0], errors
    assert http_api.transcriptions == [] and sorted(p.name for p in tmp_media_dir.iterdir()) == ["a.mkv"]


@needs_espeak
def test_in_a_pool_with_a_timed_websocket_server_whole_files_go_to_it_and_funasr_server_is_up(
    funasr_server: FunasrTestServer, film: Path, talk: SpeechAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        err = _transcribe(capsys, "--server", http_api.url, "--server", funasr_server.url, str(film))
    assert "not used" not in err and "down" not in err, err  # both servers usable
    assert len(funasr_server.files) == 1 and http_api.transcriptions == []  # never a whole file to funasr-server
    assert max(_start_errors(film.with_name("talk.zh.srt"), talk.truth)) <= 100


@needs_espeak
def test_https_verifies_the_certificate_unless_told_whom_to_trust(
    film: Path, talk: SpeechAudio, tls_cert: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with FunasrHttpServer(models=("sensevoice",), ssl_context=server_ssl_context(*tls_cert)) as https_api:
        code = main(["transcribe", "--retries", "0", "--server", https_api.url, str(film)])
        errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert code != 0 and len(errors) == 1 and "not trusted" in errors[0] and "--ca-file" in errors[0], errors
        assert https_api.transcriptions == []  # nothing sent to a server that could not be verified
        _transcribe(capsys, "--server", https_api.url, "--ca-file", str(tls_cert[0]), str(film))
    assert len(https_api.transcriptions) == 3
    assert max(_start_errors(film.with_name("talk.zh.srt"), talk.truth)) <= 250


@needs_espeak
def test_an_answer_that_is_not_json_is_one_line_and_nothing_is_written(
    film: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FunasrHttpServer(models=("sensevoice",)) as http_api:
        http_api.garbage = True
        code = main(["transcribe", "--retries", "1", "--retry-backoff", "0.05", "--server", http_api.url, str(film)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "not JSON" in errors[0] and "<html>" in errors[0], errors
    assert sorted(p.name for p in film.parent.iterdir()) == ["talk.mkv"]

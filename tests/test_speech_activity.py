"""Speech activity: real espeak-ng speech in music and noise, heard on the PCM as it is sent, kept in the sidecar."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funasr_subs.cli import main
from funasr_subs.media.activity import (
    Rules,
    Smoother,
    Speech,
    intervals_of,
    speech_from_json,
    speech_to_json,
    without_words,
)
from funasr_subs.media.vad import Detector, Listener
from funasr_subs.sidecar import read_sidecar
from tests.funasr_server import FunasrTestServer
from tests.speech import EN_SENTENCES, ZH_SENTENCES, build_speech, espeak_available, frame_f1, write_speech

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")


# --- the pure core ---------------------------------------------------------------------------------------------
def test_short_gaps_are_bridged_and_short_runs_dropped() -> None:
    rules = Rules(frame_ms=10, min_speech_ms=50, merge_gap_ms=100)
    frames = [False] * 5 + [True] * 20 + [False] * 9 + [True] * 10 + [False] * 30 + [True] * 3 + [False] * 40
    frames += [True] * 10 + [False] * 10 + [True] * 6
    # 5-25 and 34-44 (a 90 ms gap) join; 74-77 (30 ms) is dropped; 117-127 and 137-143 (100 ms apart) stay apart
    assert intervals_of(frames, rules) == ((50, 440), (1170, 1270), (1370, 1430))
    assert intervals_of([], rules) == ()
    assert intervals_of([True] * 7, rules) == ((0, 70),)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=200), st.lists(st.integers(0, 40), max_size=30))
def test_many_decisions_at_once_are_smoothed_as_one_at_a_time(frames: list[bool], cuts: list[int]) -> None:
    """``push_frames`` (the listener's: runs found by a regex) against ``push`` frame by frame, the decisions cut
    anywhere into batches (empty ones too), runs crossing the cuts."""
    rules = Rules(frame_ms=10, min_speech_ms=40, merge_gap_ms=30)
    one, many = Smoother(rules), Smoother(rules)
    for speech in frames:
        one.push(speech)
    at = 0
    for size in cuts:
        many.push_frames(bytes(frames[at : at + size]))
        at += size
    many.push_frames(bytes(frames[at:]))
    assert many.finish() == one.finish()


def test_the_detector_module_and_its_public_wrapper_decide_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener calls WebRTC's C module as ``webrtcvad.Vad.is_speech`` does; should that module change (here:
    one without its functions), it falls back to the wrapper, with the same decisions (on noise bursts and silence)."""
    rng = random.Random(7)
    bursts = b"".join(
        bytes(rng.getrandbits(8) for _ in range(9600)) if k % 3 else bytes(9600) for k in range(30)
    )  # 0.3 s pieces: noise, noise, silence, ...
    direct = Detector().decide(memoryview(bursts))
    import webrtcvad  # noqa: F401  (bound to the real C module before the stand-in below)

    monkeypatch.setitem(sys.modules, "_webrtcvad", types.ModuleType("_webrtcvad"))
    fallback = Detector()
    assert fallback._args == ()  # it calls webrtcvad.Vad.is_speech
    wrapped = fallback.decide(memoryview(bursts))
    assert len(direct) == len(bursts) // 960 and set(direct) == {0, 1}
    assert wrapped == direct


def test_a_detector_module_moved_elsewhere_falls_back_to_the_public_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """A webrtcvad-wheels whose C module is no longer the top-level ``_webrtcvad`` (moved into its package, say):
    the import itself fails, and the listener still hears through ``webrtcvad.Vad.is_speech``."""
    pcm = bytes(960) * 10
    import webrtcvad  # noqa: F401  (bound to the real C module before it is hidden below)

    monkeypatch.setitem(sys.modules, "_webrtcvad", None)  # ``import _webrtcvad`` raises ImportError
    detector = Detector()
    assert detector._args == ()  # it calls webrtcvad.Vad.is_speech
    assert detector.decide(memoryview(pcm)) == bytes(10)


def test_the_listener_does_not_care_how_the_stream_is_cut() -> None:
    audio = build_speech(EN_SENTENCES[:3], voice="en", snr_db=10) if espeak_available() else None
    pcm = audio.pcm if audio else bytes(range(256)) * 4000
    whole, pieces = Listener(), Listener()
    whole.feed(pcm)
    for at in range(0, len(pcm), 1777):  # odd sizes: frames cross chunk boundaries, an odd byte included
        pieces.feed(pcm[at : at + 1777])
    assert pieces.finish() == whole.finish()


def test_the_sidecar_form_reads_back_and_refuses_what_cannot_be_ours() -> None:
    speech = Speech(((0, 900), (1200, 4410)), "webrtcvad mode 3, 30 ms", 30)
    assert speech_from_json(json.loads(json.dumps(speech_to_json(speech)))) == speech
    bad = [
        {"format": 1, "frame_ms": 30, "intervals": [[900, 100]]},  # backwards
        {"format": 1, "frame_ms": 30, "intervals": [[0, 900], [800, 1000]]},  # overlapping
        {"format": 1, "frame_ms": 30, "intervals": [[0, 1.5]]},
        {"format": 1, "frame_ms": 30, "intervals": [[True, 10]]},
        {"format": 1, "frame_ms": 30, "intervals": [[-30, 10]]},
        {"format": 1, "frame_ms": 30, "intervals": [[0, 10**15]]},
        {"format": 1, "frame_ms": 0, "intervals": []},
        {"format": 1, "frame_ms": 30, "intervals": {"0": 10}},
        {"format": 1, "frame_ms": 30, "intervals": [[0, 10, 20]]},
        [[0, 10]],
    ]
    for value in bad:
        with pytest.raises(ValueError):
            speech_from_json(value)
    assert speech_from_json({"format": 2, "anything": "new"}) is None  # a newer writer: ignored, not fatal


# --- accuracy on real speech ----------------------------------------------------------------------------------
@needs_espeak
@pytest.mark.parametrize(("sentences", "voice"), [(ZH_SENTENCES, "cmn"), (EN_SENTENCES, "en")])
def test_speech_in_music_and_noise_at_20_db_starts_within_100_ms_of_the_truth(
    sentences: tuple[str, ...], voice: str
) -> None:
    """What WebRTC's detector does at 20 dB (docs/speech-activity.md), over three background mixes: at least 75 %
    of the intervals it finds start within 100 ms of a sentence start and end within 200 ms of a sentence end (its
    hangover runs on about 100 ms), and the frames agree with the truth at F1 >= 0.93 on average."""
    starts_ok = ends_ok = count = 0
    scores = []
    for seed in (1, 2, 3):
        audio = build_speech(sentences, voice=voice, snr_db=20, seed=seed)
        listener = Listener()
        listener.feed(audio.pcm)
        found = listener.finish().intervals
        starts, ends = [s for s, _ in audio.truth], [e for _, e in audio.truth]
        starts_ok += sum(min(abs(s - t) for t in starts) <= 100 for s, _ in found)
        ends_ok += sum(min(abs(e - t) for t in ends) <= 200 for _, e in found)
        count += len(found)
        scores.append(frame_f1(audio.truth, found, audio.duration_ms))
    assert count >= 3 * len(sentences) // 2  # the long pauses are heard
    assert starts_ok >= 0.75 * count and ends_ok >= 0.75 * count, (starts_ok, ends_ok, count)
    assert sum(scores) / len(scores) >= 0.93, scores


# --- on the stream we send, into the sidecar, back out of it ---------------------------------------------------
@needs_espeak
def test_transcribe_keeps_the_speech_it_heard_and_retime_reads_it_back(
    funasr_server: FunasrTestServer, tmp_media_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = build_speech(ZH_SENTENCES[:4], pauses_ms=(700, 1200, 900), lead_ms=1500)
    media = write_speech(tmp_media_dir / "talk 01.m4a", audio)
    common = ["--server", funasr_server.url, "--retries", "0"]
    assert main(["transcribe", *common, str(media)]) == 0
    side_path = tmp_media_dir / "talk 01.funasr.json"
    speech = read_sidecar(side_path).speech
    assert speech is not None and speech.frame_ms == 30
    # in the media's timeline (AAC priming taken off like the reply's): each sentence found, starting within 100 ms
    assert len(speech.intervals) == len(audio.truth), (audio.truth, speech.intervals)
    for (start, end), (true_start, true_end) in zip(speech.intervals, audio.truth, strict=True):
        assert abs(start - true_start) <= 100 and abs(end - true_end) <= 200, (audio.truth, speech.intervals)
    raw = json.loads(side_path.read_text(encoding="utf-8"))["speech"]
    assert raw["intervals"] == [list(pair) for pair in speech.intervals]  # compact: [start_ms, end_ms] pairs

    funasr_server.stop()  # retime needs no server; the sidecar it rewrites keeps the speech
    assert main(["retime", str(media), "--max-cps", "12"]) == 0
    assert read_sidecar(side_path).speech == speech

    damaged = json.loads(side_path.read_text(encoding="utf-8"))
    damaged["speech"]["intervals"][1] = [10**6, 5]
    side_path.write_text(json.dumps(damaged), encoding="utf-8")
    srt = tmp_media_dir / "talk 01.zh.srt"
    before = srt.read_bytes()
    capsys.readouterr()
    assert main(["retime", str(media), "--max-cps", "20"]) == 1  # hostile input: one clear line, nothing written
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("is a damaged funasr-subs sidecar (speech interval [1000000, 5] is out of order or out of range)")
    )
    assert srt.read_bytes() == before


def test_no_speech_activity_means_no_speech_in_the_sidecar(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    from tests.media import make_media

    media = make_media(tmp_path / "tones.wav", bursts=[(500, 900)], duration_ms=2000)
    common = ["--server", funasr_server.url, "--retries", "0"]
    assert main(["transcribe", *common, "--no-speech-activity", str(media)]) == 0
    assert read_sidecar(tmp_path / "tones.funasr.json").speech is None
    assert main(["transcribe", *common, "--overwrite", str(media)]) == 0
    heard = read_sidecar(tmp_path / "tones.funasr.json").speech
    assert heard is not None  # a pure tone is not speech to WebRTC's detector, but it was listened to


@needs_espeak
def test_a_file_split_across_servers_is_heard_once_whole(tmp_path: Path) -> None:
    """--split-minutes: the PCM is heard as it is decoded for the splitter, the same as when sent whole."""
    audio = build_speech(ZH_SENTENCES[:6], pauses_ms=(900, 1500))
    media = write_speech(tmp_path / "split.wav", audio)
    with FunasrTestServer() as one, FunasrTestServer() as two:
        servers = ["--server", one.url, "--server", two.url, "--retries", "0"]
        assert main(["transcribe", *servers, "--split-minutes", "0.2", str(media)]) == 0
        split = read_sidecar(tmp_path / "split.funasr.json")
        assert len(split.audio["pieces"]) >= 2
        assert main(["transcribe", "--server", one.url, "--overwrite", str(media)]) == 0
        whole = read_sidecar(tmp_path / "split.funasr.json")
    assert "pieces" not in whole.audio
    assert split.speech is not None and split.speech == whole.speech
    assert len(split.speech.intervals) == len(audio.truth)


@needs_espeak
def test_an_attempt_cut_short_is_not_what_was_heard(tmp_path: Path) -> None:
    """A connection dropped during the upload, the file sent again to another server: what the sidecar says was
    heard is the same as for a file sent once (a pass cut short is never taken; a whole one is taken once)."""
    audio = build_speech(ZH_SENTENCES[:10], pauses_ms=(900, 1500))
    media = write_speech(tmp_path / "retry.wav", audio)
    with FunasrTestServer(drop_after_bytes=200_000) as cut, FunasrTestServer() as good:
        cut.fault = "drop"
        argv = ["transcribe", "--server", cut.url, "--server", good.url, "--retries", "1", str(media)]
        assert main(argv) == 0
        assert any(c.frame_sizes for c in cut.connections) and not cut.replies  # the first attempt was cut
        assert len(good.files) == 1
        heard = read_sidecar(tmp_path / "retry.funasr.json").speech
        assert main(["transcribe", "--server", good.url, "--overwrite", str(media)]) == 0
    assert heard is not None and heard == read_sidecar(tmp_path / "retry.funasr.json").speech
    assert len(heard.intervals) == len(audio.truth)


def test_speech_without_words_is_found() -> None:
    speech = [(1000, 4000), (5000, 9000), (9300, 15000), (20000, 22000), (30000, 31000)]
    tokens = [(1000, 1200), (1200, 3900), (5100, 6000), (20100, 21900)]
    # 7000-15000 has speech (7.7 s of it) and no word within a second; 30-31 s is too short to count
    assert without_words(speech, tokens) == [(7000, 15000)]
    assert without_words(speech, tokens, min_ms=500) == [(7000, 15000), (30000, 31000)]
    assert without_words(speech, []) == [(5000, 15000)]  # a 1 s pause splits; 1-4 s holds too little speech
    assert without_words([], tokens) == [] and without_words(speech, [(0, 40000)]) == []


@needs_espeak
@pytest.mark.parametrize("suffix", [".mkv", ".ts"])  # padded by the decode; moved by the offset ffprobe gives
def test_speech_is_in_the_media_timeline_when_the_audio_starts_late(
    funasr_server: FunasrTestServer, tmp_path: Path, suffix: str
) -> None:
    """A video whose audio stream starts 1.2 s in: the intervals move with it, as the cue times do."""
    audio = build_speech(ZH_SENTENCES[:3], pauses_ms=(900,), lead_ms=500)
    wav = write_speech(tmp_path / "speech.wav", audio)
    media = tmp_path / f"late{suffix}"
    seconds = audio.duration_ms / 1000 + 1.2
    argv = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=size=64x64:rate=5:duration={seconds}"]
    argv += ["-itsoffset", "1.2", "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(media)]
    subprocess.run(argv, capture_output=True, check=True)
    assert main(["transcribe", "--server", funasr_server.url, "--retries", "0", str(media)]) == 0
    side = read_sidecar(tmp_path / "late.funasr.json")
    assert side.speech is not None and len(side.speech.intervals) == len(audio.truth)
    for (start, _), (true_start, _) in zip(side.speech.intervals, audio.truth, strict=True):
        assert abs(start - (true_start + 1200)) <= 100, (side.speech.intervals, audio.truth)

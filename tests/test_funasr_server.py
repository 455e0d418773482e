"""The test server is faithful to funasr-wss-server (offline) and its fault switches work: a raw websockets client."""

from __future__ import annotations

import array
import hashlib
import itertools
import json
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import ClientConnection, connect

from tests.funasr_server import (
    FunasrTestServer,
    PeakMeter,
    build_reply,
    check_message,
    detect_bursts,
    sentences_for,
)
from tests.media import decode_pcm, make_media

TOL_MS = 30
QUIET = 0.5  # how long "no reply" is awaited: absence can only be shown by waiting


def first_message(**overrides: Any) -> str:
    msg: dict[str, Any] = {
        "mode": "offline",
        "wav_name": "clip",
        "wav_format": "pcm",
        "audio_fs": 16000,
        "itn": True,
        "is_speaking": True,
        "chunk_size": [5, 10, 5],
    }
    msg.update(overrides)
    return json.dumps(msg, ensure_ascii=False)


def send_file(ws: ClientConnection, data: bytes, frame: int = 256_000, **overrides: Any) -> None:
    ws.send(first_message(**overrides))
    for i in range(0, len(data), frame):
        ws.send(data[i : i + frame])
    ws.send(json.dumps({"is_speaking": False}))


def transcribe(url: str, data: bytes, **overrides: Any) -> dict[str, Any]:
    with connect(url, max_size=None, open_timeout=5) as ws:
        send_file(ws, data, **overrides)
        reply: dict[str, Any] = json.loads(ws.recv(timeout=15))
    return reply


def sentence_spans(reply: dict[str, Any]) -> list[tuple[int, int]]:
    """Merge the reply's segments back into (start, end) per sentence (segments ending in 。)."""
    spans: list[tuple[int, int]] = []
    start = None
    for seg in reply["stamp_sents"]:
        start = seg["start"] if start is None else start
        if seg["punc"] == "。":
            spans.append((start, seg["end"]))
            start = None
    return spans


def close_to(got: list[tuple[int, int]], want: list[tuple[int, int]], tol: int = TOL_MS) -> bool:
    return len(got) == len(want) and all(
        abs(a - c) <= tol and abs(b - d) <= tol for (a, b), (c, d) in zip(got, want, strict=True)
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4.5 s video: a 1 s burst at 0.5 s and a 2.4 s burst at 1.9 s (long enough for a mid-sentence comma)."""
    return make_media(tmp_path_factory.mktemp("clip") / "clip.mp4", [(500, 1000), (1900, 2400)], 4500)


@pytest.fixture(scope="module")
def clip_pcm(clip: Path) -> bytes:
    return decode_pcm(clip)


BURSTS = [(500, 1500), (1900, 4300)]


# ---------------------------------------------------------------- reply shape


def test_pcm_reply_has_the_offline_shape(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    with connect(funasr_server.url, max_size=None) as ws:
        send_file(ws, clip_pcm, wav_name="my clip ü")
        raw = ws.recv(timeout=15)
    assert isinstance(raw, str)
    pairs = json.loads(raw, object_pairs_hook=list)
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys) == ["is_final", "mode", "stamp_sents", "text", "timestamp", "wav_name"]
    reply = json.loads(raw)
    assert reply["is_final"] is False and reply["mode"] == "offline" and reply["wav_name"] == "my clip ü"
    assert "，" in raw and "。" in raw and "\\u" not in raw  # UTF-8 kept like nlohmann::json
    assert isinstance(reply["timestamp"], str)
    stamps = json.loads(reply["timestamp"])
    assert stamps == [pair for seg in reply["stamp_sents"] for pair in seg["ts_list"]]
    text = ""
    for seg in reply["stamp_sents"]:
        assert set(seg) == {"text_seg", "punc", "start", "end", "ts_list"}
        tokens = seg["text_seg"].split(" ")
        assert len(tokens) == len(seg["ts_list"]) and all(len(t) == 1 for t in tokens)
        assert seg["start"] == seg["ts_list"][0][0] and seg["end"] == seg["ts_list"][-1][1]
        assert seg["punc"] in ("，", "。")
        text += "".join(tokens) + seg["punc"]
    assert text == reply["text"]
    assert close_to(sentence_spans(reply), BURSTS)
    assert len(reply["stamp_sents"]) == 3  # the 2.4 s burst was split at a comma


def test_mp4_bytes_are_decoded_by_real_ffmpeg(funasr_server: FunasrTestServer, clip: Path) -> None:
    data = clip.read_bytes()
    reply = transcribe(funasr_server.url, data, wav_format="mp4", audio_fs=8000)  # audio_fs ignored for mp4
    assert close_to(sentence_spans(reply), BURSTS)
    (record,) = funasr_server.files
    assert record.audio_bytes == len(data)
    assert record.request["wav_format"] == "mp4"


def test_pcm_at_another_rate_is_timed_by_audio_fs(funasr_server: FunasrTestServer, clip: Path) -> None:
    pcm8k = decode_pcm_rate(clip, 8000)
    reply = transcribe(funasr_server.url, pcm8k, audio_fs=8000)
    assert close_to(sentence_spans(reply), BURSTS)


def decode_pcm_rate(path: Path, rate: int) -> bytes:
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"]
    return subprocess.run(argv, capture_output=True, check=True).stdout


def test_records_requests_frames_and_audio(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    transcribe(funasr_server.url, clip_pcm, frame=50_000)
    assert funasr_server.requests == [json.loads(first_message())]
    (sizes,) = funasr_server.frame_sizes
    assert sizes == [50_000, 50_000, 44_042]
    (record,) = funasr_server.files
    assert record.sha256 == hashlib.sha256(clip_pcm).hexdigest()
    assert funasr_server.violations == []


def test_one_reply_per_file_and_the_server_never_closes(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    with connect(funasr_server.url, max_size=None) as ws:
        send_file(ws, clip_pcm, wav_name="one")
        send_file(ws, clip_pcm[: 16000 * 2 * 18 // 10], wav_name="two")  # first 1.8 s: only burst 1
        first, second = json.loads(ws.recv(timeout=15)), json.loads(ws.recv(timeout=15))
        assert (first["wav_name"], second["wav_name"]) == ("one", "two")
        assert close_to(sentence_spans(second), BURSTS[:1])
        with pytest.raises(TimeoutError):
            ws.recv(timeout=QUIET)
        assert funasr_server.connections[0].closed is False
    assert funasr_server.wait_for_closed(1)
    assert funasr_server.connections[0].close_code == 1000  # the client closed it
    assert [r["wav_name"] for r in funasr_server.requests] == ["one", "two"]


def test_empty_and_undecodable_audio_give_empty_text(funasr_server: FunasrTestServer) -> None:
    empty = {"is_final": False, "mode": "offline", "text": "", "wav_name": "clip"}
    assert transcribe(funasr_server.url, b"") == empty
    assert transcribe(funasr_server.url, b"\x00" * 64_000) == empty  # 2 s of digital silence
    assert transcribe(funasr_server.url, b"not a media file at all" * 100, wav_format="mp4") == empty


def test_server_without_timestamp_model(clip_pcm: bytes) -> None:
    with FunasrTestServer(timestamps=False) as server:
        reply = transcribe(server.url, clip_pcm)
    assert sorted(reply) == ["is_final", "mode", "text", "wav_name"]
    assert reply["text"].count("。") == 2


def test_hotwords_are_used_only_with_integer_weights(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    good = transcribe(funasr_server.url, clip_pcm, hotwords=json.dumps({"达摩院": 20}, ensure_ascii=False))
    assert good["text"].startswith("达摩院")
    assert funasr_server.violations == []
    bad = transcribe(funasr_server.url, clip_pcm, hotwords=json.dumps({"达摩院": "20"}, ensure_ascii=False))
    assert "达摩院" not in bad["text"]  # silently dropped (#2805), but still answered
    assert any("integers" in v for v in funasr_server.violations)


# ---------------------------------------------------------------- protocol violations


@pytest.mark.parametrize(
    "override",
    [
        {"itn": 1},
        {"audio_fs": "16000"},
        {"audio_fs": True},
        {"hotwords": {"达摩院": 20}},
        {"chunk_size": [5, 10]},
        {"is_speaking": "true"},
        {"wav_name": 7},
    ],
)
def test_type_violation_gets_no_reply(funasr_server: FunasrTestServer, clip_pcm: bytes, override: Any) -> None:
    with connect(funasr_server.url, max_size=None) as ws:
        send_file(ws, clip_pcm, **override)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=QUIET)
    (key,) = override
    assert len(funasr_server.violations) == 1 and key in funasr_server.violations[0]
    assert funasr_server.replies == []


def test_bad_json_silences_the_connection(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    with connect(funasr_server.url, max_size=None) as ws:
        ws.send("{not json")
        send_file(ws, clip_pcm)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=QUIET)
        assert not funasr_server.connections[0].closed
    assert funasr_server.errors and funasr_server.replies == []


def test_frame_limit_is_32_000_000_bytes(funasr_server: FunasrTestServer) -> None:
    with connect(funasr_server.url, max_size=None) as ws:
        ws.send(first_message())
        ws.send(b"\x00" * 32_000_000)
        ws.send(json.dumps({"is_speaking": False}))
        assert json.loads(ws.recv(timeout=30))["text"] == ""
    with connect(funasr_server.url, max_size=None) as ws:
        ws.send(first_message())
        with pytest.raises(ConnectionClosed) as info:
            ws.send(b"\x00" * 32_000_001)
            ws.recv(timeout=30)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


# ---------------------------------------------------------------- faults


def test_refuse_makes_connect_fail_and_clearing_it_restores(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    url = funasr_server.url
    funasr_server.fault = "refuse"
    with pytest.raises(ConnectionRefusedError):
        connect(url, open_timeout=5)
    funasr_server.fault = None
    assert funasr_server.url == url
    assert close_to(sentence_spans(transcribe(url, clip_pcm)), BURSTS)


def test_stop_and_start_keep_the_url(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    url = funasr_server.url
    funasr_server.stop()
    with pytest.raises(ConnectionRefusedError):
        connect(url, open_timeout=5)
    funasr_server.start()
    assert funasr_server.url == url
    assert transcribe(url, clip_pcm)["text"]


def test_hang_accepts_everything_and_never_replies(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    funasr_server.fault = "hang"
    with connect(funasr_server.url, max_size=None) as ws:
        send_file(ws, clip_pcm)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=QUIET)
    assert funasr_server.replies == []
    assert funasr_server.wait_until(lambda: len(funasr_server.files) == 1)
    (record,) = funasr_server.files
    assert record.sent is False and record.audio_bytes == len(clip_pcm) == sum(funasr_server.frame_sizes[0])
    assert record.reply is not None and close_to(sentence_spans(record.reply), BURSTS)  # built, never sent


def test_drop_closes_the_connection_mid_upload(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    funasr_server.fault = "drop"
    funasr_server.drop_after_bytes = 50_000
    with connect(funasr_server.url, max_size=None) as ws, pytest.raises(ConnectionClosed) as info:
        send_file(ws, clip_pcm * 20, frame=20_000)
        ws.recv(timeout=15)
    assert info.value.rcvd is None  # no close frame: the TCP connection just went away
    assert 50_000 <= sum(funasr_server.frame_sizes[0]) < len(clip_pcm) * 20


def test_garbage_reply_is_not_json(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    funasr_server.fault = "garbage"
    with connect(funasr_server.url, max_size=None) as ws:
        send_file(ws, clip_pcm)
        raw = ws.recv(timeout=15)
    with pytest.raises(ValueError):
        json.loads(raw)
    assert funasr_server.replies == [raw] and funasr_server.files[0].sent is False


def test_slow_reply_comes_late(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    funasr_server.fault = "slow"
    funasr_server.slow_seconds = 0.4
    with connect(funasr_server.url, max_size=None) as ws:
        send_file(ws, clip_pcm)
        sent = time.monotonic()
        reply = json.loads(ws.recv(timeout=15))
    assert time.monotonic() - sent >= 0.35
    assert close_to(sentence_spans(reply), BURSTS)


def test_instant_mode_answers_without_decoding(clip: Path, clip_pcm: bytes) -> None:
    with FunasrTestServer(instant=True) as server:
        fake = transcribe(server.url, b"not decodable at all", wav_format="mp4")
        real_pcm = transcribe(server.url, clip_pcm)  # pcm is metered while it arrives: still real
    assert sentence_spans(fake) == [(0, 1000)]
    assert close_to(sentence_spans(real_pcm), BURSTS)


def test_tls_server(funasr_tls_server: FunasrTestServer, tls_cert: tuple[Path, Path], clip_pcm: bytes) -> None:
    assert funasr_tls_server.url.startswith("wss://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(tls_cert[0]))
    with connect(funasr_tls_server.url, ssl=ctx, max_size=None) as ws:
        send_file(ws, clip_pcm)
        assert json.loads(ws.recv(timeout=15))["text"]
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(funasr_tls_server.url, open_timeout=5)  # default trust store: self-signed is rejected
    with pytest.raises((InvalidMessage, ConnectionError)):
        connect(funasr_tls_server.url.replace("wss://", "ws://"), open_timeout=5)  # plain ws against wss


def test_expired_certificate_like_the_docker_image(
    funasr_expired_tls_server: FunasrTestServer, expired_tls_cert: tuple[Path, Path], clip_pcm: bytes
) -> None:
    trusting = ssl.create_default_context(cafile=str(expired_tls_cert[0]))
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        connect(funasr_expired_tls_server.url, ssl=trusting, open_timeout=5)
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    with connect(funasr_expired_tls_server.url, ssl=insecure, max_size=None) as ws:
        send_file(ws, clip_pcm)
        assert json.loads(ws.recv(timeout=15))["text"]


def test_concurrent_connections_get_their_own_replies(funasr_server: FunasrTestServer, clip_pcm: bytes) -> None:
    results: dict[str, dict[str, Any]] = {}

    def one(name: str, data: bytes) -> None:
        results[name] = transcribe(funasr_server.url, data, wav_name=name, frame=30_000)

    cuts = {1200: [(500, 1200)], 1800: [(500, 1500)], 3000: [(500, 1500), (1900, 3000)], 4500: BURSTS}
    threads = [threading.Thread(target=one, args=(f"cut{ms}", clip_pcm[: ms * 32])) for ms in cuts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == sorted(f"cut{ms}" for ms in cuts)
    for ms, want in cuts.items():
        assert results[f"cut{ms}"]["wav_name"] == f"cut{ms}"
        assert close_to(sentence_spans(results[f"cut{ms}"]), want), (ms, results[f"cut{ms}"])
    assert len(funasr_server.connections) == 4


# ---------------------------------------------------------------- reply shapes and pure parts


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("stamp_sents_string", lambda r: isinstance(r["stamp_sents"], str) and "'start': '500'" in r["stamp_sents"]),
        ("numeric_strings", lambda r: r["stamp_sents"][0]["start"] == "500"),
        ("stamp_sents_empty", lambda r: r["stamp_sents"] == ""),
        ("timestamp_list", lambda r: r["timestamp"][0] == [500, 700]),
        ("timestamp_int", lambda r: r["timestamp"] == 0),
        (
            "no_punc",
            lambda r: len(r["stamp_sents"]) == 1 and r["stamp_sents"][0]["punc"] == "" and "。" not in r["text"],
        ),
        ("leading_punc", lambda r: r["text"].startswith("，") and r["stamp_sents"][0]["ts_list"] == []),
    ],
)
def test_reply_shape_variants(shape: Any, check: Any) -> None:
    reply = build_reply("w", sentences_for([(500, 1500)]), shape=shape)
    assert check(reply), reply


def test_detect_bursts_merges_short_gaps_and_drops_blips() -> None:
    loud, quiet = 20000, 0
    peaks = [quiet] * 10 + [loud] * 20 + [quiet] * 14 + [loud] * 20 + [quiet] * 30 + [loud] * 9 + [quiet] * 50
    assert detect_bursts(peaks) == [(100, 640)]  # 140 ms gap merged, 90 ms blip dropped
    peaks2 = [loud] * 20 + [quiet] * 15 + [loud] * 10
    assert detect_bursts(peaks2) == [(0, 200), (350, 450)]  # a 150 ms gap splits


def test_sentences_cover_the_burst_with_200_ms_tokens() -> None:
    (seg,) = sentences_for([(1000, 1990)])
    assert len(seg.tokens) == 4 and seg.punc == "。"
    assert seg.times[0][0] == 1000 and seg.times[-1][1] == 1990
    assert all(a[1] == b[0] for a, b in itertools.pairwise(seg.times))
    (tiny,) = sentences_for([(0, 120)])
    assert len(tiny.tokens) == 1
    assert [s.punc for s in sentences_for([(0, 2500)])] == ["，", "。"]


def test_peak_meter_is_incremental() -> None:
    samples = array.array("h", [0] * 160 + [3000] * 5 + [0] * 155 + [-32768] + [0] * 100)
    whole, pieces = PeakMeter(16000), PeakMeter(16000)
    whole.feed(samples.tobytes())
    data = samples.tobytes()
    for i in range(0, len(data), 7):  # odd chunk sizes split samples across feeds
        pieces.feed(data[i : i + 7])
    assert whole.finish() == pieces.finish() == [0, 3000, 32768]


@pytest.mark.parametrize(
    ("msg", "fatal"),
    [
        ({"mode": "offline", "audio_fs": 16000, "itn": False, "hotwords": "", "chunk_size": [5, 10, 5]}, False),
        ({"is_speaking": False}, False),
        ({"audio_fs": 16000.0}, True),
        ({"itn": "true"}, True),
        ({"chunk_size": [5, 10, True]}, True),
        ({"hotwords": ["x"]}, True),
        (["not", "an", "object"], True),
    ],
)
def test_check_message(msg: Any, fatal: bool) -> None:
    assert bool(check_message(msg)[0]) is fatal

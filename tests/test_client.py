"""The websocket client against the real test server: exact first message, big frames, one reply, faults, TLS."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from funasr_subs.config import Settings
from funasr_subs.errors import (
    ProtocolError,
    ReplyTimeoutError,
    ServerUnavailableError,
    TLSMismatchError,
)
from funasr_subs.pipeline import recognise_file
from tests.faults import clean_env, run_cli
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.servicekit import HeadedReply, Seen, StandIn

BURSTS = [(1000, 800), (3000, 1500)]


def fast(test_server: FunasrTestServer, **changes: object) -> Settings:
    base = Settings(server=test_server.url, retries=0, retry_backoff=0.01, connect_timeout=3, reply_timeout=5)
    return base.replace(**changes)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_media(tmp_path_factory.mktemp("clip") / "clip.mkv", bursts=BURSTS, duration_ms=5000)


def test_first_message_types_frames_and_close(funasr_server: FunasrTestServer, clip: Path) -> None:
    rec = recognise_file(clip, fast(funasr_server, hotwords={"达摩院": 20}, itn=False))
    assert funasr_server.violations == []
    (request,) = funasr_server.requests
    assert request["mode"] == "offline" and request["wav_format"] == "pcm" and request["audio_fs"] == 16000
    assert request["itn"] is False and json.loads(request["hotwords"]) == {"达摩院": 20}
    # audio arrives in few large frames: 5 s of 16 kHz s16le mono is 160,000 bytes, less than one frame
    (frames,) = funasr_server.frame_sizes
    assert sum(frames) == pytest.approx(160_000, rel=0.02) and len(frames) == 1
    # the client, not the server, closes the connection, cleanly
    assert funasr_server.wait_for_closed(1)
    assert funasr_server.connections[0].close_code == 1000
    assert len(funasr_server.replies) == 1
    assert rec.transcript.tokens and rec.transcript.tokens[0].start_ms == pytest.approx(1000, abs=60)
    # the hotword reached the server as JSON-string-with-int-weights, so it shows up in the transcript
    assert "达摩院" in rec.transcript.text


def test_long_audio_is_sent_in_large_frames_under_the_limit(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    media = make_media(tmp_path / "long.wav", bursts=[(1000, 500), (70_000, 600)], duration_ms=75_000, video=False)
    rec = recognise_file(media, fast(funasr_server))
    (frames,) = funasr_server.frame_sizes
    assert len(frames) >= 2 and all(1 << 20 <= f < 32_000_000 for f in frames[:-1])
    assert [t.start_ms for t in rec.transcript.tokens][-3] >= 69_000


def test_mp4_mode_sends_a_container_the_server_decodes(funasr_server: FunasrTestServer, clip: Path) -> None:
    rec = recognise_file(clip, fast(funasr_server, send="mp4"))
    assert funasr_server.requests[0]["wav_format"] == "mp4"
    starts = sorted({t.start_ms // 100 * 100 for t in rec.transcript.tokens})
    assert rec.transcript.tokens[0].start_ms == pytest.approx(1000, abs=100)
    assert any(abs(s - 3000) <= 100 for s in starts)


def test_refused_connection_is_retried_with_backoff_then_reported(funasr_server: FunasrTestServer, clip: Path) -> None:
    funasr_server.fault = "refuse"
    with pytest.raises(ServerUnavailableError, match="connection refused") as info:
        recognise_file(clip, fast(funasr_server, retries=2))
    assert info.value.retryable and str(clip) in str(info.value)


def test_server_coming_back_during_retries_succeeds(funasr_server: FunasrTestServer, clip: Path) -> None:
    funasr_server.fault = "drop"
    # the first upload is dropped; the retry reaches the server again

    def heal() -> None:
        funasr_server.wait_for_connections(1)
        funasr_server.wait_for_closed(1)
        funasr_server.fault = None

    healer = threading.Thread(target=heal)
    healer.start()
    rec = recognise_file(clip, fast(funasr_server, retries=3, retry_backoff=0.2))
    healer.join()
    assert len(funasr_server.connections) >= 2 and rec.transcript.tokens


def test_silent_server_times_out_instead_of_hanging(funasr_server: FunasrTestServer, clip: Path) -> None:
    funasr_server.fault = "hang"
    with pytest.raises(ReplyTimeoutError, match="no reply within"):
        recognise_file(clip, fast(funasr_server, reply_timeout=0.5, reply_timeout_ratio=0, retries=3))
    assert len(funasr_server.connections) == 1  # a silent server is not hammered with retries


def test_slow_reply_within_the_timeout_is_accepted(funasr_server: FunasrTestServer, clip: Path) -> None:
    funasr_server.fault = "slow"
    funasr_server.slow_seconds = 0.5
    rec = recognise_file(clip, fast(funasr_server, reply_timeout=5))
    assert rec.transcript.tokens


def test_garbage_reply_is_a_protocol_error(funasr_server: FunasrTestServer, clip: Path) -> None:
    funasr_server.fault = "garbage"
    with pytest.raises(ProtocolError, match="not JSON"):
        recognise_file(clip, fast(funasr_server))


def test_dropped_upload_fails_after_bounded_retries(funasr_server: FunasrTestServer, clip: Path) -> None:
    funasr_server.fault = "drop"
    with pytest.raises(ServerUnavailableError):
        recognise_file(clip, fast(funasr_server, retries=1))
    uploads = [c for c in funasr_server.connections if c.frame_sizes]  # not the probe that found it up again
    assert len(uploads) == 2


# --- TLS ------------------------------------------------------------------------------------------------------
def test_wss_with_ca_file_verifies(
    funasr_tls_server: FunasrTestServer, tls_cert: tuple[Path, Path], clip: Path
) -> None:
    rec = recognise_file(clip, fast(funasr_tls_server, ca_file=tls_cert[0]))
    assert rec.transcript.tokens


def test_wss_self_signed_is_refused_by_default_and_says_insecure(
    funasr_tls_server: FunasrTestServer, clip: Path
) -> None:
    with pytest.raises(TLSMismatchError, match="--insecure"):
        recognise_file(clip, fast(funasr_tls_server))
    assert funasr_tls_server.requests == []


def test_insecure_accepts_the_self_signed_certificate(funasr_tls_server: FunasrTestServer, clip: Path) -> None:
    assert recognise_file(clip, fast(funasr_tls_server, insecure=True)).transcript.tokens


def test_ws_against_a_tls_server_says_try_wss(funasr_tls_server: FunasrTestServer, clip: Path) -> None:
    plain = funasr_tls_server.url.replace("wss://", "ws://")
    with pytest.raises(TLSMismatchError, match="try --server wss://"):
        recognise_file(clip, fast(funasr_tls_server, server=plain))


def test_wss_against_a_plain_server_says_try_ws(funasr_server: FunasrTestServer, clip: Path) -> None:
    tls = funasr_server.url.replace("ws://", "wss://")
    with pytest.raises(TLSMismatchError, match="try --server ws://"):
        recognise_file(clip, fast(funasr_server, server=tls, insecure=True))


@pytest.mark.parametrize("location", ["/", "http://127.0.0.1:9/elsewhere"])
def test_a_redirect_loop_or_a_redirect_to_http_is_named_not_blamed_on_tls(clip: Path, location: str) -> None:
    def redirect(seen: Seen) -> HeadedReply:
        return 302, "text/html", b"moved", {"Location": location}

    with StandIn({("GET", "/"): redirect}) as web_server:
        url = "ws://" + web_server.url.split("://", 1)[1] + "/"
        done = run_cli("transcribe", "--server", url, "--retries", "0", str(clip), env=clean_env(clip.parent))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    error = next(line for line in done.stderr.splitlines() if "error" in line)
    assert "redirect" in error and "TLS" not in error and "wss://" not in error, error

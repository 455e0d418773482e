"""Replies that cannot be right: each hostile stand-in mode in a pool beside a good server through the real CLI
(the good server's cues alone, exit 0, the bad server marked down), malformed replies as a ServerError of their
server, saved ones as bad input, and the checks against every real reply."""

from __future__ import annotations

import contextlib
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from funasr_subs.errors import BadInputError, ProtocolError, ServerError
from funasr_subs.model import Token, Transcript
from funasr_subs.protocol import Order, parse_reply, parse_reply_counted, parse_session_counted
from funasr_subs.recognition.verify import Sent, reply_problem, suspiciously_empty
from tests.fake_recognition import SPOILS
from tests.faults import clean_env, make_long_audio, run_cli
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.replies import REPLIES, read_reply

# speech every 3 s over 30 s: with --split-minutes 0.1, five pieces of about 6 s, each with speech
BURSTS = [(700 + 3000 * i, 1500 if i % 2 else 900) for i in range(10)]
HOSTILE = ["early", *SPOILS]


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_media(tmp_path_factory.mktemp("talk") / "talk.mka", bursts=BURSTS, duration_ms=30_000)


@pytest.fixture(scope="module")
def good_alone(talk: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The subtitle one good server gives the talk."""
    home = tmp_path_factory.mktemp("home")
    with FunasrTestServer() as good:
        done = run_cli(
            "transcribe", "--split-minutes", "0.1", "--server", good.url, "--output-dir", str(home), str(talk),
            env=clean_env(home),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(10 cues" in done.stderr, done.stderr
    return (home / "talk.zh.srt").read_text(encoding="utf-8")


@pytest.mark.parametrize("fault", HOSTILE)
def test_a_hostile_server_beside_a_good_one_changes_nothing(
    fault: str, talk: Path, good_alone: str, tmp_path: Path
) -> None:
    with FunasrTestServer() as bad, FunasrTestServer() as good:
        bad.fault = fault  # type: ignore[assignment]
        done = run_cli(
            "transcribe", "--split-minutes", "0.1", "--retry-backoff", "0.05", "--server", bad.url,
            "--server", good.url, "--output-dir", str(tmp_path), str(talk),
            env=clean_env(tmp_path),
        )  # fmt: skip
        assert bad.files, "the bad server got no piece: the test proves nothing"
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "talk.zh.srt").read_text(encoding="utf-8") == good_alone
    assert re.search(rf"{re.escape(bad.url)} is down \(", done.stderr), done.stderr
    assert f"{good.url} is down" not in done.stderr
    sidecar = json.loads((tmp_path / "talk.funasr.json").read_text(encoding="utf-8"))
    assert {p["server"] for p in sidecar["audio"]["pieces"]} == {good.url}


def test_a_reply_before_the_upload_ends_is_refused_at_once(tmp_path: Path) -> None:
    long = make_long_audio(tmp_path / "long.flac", seconds=600)  # 19 MB of PCM: far more than socket buffers hold
    with FunasrTestServer() as early:
        early.fault = "early"  # answers the first message, then stops reading: the upload is stuck behind it
        done = run_cli(
            "transcribe", "--retries", "0", "--reply-timeout", "60", "--server", early.url,
            "--output-dir", str(tmp_path), str(long), env=clean_env(tmp_path),
        )  # fmt: skip
    assert done.returncode == 1
    assert "replied before the upload ended" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "long.zh.srt").exists()


def test_one_server_answering_empty_text_for_speech_is_not_second_guessed(talk: Path, tmp_path: Path) -> None:
    """With no other server to ask, an empty reply stands (it may be music): the file has no speech."""
    with FunasrTestServer() as quiet:
        quiet.fault = "empty"
        done = run_cli("transcribe", "--server", quiet.url, "--output-dir", str(tmp_path), str(talk),
                       env=clean_env(tmp_path))  # fmt: skip
        assert len(quiet.files) == 1
    assert "Traceback" not in done.stderr and "is down" not in done.stderr
    assert not (tmp_path / "talk.zh.srt").exists()


def test_a_silent_piece_answered_empty_is_accepted_without_asking_again(tmp_path: Path) -> None:
    media = make_media(tmp_path / "gap.mka", bursts=[(1000, 900), (25_000, 900)], duration_ms=30_000)
    with FunasrTestServer() as a, FunasrTestServer() as b:
        done = run_cli(
            "transcribe", "--split-minutes", "0.1", "--server", a.url, "--server", b.url,
            "--output-dir", str(tmp_path), str(media), env=clean_env(tmp_path),
        )  # fmt: skip
        pieces = len(json.loads((tmp_path / "gap.funasr.json").read_text("utf-8"))["audio"]["pieces"])
        assert len(a.files) + len(b.files) == pieces  # the silent pieces' empty replies were not asked again
    assert done.returncode == 0 and "(2 cues" in done.stderr, done.stderr


# --- malformed replies: a ServerError of that server; saved: bad input ------------------------------------------
def test_random_json_never_escapes_as_anything_but_a_server_error() -> None:
    rng = random.Random(19)
    atoms: list[Any] = [0, -1, 1e300, 10**30, "", "x", "[[1,2]]", "{'a': 1}", None, True, [], {}, 2.5, "1e400"]
    keys = ["text", "timestamp", "stamp_sents", "ts_list", "text_seg", "punc", "start", "end", "mode", "wav_name"]

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 4 or roll < 0.4:
            return rng.choice(atoms)
        if roll < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 5))}

    for _ in range(3000):
        reply = {rng.choice(keys): value(0) for _ in range(rng.randint(1, 5))}
        for parse in (lambda r: parse_reply_counted(r), lambda r: parse_session_counted([r])):
            with contextlib.suppress(ServerError):  # anything else fails the test
                parse(reply)


@pytest.mark.parametrize(
    "text",
    [
        '{"text": "甲乙。", "timestamp": "[[1e400, 200], [200, 300]]"}',
        '{"text": "甲乙。", "stamp_sents": [{"text_seg": "甲 乙", "punc": "。", "ts_list": [[1, 1e400], [2, 3]]}]}',
        '{"text": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"text": "甲。", "timestamp": "[[NaN, 1]]"}',
        '{"text": "甲乙。", "stamp_sents": [{"text_seg": "甲 乙", "punc": "。", "ts_list": [["x", {}], [2, 3]]}]}',
        '{"text": "甲乙。", "timestamp": [[1, 2], "no"]}',
    ],
)
def test_malformed_live_replies_are_a_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):  # a fault of that server (not "no timestamp model", not a crash)
        parse_reply(text)


def test_a_saved_reply_with_1e400_is_one_line_of_bad_input(tmp_path: Path) -> None:
    saved = tmp_path / "reply.json"
    segment = '{"text_seg": "甲 乙", "punc": "。", "ts_list": [[0, 1e400], [200, 300]]}'
    head = '{"text": "甲乙。", "timestamp": "[[0, 200], [200, 300]]", "stamp_sents": ['
    saved.write_text(head + segment + "]}", "utf-8")
    srt = tmp_path / "x.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\n甲乙\n", "utf-8")
    for args in (["retime", str(saved)], ["sync", str(srt), str(saved)]):
        done = run_cli(*args, env=clean_env(tmp_path))
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode in (1, 2) and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "reply.json" in lines[0] and "saved reply cannot be used" in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".srt") == ["x.srt"]
    with pytest.raises(BadInputError):
        from funasr_subs.commands.retime import read_source

        read_source(saved, None)


# --- the checks themselves --------------------------------------------------------------------------------------
#: The audio each real reply answered, where its source names it; else as long as its last token reaches.
_LENGTH_MS = {"11": 121_000, "12": 35_000, "13": 179_000, "14": 179_000}


@pytest.mark.parametrize("name", sorted(p.name for p in REPLIES.glob("*.json")))
def test_every_real_reply_passes_the_checks(name: str) -> None:
    reply = read_reply(REPLIES / name)
    try:
        transcript, order = parse_reply_counted(reply)
    except ServerError:  # 09: a server without the timestamp model (refused for that reason, tested elsewhere)
        assert name.startswith("09_")
        return
    last = max((t.end_ms for t in transcript.tokens), default=0)
    duration = _LENGTH_MS.get(name[:2], last)
    sent = Sent(str(reply.get("wav_name") or ""), duration, sound_ms=0 if not transcript.tokens else 5000)
    assert reply_problem(transcript, order, sent) is None
    assert not suspiciously_empty(transcript, sent)


def test_the_real_2pass_session_passes_the_checks() -> None:
    lines = (REPLIES / "10_2pass_full_session_h5.jsonl").read_text("utf-8").splitlines()
    transcript, order = parse_session_counted([json.loads(line) for line in lines])
    assert transcript.tokens and order == Order()
    assert reply_problem(transcript, order, Sent("h5", transcript.tokens[-1].end_ms)) is None


def _tokens(*times: tuple[int, int]) -> Transcript:
    return Transcript("x", tuple(Token("字", s, e) for s, e in times), "f")


@pytest.mark.parametrize(
    "transcript, order, sent, why",
    [
        (Transcript("x", (Token("字", 0, 100),), "other"), Order(), Sent("f", 1000), "another file"),
        (_tokens((0, 100), (10**12, 10**12 + 100)), Order(), Sent("f", 10_000), "times up to"),
        (_tokens((0, 100), (100, 200)), Order(back=1), Sent("f", 10_000), "go back"),
        (_tokens((0, 100), (0, 100), (200, 300)), Order(repeated=1), Sent("f", 10_000), "repeat"),
        (_tokens(*[(i * 30, i * 30 + 30) for i in range(25)]), Order(), Sent("f", 10_000), "25 tokens within"),
    ],
)
def test_each_check_names_what_is_wrong(transcript: Transcript, order: Order, sent: Sent, why: str) -> None:
    problem = reply_problem(transcript, order, sent)
    assert problem is not None and why in problem


def test_the_margins_accept_what_real_servers_do() -> None:
    # the last token halfway into trailing silence, mp4 decoded by the server 5 % longer, 16 tokens a second
    assert reply_problem(_tokens((0, 100), (9_000, 11_500)), Order(), Sent("f", 10_000)) is None
    assert reply_problem(_tokens((0, 100), (9_000, 10_500 + 2000)), Order(), Sent("f", 10_000)) is None
    dense = _tokens(*[(i * 60, i * 60 + 60) for i in range(100)])
    assert reply_problem(dense, Order(), Sent("f", 10_000)) is None
    assert reply_problem(_tokens((0, 100)), Order(), Sent("f", 0)) is None  # length unknown: not bounded


def test_a_saved_reply_whose_times_are_not_numbers_is_bad_input(tmp_path: Path) -> None:
    saved = tmp_path / "reply.json"
    segment = '{"text_seg": "甲 乙", "punc": "。", "ts_list": [["x", {}], [200, 300]]}'
    saved.write_text('{"text": "甲乙。", "stamp_sents": [' + segment + "]}", "utf-8")
    with pytest.raises(BadInputError, match="saved reply cannot be used"):
        from funasr_subs.commands.retime import read_source

        read_source(saved, None)


def test_a_2pass_servers_results_during_the_upload_are_part_of_its_reply(tmp_path: Path) -> None:
    """FunASR's 2pass server sends a result per voice segment while the audio streams in: not an early reply."""
    import threading

    from websockets.sync.server import ServerConnection, serve

    from funasr_subs.config import Settings
    from funasr_subs.pipeline import recognise_file

    session = [json.loads(line) for line in (REPLIES / "10_2pass_full_session_h5.jsonl").read_text("utf-8").split("\n")
               if line.strip()]  # fmt: skip
    first_offline = next(i for i, m in enumerate(session) if m.get("mode") == "2pass-offline")

    def handler(ws: ServerConnection) -> None:
        name = json.loads(str(ws.recv()))["wav_name"]
        for message in session[: first_offline + 1]:  # at once, while the client uploads
            ws.send(json.dumps({**message, "wav_name": name}, ensure_ascii=False))
        while not (isinstance(got := ws.recv(), str) and json.loads(got).get("is_speaking") is False):
            pass
        for message in session[first_offline + 1 :]:
            ws.send(json.dumps({**message, "wav_name": name}, ensure_ascii=False))
        with contextlib.suppress(Exception):
            ws.recv()  # until the client closes

    with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            audio = make_long_audio(tmp_path / "tone.flac", seconds=120)  # 3.8 MB: several frames to upload
            url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
            # (this stub answers every request with the same session: a tone it "lost" would come back twice)
            rec = recognise_file(audio, Settings(server=url, retries=0, reply_timeout=30, resend_lost=False))
        finally:
            server.shutdown()
            thread.join()
    assert "".join(t.text for t in rec.transcript.tokens) == "锄禾日当午汗滴禾下土谁知盘中餐粒粒皆辛苦"


def test_watch_takes_a_wrong_reply_as_the_servers_fault_and_tries_the_file_again(talk: Path, tmp_path: Path) -> None:
    root = tmp_path / "library"
    root.mkdir()
    (root / "talk.mka").hardlink_to(talk)
    with FunasrTestServer() as bad:
        bad.fault = "inf_time"
        done = run_cli("watch", "--once", "--settle", "0", "--retries", "0", "--state-dir", str(tmp_path / "state"),
                       "--server", bad.url, str(root), env=clean_env(tmp_path))  # fmt: skip
        assert len(bad.files) == 1
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "1e400 is too large a number" in done.stderr, done.stderr
    assert "1 file(s) stay queued for the next run" in done.stderr  # tried again later, not failed for good
    assert not (root / "talk.zh.srt").exists()


def test_the_sound_meter_counts_loud_blocks_across_odd_chunks() -> None:
    import array

    from funasr_subs.recognition.split import SoundMeter

    def pcm(level: int, ms: int) -> bytes:
        return array.array("h", [level, -level] * (ms * 8)).tobytes()  # s16le on the machines we run on

    quiet = SoundMeter(10_000)
    quiet.feed(bytes(32_000))  # a second of digital silence
    quiet.feed(pcm(1000, 2000))  # two of room noise at -30 dBFS
    assert quiet.sound_ms == 0
    loud = SoundMeter(10_000)
    stream = pcm(300, 500) + pcm(8000, 1000) + pcm(300, 500)
    for start in range(0, len(stream), 777):  # odd chunk sizes: sample bytes split between chunks
        loud.feed(stream[start : start + 777])
    assert 1000 <= loud.sound_ms <= 1200
    enough = SoundMeter(300)
    enough.feed(pcm(8000, 5000))
    assert enough.sound_ms == 300  # stops counting once it knows

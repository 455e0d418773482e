"""Speech FunASR lost (issue 21): found from the speech heard, sent again on its own, merged in, and reported."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from funasr_subs.errors import BadInputError
from funasr_subs.protocol import parse_reply, parse_session
from funasr_subs.recognition.lost import LOST_MIN_MS, MOST_MS, Recovery, in_pieces, lost_stretches
from funasr_subs.recognition.merge import insert_replies, merge_replies, shift_reply, split_reply
from funasr_subs.sidecar import Sidecar, read_sidecar
from tests.break_quality import read_timed_cues
from tests.funasr_server import FunasrTestServer
from tests.speech import ZH_SENTENCES, SpeechAudio, build_speech, espeak_available, write_speech
from tests.test_cli_transcribe import cli
from tests.test_on_done import receiving

REPLIES = Path(__file__).parent / "data" / "funasr-responses"
TALK_121S = "11_offline_cpp_2025_long_talk_121s.json"
TALK_35S = "12_offline_cpp_2025_talk_35s_sent_as_mp4.json"
#: What the stand-in loses on the first request: 40 s of a 10-minute talk.
LOSE_AT_MS, LOSE_MS = 240_000, 40_000

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")


def _pairs(path: Path) -> list[tuple[int, int]]:
    """A real reply's token times (read from the text: three of the replies are cut short in FunASR's log)."""
    text = path.read_text(encoding="utf-8")
    found = re.search(r'"timestamp"\s*:\s*"(\[.*?)(?:"|$)', text)
    pairs = re.findall(r"\[(\d+),\s*(\d+)\]", found.group(1) if found else text)
    return sorted({(int(a), int(b)) for a, b in pairs})


def test_real_replies_lose_nothing_even_if_every_moment_were_speech() -> None:
    """The threshold, from the real replies: with speech heard from the first moment to 2 s after the last word,
    none of them has a lost stretch (their longest gap between words is 3.5 s; a word reaches 1 s either side)."""
    checked = 0
    for path in sorted(REPLIES.glob("1*.json")):
        pairs = _pairs(path)
        if len(pairs) < 100:
            continue
        assert lost_stretches([(0, pairs[-1][1] + 2000)], pairs) == [], path.name
        checked += 1
    assert checked == 5
    # and the same reply with 40 s of its words gone has one, where they were
    pairs = _pairs(REPLIES / TALK_121S)
    holed = [p for p in pairs if not 40_000 <= p[0] < 80_000]
    ((start, end),) = lost_stretches([(0, pairs[-1][1])], holed)
    assert 40_000 <= start <= 41_700 and 78_300 <= end <= 80_000, (start, end)


def test_a_pause_without_words_does_not_cut_a_lost_stretch_into_pieces_too_short_to_count() -> None:
    """40 s of 3 s sentences and 1.5 s pauses, all without words: one stretch (each sentence alone is under 5 s)."""
    speech = [(10_000 + i * 4500, 13_000 + i * 4500) for i in range(9)]
    words = [(8_000, 8_500), (52_000, 52_500)]
    assert lost_stretches(speech, words) == [(10_000, 49_000)]
    assert lost_stretches(speech[:1], words) == []  # 3 s of speech without words: not a loss
    assert LOST_MIN_MS == 5_000


@pytest.mark.parametrize("name", [TALK_121S, TALK_35S])
@pytest.mark.parametrize("shape", ["as sent", "strings", "timestamp only"])
def test_a_stretch_sent_again_goes_back_in_its_place(name: str, shape: str) -> None:
    """A real reply with a stretch cut out, and that stretch's own reply (on its own timeline) put back: the very
    same words, times, punctuation and text."""
    reply = json.loads((REPLIES / name).read_text(encoding="utf-8"))
    if shape == "strings":  # the shape of image 0.4.0: stamp_sents as a JSON string
        reply["stamp_sents"] = json.dumps(reply["stamp_sents"], ensure_ascii=False)
    elif shape == "timestamp only":
        del reply["stamp_sents"]
    whole = parse_reply(reply)
    at, end = 10_000, 25_000
    before, rest = split_reply(reply, at)
    lost, after = split_reply(rest, end)
    assert parse_reply(lost).tokens and all(at <= t.start_ms < end + 3000 for t in parse_reply(lost).tokens)
    own = shift_reply(lost, -at)  # what the server answers for the stretch alone
    holed = merge_replies([before, after], [0, 0])
    assert len(parse_reply(holed).tokens) < len(whole.tokens)
    back = insert_replies(holed, [(shift_reply(own, at), at)])
    again = parse_reply(back)
    assert again.tokens == whole.tokens
    assert again.text == whole.text
    assert type(back.get("stamp_sents")) is type(reply.get("stamp_sents"))


def test_the_sidecar_keeps_the_recovery_and_refuses_a_damaged_one(tmp_path: Path) -> None:
    side = Sidecar(reply={"text": ""}, recovery=Recovery(recovered=((1000, 41_000),), lost=((60_000, 70_000),)))
    path = tmp_path / "a.funasr.json"
    path.write_text(side.to_json(), encoding="utf-8")
    assert read_sidecar(path).recovery == side.recovery
    data = json.loads(path.read_text(encoding="utf-8"))
    for bad in ([[5, 1]], [[1, 2], [0, 3]], [[1, "2"]], "x", [[1, True]]):
        data["recovery"]["lost"] = bad
        path.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(BadInputError, match="recovery"):
            read_sidecar(path)


# --- through the command, with real ffmpeg and the stand-in ---------------------------------------------------
@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SpeechAudio]:
    """A 10-minute talk (espeak-ng's Chinese sentences, over and over), as a WAV file."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    audio = build_speech(ZH_SENTENCES * 14, pauses_ms=(400, 900, 250, 1200))
    assert 590_000 <= audio.duration_ms <= 630_000
    return write_speech(tmp_path_factory.mktemp("talk") / "talk.wav", audio), audio


def _server(then: str) -> FunasrTestServer:
    server = FunasrTestServer(
        habits=True,
        lose_at_ms=LOSE_AT_MS,
        lose_ms=LOSE_MS,
        lose_requests=1,
        lose_then=then,  # type: ignore[arg-type]
    )
    server.fault = "lose"
    return server


def _sentences_in_the_loss(audio: SpeechAudio) -> list[tuple[int, int]]:
    return [(s, e) for s, e in audio.truth if s >= LOSE_AT_MS + 1000 and e <= LOSE_AT_MS + LOSE_MS - 1000]


def _shown(srt: Path, sentence: tuple[int, int]) -> bool:
    return any(start < sentence[1] and end > sentence[0] for start, end, _ in read_timed_cues(srt))


def _copy(talk: tuple[Path, SpeechAudio], folder: Path) -> Path:
    media = folder / "talk.wav"
    media.write_bytes(talk[0].read_bytes())
    return media


@needs_espeak
def test_a_stretch_lost_once_is_sent_again_and_its_cues_written(talk: tuple[Path, SpeechAudio], tmp_path: Path) -> None:
    media, audio = _copy(talk, tmp_path), talk[1]
    with _server("words") as server, receiving() as receiver:
        done = cli("transcribe", "--server", server.url, "--retries", "0", "talk.wav", "--on-done",
                   receiver.url(), cwd=tmp_path)  # fmt: skip
        sizes = [f.audio_bytes for f in server.files]
        (call,) = receiver.wait_for_calls(1)
    assert done.returncode == 0, done.stderr
    assert call["body"]["recovery"]["recovered"] and call["body"]["recovery"]["lost"] == []  # the notification too
    line = next(x for x in done.stderr.splitlines() if x.startswith("done: "))
    found = re.search(r"; recovered 1 stretch, (\d+) s$", line)
    assert found and 36 <= int(found.group(1)) <= 40, line
    assert "lost" not in done.stderr and "warning" not in done.stderr, done.stderr
    # the stretch alone went again (with its margin), not the whole talk
    assert len(sizes) == 2 and 36 * 32_000 <= sizes[1] <= 41 * 32_000, sizes
    srt = tmp_path / "talk.zh.srt"
    inside = _sentences_in_the_loss(audio)
    assert len(inside) >= 6 and all(_shown(srt, s) for s in inside)
    side = read_sidecar(tmp_path / "talk.funasr.json")
    assert side.recovery is not None and not side.recovery.lost and side.recovery.resent
    ((start, end),) = side.recovery.recovered
    assert LOSE_AT_MS <= start <= LOSE_AT_MS + 2_500 and LOSE_AT_MS + LOSE_MS - 2_500 <= end <= LOSE_AT_MS + LOSE_MS
    words = [t.start_ms for t in parse_reply(side.reply).tokens]
    assert words == sorted(words) and sum(start <= w < end for w in words) >= 100
    # retime from the sidecar keeps the recovered words and the record
    srt.unlink()
    again = cli("retime", "talk.funasr.json", "--max-cps", "12", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert all(_shown(srt, s) for s in inside)
    assert read_sidecar(tmp_path / "talk.funasr.json").recovery == side.recovery
    assert media.exists()


@needs_espeak
def test_a_stretch_lost_for_good_is_reported_never_silent(talk: tuple[Path, SpeechAudio], tmp_path: Path) -> None:
    _copy(talk, tmp_path)
    with _server("nothing") as server:
        done = cli("transcribe", "--server", server.url, "--retries", "0", "talk.wav", cwd=tmp_path)
        requests = len(server.files)
    assert done.returncode == 0, done.stderr  # the subtitles are written: what came back is worth having
    assert requests == 2
    line = next(x for x in done.stderr.splitlines() if x.startswith("done: "))
    found = re.search(r"; no words for 1 stretch, (\d+) s even sent again alone \(music or noise heard as", line)
    assert found and 36 <= int(found.group(1)) <= 40, line
    note = next(x for x in done.stderr.splitlines() if x.startswith("note: "))
    assert "talk.wav: no words for 1 stretch" in note and re.search(r": 4:0[0-2]-4:[34]\d$", note), note
    side = read_sidecar(tmp_path / "talk.funasr.json")
    assert side.recovery is not None and not side.recovery.recovered and len(side.recovery.lost) == 1
    assert not any(_shown(tmp_path / "talk.zh.srt", s) for s in _sentences_in_the_loss(talk[1]))


@needs_espeak
def test_with_re_sending_off_the_loss_is_reported_and_nothing_sent_again(
    talk: tuple[Path, SpeechAudio], tmp_path: Path
) -> None:
    root, state = tmp_path / "lib", tmp_path / "state"
    root.mkdir()
    _copy(talk, root)
    with _server("words") as server:
        done = cli(
            "watch", "--once", str(root), "--settle", "0", "--state-dir", str(state), "--server", server.url,
            "--no-resend-lost",
        )  # fmt: skip
        requests = len(server.files)
    assert done.returncode == 0, done.stderr
    assert requests == 1
    assert "not sent again (--no-resend-lost)" in done.stderr, done.stderr
    side = read_sidecar(root / "talk.funasr.json")
    assert side.recovery is not None and not side.recovery.resent and len(side.recovery.lost) == 1
    status = cli("status", "--state-dir", str(state))
    assert status.returncode == 0, status.stderr
    row = next(x for x in status.stdout.splitlines() if "talk.wav" in x)
    assert re.search(r"done +\S*talk\.wav -> talk\.zh\.srt +\(lost 1 stretch, \d+ s \(FunASR returned no text", row)


def test_a_stretch_goes_back_into_a_2pass_session_too() -> None:
    lines = (REPLIES / "10_2pass_full_session_h5.jsonl").read_text(encoding="utf-8").splitlines()
    reply = {"session": [json.loads(line) for line in lines if line.strip()]}
    whole = parse_session(reply["session"])
    at = whole.tokens[len(whole.tokens) // 2].start_ms
    before, rest = split_reply(reply, at)
    assert before["session"] and rest["session"]
    holed = merge_replies([before, {"session": []}], [0, 0])  # the second half lost
    back = insert_replies(holed, [(rest, at)])
    assert parse_session(back["session"]).tokens == whole.tokens
    assert insert_replies({"session": []}, [(reply, 0)])["session"] == reply["session"]


def test_a_sentence_with_words_on_both_sides_of_the_stretch_is_cut_between_them() -> None:
    reply = json.loads((REPLIES / TALK_121S).read_text(encoding="utf-8"))
    whole = parse_reply(reply)
    first = reply["stamp_sents"][0]  # 经常啊要把自己的涣散的心呢放回来， from 150 to 3950 ms
    at = first["ts_list"][8][0]  # before 涣
    before, after = split_reply(reply, at)
    assert "".join(t.text for t in parse_reply(before).tokens) == "经常啊要把自己的"
    assert parse_reply(after).tokens[0].text == "涣" and parse_reply(after).text.startswith("涣散的心呢放回来，")
    assert parse_reply(merge_replies([before, after], [0, 0])).tokens == whole.tokens


def test_a_long_loss_is_sent_again_in_pieces_cut_at_pauses() -> None:
    """FunASR loses words of long audio: 20 minutes lost go again as requests of at most 5, cut in pauses."""
    speech = [(i * 4000, i * 4000 + 3000) for i in range(300)]  # 3 s of speech, 1 s pause, for 20 minutes
    pieces = in_pieces((0, 1_199_000), speech)
    assert len(pieces) == 4 and pieces[0][0] == 0 and pieces[-1][1] == 1_199_000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(e - s <= MOST_MS for s, e in pieces)
    assert all(s % 4000 == 3500 for s, _ in pieces[1:])  # in the middle of a pause
    assert in_pieces((0, 1_000_000), []) == [(0, 300_000), (300_000, 600_000), (600_000, 900_000), (900_000, 1_000_000)]
    assert in_pieces((5, 9), speech) == [(5, 9)]


def test_a_message_names_five_stretches_at_most() -> None:
    """A server that loses nearly everything of a day of audio: the line that says what goes again (and the note of
    what stays lost) named thousands of stretches; it names five and counts the rest."""
    from funasr_subs.recognition.lost import spans_text

    assert spans_text([(0, 6000), (10_000, 16_000)]) == "0:00-0:06, 0:10-0:16"
    many = spans_text([(k * 10_000, k * 10_000 + 6000) for k in range(3000)])
    assert many.endswith(", 0:40-0:46 and 2995 more") and len(many) < 100, many

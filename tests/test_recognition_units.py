"""Pure parts of recognition: server URLs with slots, the PCM splitter, and the reply merge on real replies."""

from __future__ import annotations

import array
import json
from pathlib import Path
from typing import Any

import pytest

from funasr_subs.config import Settings, load_settings
from funasr_subs.errors import ConfigError
from funasr_subs.protocol import parse_pairs, parse_reply, parse_session
from funasr_subs.recognition.endpoint import Endpoint, parse_endpoint, parse_endpoints
from funasr_subs.recognition.merge import join_texts, merge_replies, shift_reply
from funasr_subs.recognition.split import BYTES_PER_MS, PcmSplitter, choose_cut

DATA = Path(__file__).parent / "data" / "funasr-responses"


# --- server URLs ------------------------------------------------------------------------------------------------
def test_slots_fragment_and_default() -> None:
    assert parse_endpoint("ws://gpu1:10095#slots=4") == Endpoint("ws://gpu1:10095", 4)
    assert parse_endpoint("wss://nas:10095") == Endpoint("wss://nas:10095", 1)
    assert parse_endpoints(["ws://a:1", "ws://a:1#slots=3", "ws://b:2"]) == (
        Endpoint("ws://a:1", 3),
        Endpoint("ws://b:2"),
    )


@pytest.mark.parametrize("bad", ["ftp://a:1", "ws://a:1#slots=0", "ws://a:1#slot=2", "ws://a:99999", "ws://:80"])
def test_bad_server_urls_are_config_errors_naming_the_url(bad: str) -> None:
    with pytest.raises(ConfigError, match="server URL"):
        Settings(servers=(bad,))


def test_servers_list_in_config_and_a_later_single_server_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('servers = ["ws://a:1#slots=2", "ws://b:2"]\nsplit-minutes = 5\n', encoding="utf-8")
    pool = load_settings({}, config_path=cfg, environ={})
    assert pool.server_list == ("ws://a:1#slots=2", "ws://b:2") and pool.split_minutes == 5
    single = load_settings({}, config_path=cfg, environ={"FUNASR_SUBS_SERVER": "ws://c:3"})
    assert single.server_list == ("ws://c:3",)
    old = tmp_path / "old.toml"
    old.write_text('server = "ws://old:10095"\n', encoding="utf-8")
    assert load_settings({}, config_path=old, environ={}).server_list == ("ws://old:10095",)
    flags = load_settings({"servers": ["ws://x:1", "ws://y:2"]}, config_path=old, environ={})
    assert flags.server_list == ("ws://x:1", "ws://y:2")


# --- the splitter -----------------------------------------------------------------------------------------------
def _pcm(segments: list[tuple[int, int]]) -> bytes:
    """(duration_ms, amplitude) runs of a square-ish tone; amplitude 0 is digital silence."""
    samples = array.array("h")
    for ms, amp in segments:
        n = ms * 16
        samples.extend((amp if (i // 8) % 2 else -amp) for i in range(n))
    return samples.tobytes()


def test_cut_lands_in_the_middle_of_the_longest_quiet_stretch() -> None:
    # speech, a 300 ms pause, speech, a 900 ms pause (the longest), speech; window 0..6000 ms
    pcm = _pcm([(1500, 8000), (300, 0), (1500, 8000), (900, 20), (1800, 8000)])
    cut = choose_cut(pcm, 0, 6000)
    assert 3300 + 200 <= cut <= 4200 - 200  # inside the long pause, clear of both edges
    assert cut % 10 == 0


def test_splitter_pieces_join_to_the_input_with_consistent_offsets() -> None:
    runs = [(9000, 6000), (1200, 0)] * 6  # 61 s: a pause every 10.2 s
    pcm = _pcm(runs)
    splitter = PcmSplitter(20_000)
    pieces = []
    for start in range(0, len(pcm), 100_000):  # arbitrary chunking, as ffmpeg delivers it
        pieces += splitter.feed(pcm[start : start + 100_000])
    pieces += splitter.finish()
    assert b"".join(p.pcm for p in pieces) == pcm
    assert [p.offset_ms for p in pieces] == [sum(p.duration_ms for p in pieces[:i]) for i in range(len(pieces))]
    assert len(pieces) >= 2
    for piece in pieces[1:]:  # every cut inside a pause: (offset mod 10.2 s) within the 1.2 s of silence
        assert 9000 < piece.offset_ms % 10_200 < 10_200, piece.offset_ms
    assert splitter.finish() == []
    assert all(len(p.pcm) % BYTES_PER_MS == 0 for p in pieces)


# --- the merge --------------------------------------------------------------------------------------------------
def _token_positions(text: str, tokens: list[str]) -> list[int]:
    """End index in ``text`` of each token (found in order, case-insensitive)."""
    lowered, pos, ends = text.lower(), 0, []
    for token in tokens:
        idx = lowered.find(token.lower(), pos)
        assert idx >= 0, token
        pos = idx + len(token)
        ends.append(pos)
    return ends


def _split_at_pause(reply: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Cut a real reply between the two segments with the longest pause: (first, second shifted to 0, cut ms)."""
    sents = reply["stamp_sents"]
    k = max(range(1, len(sents)), key=lambda i: sents[i]["start"] - sents[i - 1]["end"])
    cut = (sents[k - 1]["end"] + sents[k]["start"]) // 2
    first_tokens = [t for s in sents[:k] for t in s["text_seg"].split()]
    end = _token_positions(reply["text"], first_tokens)[-1]
    end += len(sents[k - 1]["punc"]) if reply["text"][end:].startswith(sents[k - 1]["punc"]) else 0
    pairs = parse_pairs(reply["timestamp"])
    assert pairs is not None
    n = len(first_tokens)

    def piece(segments: list[dict[str, Any]], text: str, times: list[tuple[int, int]], off: int) -> dict[str, Any]:
        moved = [
            {
                **s,
                "start": s["start"] - off,
                "end": s["end"] - off,
                "ts_list": [[a - off, b - off] for a, b in s["ts_list"]],
            }
            for s in segments
        ]
        stamp = json.dumps([[a - off, b - off] for a, b in times], separators=(",", ":"))
        return {**reply, "stamp_sents": moved, "text": text, "timestamp": stamp}

    first = piece(sents[:k], reply["text"][:end], pairs[:n], 0)
    second = piece(sents[k:], reply["text"][end:], pairs[n:], cut)
    return first, second, cut


@pytest.mark.parametrize(
    "name", ["11_offline_cpp_2025_long_talk_121s.json", "12_offline_cpp_2025_talk_35s_sent_as_mp4.json"]
)
def test_real_reply_split_at_a_pause_merges_back_to_the_same_reply(name: str) -> None:
    original = json.loads((DATA / name).read_text(encoding="utf-8"))
    first, second, cut = _split_at_pause(original)
    assert second["stamp_sents"][0]["start"] < cut  # the second piece really starts near 0
    merged = merge_replies([first, second], [0, cut])
    assert merged == original
    assert list(merged) == list(original)  # same keys in the same (sorted) order, as the server writes them
    assert parse_reply(merged) == parse_reply(original)


def test_merge_keeps_sentinels_string_numbers_and_silent_pieces() -> None:
    silent = {"is_final": False, "mode": "offline", "text": "", "wav_name": "x"}
    spoken = {
        "is_final": False,
        "mode": "offline",
        "stamp_sents": [
            {"end": -1, "punc": "，", "start": -1, "text_seg": "", "ts_list": []},
            {"end": "900", "punc": "。", "start": "100", "text_seg": "好 的", "ts_list": [[100, 500], [500, 900]]},
        ],
        "text": "，好的。",
        "timestamp": "[[100,500],[500,900]]",
        "wav_name": "x",
    }
    merged = merge_replies([silent, spoken], [0, 60_000])
    assert merged["text"] == "，好的。" and list(merged) == sorted(merged)
    assert merged["timestamp"] == "[[60100,60500],[60500,60900]]"
    assert merged["stamp_sents"][0]["start"] == -1 and merged["stamp_sents"][1]["start"] == "60100"
    assert [t.start_ms for t in parse_reply(merged).tokens] == [60100, 60500]


def test_merge_of_2pass_sessions_and_latin_text() -> None:
    part = {"mode": "2pass-offline", "text": "ok。", "timestamp": "[[0,300]]", "is_final": True}
    merged = merge_replies([{"session": [part]}, {"session": [part]}], [0, 10_000])
    assert [t.start_ms for t in parse_session(merged["session"]).tokens] == [0, 10_000]
    assert (
        join_texts(["hello world", "again."]) == "hello world again." and join_texts(["你好。", "再见"]) == "你好。再见"
    )
    assert shift_reply({"text": "a", "timestamp": [[1, 2]]}, 5)["timestamp"] == [[6, 7]]


def test_pieces_are_a_multiple_of_the_slots_and_jobs_fill_them() -> None:
    from funasr_subs.recognition.pool import Pool
    from funasr_subs.recognition.run import even_target, split_ms

    assert even_target(24 * 60_000, 10 * 60_000, 4) == 6 * 60_000  # 4 pieces of 6 min, not 10 + 10 + 4
    assert even_target(120 * 60_000, 10 * 60_000, 4) == 10 * 60_000  # 12 pieces: already a multiple
    assert even_target(120 * 60_000, 10 * 60_000, 5) == 8 * 60_000  # 15 pieces for 5 slots
    assert split_ms(Settings(), 1) == 0 and split_ms(Settings(), 3) == 600_000
    assert split_ms(Settings(split_minutes=0), 3) == 0 and split_ms(Settings(split_minutes=0.5), 1) == 30_000

    async def probe(url: str) -> None:
        return None

    pool = Pool(parse_endpoints(["ws://a:1#slots=3", "ws://b:1"]), probe)
    assert pool.workers(1) == 4 and pool.workers(6) == 6
    single = Pool.from_settings(Settings(server="ws://a:1", jobs=3))
    assert [s.slots for s in single.status()] == [3]  # one server without #slots: --jobs N as before
    assert [s.slots for s in Pool.from_settings(Settings(server="ws://a:1#slots=1", jobs=3)).status()] == [1]
    assert single.workers(3) == 3

"""The stand-in server times tokens like FunASR (``habits=True``) and can lose a stretch (fault ``lose``)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from funasr_subs.cli import main
from funasr_subs.media.activity import without_words
from funasr_subs.sidecar import read_sidecar
from tests.fake_recognition import HABIT_CAP_MS, habitual, lose_stretch, sentences_for
from tests.funasr_server import FunasrTestServer
from tests.media import decode_pcm, make_media
from tests.speech import ZH_SENTENCES, build_speech, espeak_available, write_speech

#: A 300 ms pause (absorbed), a 700 ms one (capped), a 2 s one (a cut of the VAD) and the end of the file.
BURSTS = [(1000, 2000), (2300, 3300), (4000, 5000), (7000, 8000)]
DURATION_MS = 10_000


def _times(reply: dict[str, Any]) -> list[tuple[int, int]]:
    return [(a, b) for seg in reply["stamp_sents"] for a, b in seg["ts_list"]]


def _ask(server: FunasrTestServer, pcm: bytes) -> dict[str, Any]:
    with connect(server.url, max_size=None, open_timeout=5) as ws:
        ws.send(json.dumps({"mode": "offline", "wav_name": "x", "wav_format": "pcm", "audio_fs": 16000,
                            "itn": True, "is_speaking": True, "chunk_size": [5, 10, 5]}))  # fmt: skip
        ws.send(pcm)
        ws.send(json.dumps({"is_speaking": False}))
        reply: dict[str, Any] = json.loads(ws.recv(timeout=15))
    return reply


def test_habits_hide_pauses_like_funasr() -> None:
    plain = [t for s in sentences_for(BURSTS) for t in s.times]
    timed = [t for s in habitual(sentences_for(BURSTS), DURATION_MS) for t in s.times]
    assert len(timed) == len(plain)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(timed)]
    # the 300 ms pause is absorbed: the sentence after it starts where the one before ends
    assert timed[4] == (plain[4][0], plain[5][0]) and gaps[4] == 0
    # before the 700 ms pause the last token runs on to the 600 ms cap, and no further
    assert timed[9][1] == plain[9][0] + HABIT_CAP_MS and gaps[9] == 4000 - (3100 + HABIT_CAP_MS)
    # before the 2 s cut: halfway into the silence; the next starts 600 ms before its sound
    assert timed[14][1] == 5000 + 1000 and timed[15][0] == 7000 - HABIT_CAP_MS
    assert timed[-1][1] == 8000 + 1000  # halfway to the end of the file
    inner = [t for i, t in enumerate(timed) if i not in (14, 15, 19)]  # a VAD segment's last and first tokens
    assert all(b - a <= HABIT_CAP_MS for a, b in inner)
    assert sum(g < 100 for g in gaps) >= len(gaps) - 2  # like reply 11: almost no gaps between tokens


def test_the_server_with_habits_and_without(tmp_path: Path) -> None:
    pcm = decode_pcm(make_media(tmp_path / "b.wav", [(s, e - s) for s, e in BURSTS], DURATION_MS))
    with FunasrTestServer(habits=True) as habits, FunasrTestServer() as plain:
        timed, exact = _times(_ask(habits, pcm)), _times(_ask(plain, pcm))
    assert len(timed) == len(exact) == 20
    assert [a for a, _ in exact[:4]] == [1000, 1200, 1400, 1600]  # today's default: tokens exactly on the sound
    assert exact[4][1] == 2000 and exact[5][0] == 2300
    assert timed[4][1] == timed[5][0] == 2300  # habits: the pause is gone
    assert abs(timed[-1][1] - 9000) <= 20


def test_lose_stretch_drops_the_tokens_there_and_nothing_else() -> None:
    segments = sentences_for(BURSTS)
    kept = lose_stretch(segments, 2300, 5000)
    starts = [a for s in kept for a, _ in s.times]
    assert starts and all(not 2300 <= a < 5000 for a in starts)
    assert len(starts) == 10 and starts[0] == 1000 and starts[-1] == 7800


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (.ci/run installs it)")
def test_a_lost_stretch_shows_as_speech_without_tokens(funasr_server: FunasrTestServer, tmp_path: Path) -> None:
    """Fault ``lose``: the reply has no words for 12 s of speech; the speech activity in the sidecar still has
    it, which is what finding (and re-sending) lost stretches will use."""
    audio = build_speech(ZH_SENTENCES[:8], pauses_ms=(800,))
    media = write_speech(tmp_path / "long.wav", audio)
    funasr_server.habits = True
    funasr_server.fault = "lose"
    funasr_server.lose_at_ms, funasr_server.lose_ms = 12_000, 12_000
    # (not sent again: the reply keeps the hole; tests/test_lost.py sends it again)
    assert main(["transcribe", "--server", funasr_server.url, "--retries", "0", "--no-resend-lost", str(media)]) == 0
    side = read_sidecar(tmp_path / "long.funasr.json")
    tokens = [a for seg in side.reply["stamp_sents"] for a, _ in seg["ts_list"]]
    # (the first token after the stretch starts up to 600 ms early: habits)
    assert tokens and not [a for a in tokens if 12_000 <= a < 24_000 - HABIT_CAP_MS]
    assert side.speech is not None
    heard = sum(min(e, 24_000) - max(s, 12_000) for s, e in side.speech.intervals if s < 24_000 and e > 12_000)
    assert heard >= 9_000  # most of the lost 12 s is speech the detector heard
    token_times = [(a, b) for seg in side.reply["stamp_sents"] for a, b in seg["ts_list"]]
    (lost,) = without_words(side.speech.intervals, token_times)  # the one stretch, and nothing else
    # within a token's run-on (600 ms) and the reach a word is given (1 s) of the words lost
    assert abs(lost[0] - 12_000) <= 1_600 + 100 and abs(lost[1] - 24_000) <= 1_600 + 100, lost

"""``funasr-subs sync`` where the evidence is thin: a short subtitle of another video, cues without text of their own
next to a cut or an inserted scene (generated films: cue timings and text from a seeded RNG, speech made from them)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from funasr_subs.cli import main
from funasr_subs.model import Cue, Token
from funasr_subs.writers import render
from tests.sync_data import NOISE, reply_of, speech_tokens

#: Timing-pattern speech is untidier than its cues: late starts, pauses inside cues, speech running on.
UNTIDY = {"lead_ms": 150, "pause": 0.3, "run_on": 0.3}


def film(seed: int, cues: int = 120) -> list[Cue]:
    """A film's cues: 0.9-4.5 s long, gaps of 0.1-0.6 s or 0.6-3 s, Chinese text about 4 characters a second."""
    rng = random.Random(seed)
    t = rng.randint(500, 3000)
    out = []
    for _ in range(cues):
        length = rng.randint(900, 4500)
        text = "".join(rng.choice(NOISE) for _ in range(max(2, length // 250)))
        out.append(Cue(t, t + length, (text,)))
        t += length + rng.choice([rng.randint(100, 600), rng.randint(600, 3000)])
    return out


def in_english(cues: list[Cue]) -> list[Cue]:
    return [Cue(c.start_ms, c.end_ms, ("so this is what we said",)) for c in cues]


def write_reply(path: Path, tokens: list[Token]) -> Path:
    path.write_text(json.dumps(reply_of(tokens)), encoding="utf-8")
    return path


def write_srt(path: Path, cues: list[Cue], late_ms: int = 0) -> Path:
    moved = [Cue(c.start_ms + late_ms, c.end_ms + late_ms, c.lines) for c in cues]
    path.write_text(render(moved, "srt"), encoding="utf-8")
    return path


def test_a_short_subtitle_of_another_video_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ten cues whose text matches nothing fit somewhere in any film's speech by their timing alone (the offset, the
    frame rate and the pieces are searched): on main 107 of 114 such windows were "synced". The same cues are refused
    now, while a whole film's subtitle is still synced to its own speech."""
    other = write_reply(tmp_path / "other.json", speech_tokens(film(101), seed=1, **UNTIDY))  # type: ignore[arg-type]
    cues = in_english(film(1))
    written = []
    for k in range(0, 60, 10):
        sub = write_srt(tmp_path / f"part{k}.en.srt", cues[k : k + 10], late_ms=7_000)
        assert main(["sync", str(sub), str(other), "-o", str(tmp_path / f"out{k}.srt")]) == 1
        err = capsys.readouterr().err
        assert "no alignment it can trust" in err and "nothing written" in err
        written += list(tmp_path.glob("out*"))
    assert written == []
    own = write_reply(tmp_path / "own.json", speech_tokens(film(1), seed=1, **UNTIDY))  # type: ignore[arg-type]
    sub = write_srt(tmp_path / "whole.en.srt", cues, late_ms=7_000)
    assert main(["sync", str(sub), str(own), "-o", str(tmp_path / "whole.srt")]) == 0
    assert "synced by timing pattern" in capsys.readouterr().out

"""Cue edges against the true speech: from the token times alone, and moved onto the speech heard (cues/edges.py).

    python -m benchmarks.bench_edges                   # zh, 20 dB, three background mixes, --send pcm
    python -m benchmarks.bench_edges --send mp4 --snr 10

Speech made here (tests/speech.py): ten Chinese espeak-ng sentences joined by pauses of 180-1500 ms (the truth),
mixed with music-like chords and noise at ``--snr`` dB, recognised by the stand-in timed like FunASR
(``habits=True``: a first token after a long pause starts up to 600 ms before its sound, a last token runs on into
the silence). One transcribe per mix; the cues are then built from the sidecar's reply without and with its speech
intervals. Printed: for each true sentence onset, the distance to the nearest cue start; for each true sentence end,
how far after it the speech of the cue holding it ends (before the linger and the other display rules), both as
median and 90th percentile, and the share within 100 ms. The stand-in "recognises" by a level threshold: below
about 15 dB it merges the sentences, and the figures then measure the stand-in, not the edges.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from funasr_subs.cli import main as cli_main
from funasr_subs.config import Settings
from funasr_subs.cues import build_cues
from funasr_subs.cues.edges import Spoken, on_speech
from funasr_subs.cues.layout import prepare
from funasr_subs.cues.segment import segment
from funasr_subs.cues.words import words_and_bonds
from funasr_subs.model import Token
from funasr_subs.protocol import parse_reply
from funasr_subs.sidecar import read_sidecar
from tests.funasr_server import FunasrTestServer
from tests.speech import ZH_SENTENCES, build_speech, espeak_available, write_speech

Interval = tuple[int, int]


def speech_spans(tokens: Sequence[Token], heard: Sequence[Interval]) -> tuple[list[Interval], list[Interval]]:
    """Each cue's speech (start, end) as the engine takes it: from the tokens, and moved onto ``heard``."""
    cs = Settings().cue_settings()
    words, bonds = words_and_bonds([t for t in tokens if t.text.strip()], cs)
    prep = prepare(words, cs, bonds)
    spoken = [Spoken(prep.starts[i], prep.ends[i], prep.starts[j], prep.ends[j]) for i, j in segment(prep, cs)]
    room = cs.min_duration + cs.min_gap  # as build_cues moves them
    return [(s.start, s.end) for s in spoken], on_speech(spoken, heard, longest_ms=cs.max_duration, room_ms=room)


def _percentile(values: Sequence[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(name: str, errors: Sequence[int]) -> str:
    near = sum(abs(e) <= 100 for e in errors)
    return (
        f"  {name:<34} median {statistics.median(errors):6.0f} ms, 90th percentile {_percentile(errors, 0.9):5d} ms,"
        f" within 100 ms {near}/{len(errors)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snr", type=float, default=20.0, help="speech to background, dB (default 20)")
    parser.add_argument("--seeds", type=int, default=3, help="background mixes (default 3)")
    parser.add_argument("--send", choices=["pcm", "mp4"], default="pcm")
    args = parser.parse_args(argv)
    if not espeak_available():
        print("espeak-ng is required (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    starts: dict[str, list[int]] = {"tokens": [], "speech": []}
    ends: dict[str, list[int]] = {"tokens": [], "speech": []}
    with tempfile.TemporaryDirectory(prefix="bench-edges-") as folder:
        for seed in range(1, args.seeds + 1):
            audio = build_speech(ZH_SENTENCES, snr_db=args.snr, seed=seed)
            media = write_speech(Path(folder) / f"talk-{seed}.m4a", audio)
            with FunasrTestServer(habits=True) as server:
                argv = ["transcribe", "--server", server.url, "--send", args.send, "--retries", "0", "-q", str(media)]
                if cli_main(argv) != 0:
                    return 1
            side = read_sidecar(media.with_name(f"talk-{seed}.funasr.json"))
            heard = side.speech.intervals if side.speech is not None else ()
            tokens = parse_reply(side.reply).shifted(side.offset_ms).tokens
            cs = Settings().cue_settings()
            spans = dict(zip(("tokens", "speech"), speech_spans(tokens, heard), strict=True))
            for name, speech in (("tokens", ()), ("speech", heard)):
                cues = build_cues(tokens, cs, speech=speech)
                starts[name] += [min(abs(c.start_ms - onset) for c in cues) for onset, _ in audio.truth]
                ends[name] += [[e for s, e in spans[name] if s < end][-1] - end for _, end in audio.truth]
    print(f"ten Chinese sentences x {args.seeds} mixes at {args.snr:g} dB, --send {args.send}, stand-in with habits")
    print("cue start against the true sentence onset (nearest cue start):")
    print(_line("token times alone (before)", starts["tokens"]))
    print(_line("on the speech heard (after)", starts["speech"]))
    print("end of the cue's speech after the true sentence end (before the linger):")
    print(_line("token times alone (before)", ends["tokens"]))
    print(_line("on the speech heard (after)", ends["speech"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Voice-activity detectors compared on speech made here (tests/speech.py): frame F1 per SNR, CPU per hour, size.

    python -m benchmarks.bench_vad              # every candidate that is installed
    python -m benchmarks.bench_vad --seeds 3    # more background mixes per case

Candidates: ``webrtcvad-wheels`` (the project's dependency), and, when installed beside it, ``ten-vad`` and the
ONNX model shipped in the ``silero-vad`` wheel run on ``onnxruntime`` (``pip install ten-vad onnxruntime`` and
``pip install --no-deps silero-vad``: its wheel requires torch, which the ONNX model does not need). Every detector's
frame decisions go through the same smoothing (funasr_subs.media.activity.Smoother, its frame size), so the figures
compare the detectors, not the rules. The speech: ten Chinese (espeak-ng ``cmn``) and ten English sentences joined
by pauses of 180-1500 ms, clean and mixed with music-like chords and white noise at 20, 10 and 5 dB.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from funasr_subs.media.activity import Rules, intervals_of
from funasr_subs.media.vad import webrtc_decisions
from tests.speech import EN_SENTENCES, RATE, ZH_SENTENCES, build_speech, frame_f1, placed_within

Decide = Callable[[bytes], tuple[int, Iterator[bool]]]  # pcm -> (frame_ms, decisions)


def _webrtc(mode: int) -> Decide:
    def decide(pcm: bytes) -> tuple[int, Iterator[bool]]:
        return 30, webrtc_decisions(pcm, mode=mode, frame_ms=30)

    return decide


def _silero() -> Decide:
    import onnxruntime as ort  # type: ignore[import-not-found]

    model = Path(importlib.util.find_spec("silero_vad").origin).parent / "data" / "silero_vad.onnx"  # type: ignore[union-attr,arg-type]
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def decide(pcm: bytes) -> tuple[int, Iterator[bool]]:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros((1, 64), dtype=np.float32)
        rate = np.array(RATE, dtype=np.int64)
        out: list[bool] = []
        for at in range(0, len(samples) - 511, 512):
            chunk = np.concatenate([context, samples[at : at + 512][None, :]], axis=1)
            prob, state = session.run(None, {"input": chunk, "state": state, "sr": rate})
            context = chunk[:, -64:]
            out.append(float(prob[0][0]) >= 0.5)
        return 32, iter(out)

    return decide


def _ten() -> Decide:
    from ten_vad import TenVad  # type: ignore[import-not-found]

    def decide(pcm: bytes) -> tuple[int, Iterator[bool]]:
        vad = TenVad(256, 0.5)
        samples = np.frombuffer(pcm, dtype="<i2")
        out = [bool(vad.process(samples[at : at + 256])[1]) for at in range(0, len(samples) - 255, 256)]
        return 16, iter(out)

    return decide


def candidates() -> dict[str, Decide]:
    found: dict[str, Decide] = {"webrtcvad mode 2": _webrtc(2), "webrtcvad mode 3": _webrtc(3)}
    if importlib.util.find_spec("silero_vad") and importlib.util.find_spec("onnxruntime"):
        found["silero-vad (onnx)"] = _silero()
    if importlib.util.find_spec("ten_vad"):
        found["ten-vad"] = _ten()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    snrs: list[float | None] = [None, 20, 10, 5]
    clips = []
    for snr in snrs:
        for seed in range(1, args.seeds + 1):
            clips.append((snr, build_speech(ZH_SENTENCES, voice="cmn", snr_db=snr, seed=seed)))
            clips.append((snr, build_speech(EN_SENTENCES, voice="en", snr_db=snr, seed=seed + 100)))
    audio_s = sum(len(c.pcm) for _, c in clips) / (2 * RATE)
    print(f"{len(clips)} clips, {audio_s:.0f} s of audio; frame F1 (10 ms frames) against the sentence times")
    print("| detector | clean | 20 dB | 10 dB | 5 dB | sentences ±100 ms: clean / 20 / 10 / 5 dB | CPU s per hour |")
    print("|---|---|---|---|---|---|---|")
    for name, decide in candidates().items():
        scores: dict[float | None, list[float]] = {snr: [] for snr in snrs}
        placed: dict[float | None, list[float]] = {snr: [] for snr in snrs}
        cpu = 0.0
        for snr, clip in clips:
            began = time.process_time()
            frame_ms, decisions = decide(clip.pcm)
            found = intervals_of(decisions, Rules(frame_ms=frame_ms))
            cpu += time.process_time() - began
            scores[snr].append(frame_f1(clip.truth, found, clip.duration_ms))
            placed[snr].append(placed_within(clip.truth, found, 100))
        cells = " | ".join(f"{np.mean(scores[snr]):.3f}" for snr in snrs)
        share = " / ".join(f"{np.mean(placed[snr]):.0%}" for snr in snrs)
        print(f"| {name} | {cells} | {share} | {cpu / audio_s * 3600:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

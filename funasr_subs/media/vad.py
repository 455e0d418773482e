"""Speech activity from the PCM we send: WebRTC's voice-activity detector fed the stream as it passes to the server.

No second decode: :class:`Listener` is given every chunk of s16le 16 kHz mono PCM on its way to the server (see
``recognition/run.py``), cuts it into 30 ms frames, asks the detector about each and hands the decisions to the pure
smoothing of :mod:`funasr_subs.media.activity`. Memory stays flat (at most a batch of frames and the intervals found).

It runs in the event loop that sends the audio, between two chunks, not in a thread: a chunk of 1 MB (32 s) is
heard in about 3.5 ms, while ffmpeg takes 13 ms to decode the next into its pipe (which ``media.ffmpeg`` makes 1 MB
deep), so ffmpeg never waits. A thread of its own cost more: the detector holds the GIL, and the loop, which lets go
of it at every read and send, waited for it each time (measured: 1.09 x the run without speech activity; in the
loop: under 1 % over the chunks; docs/speech-activity.md).

Why WebRTC's detector (``webrtcvad-wheels``): measured on speech with music and noise (docs/speech-activity.md),
the neural detectors place speech edges better in music and noise but cost 25-45 times the CPU — more than the
whole ``--send pcm`` run — and tens of MB more to install (or a system library); this one costs 0.25 s of CPU an
hour of audio and 200 kB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from itertools import repeat

from funasr_subs.media.activity import Level, Rules, Smoother, Speech

log = logging.getLogger(__name__)

RATE = 16_000
#: WebRTC's aggressiveness, 0-3: 3 calls the least noise speech (measured best on speech in music and noise).
MODE = 3
FRAME_MS = 30
DETECTOR = f"webrtcvad mode {MODE}, {FRAME_MS} ms"
RULES = Rules(frame_ms=FRAME_MS)
_LEVEL_BATCH = 256  # frames whose level is measured at once (240 kB): numpy's cost is mostly per call


class Detector:
    """WebRTC's decisions for whole frames, many at a time (no Python loop around the C calls).

    The package's own C module is called the way its ``webrtcvad.Vad.is_speech`` calls it: importing ``webrtcvad``
    reads the package's version from the installed metadata (25 ms a run) and wraps every frame's call in Python
    (0.06 s an hour). Should a later release change that module, its public wrapper is used instead."""

    def __init__(self, mode: int = MODE, frame_ms: int = FRAME_MS) -> None:
        self.step = RATE * 2 * frame_ms // 1000  # bytes a frame
        self._decide: Callable[..., bool]
        self._args: tuple[object, ...]
        try:
            import _webrtcvad  # type: ignore[import-not-found]

            handle = _webrtcvad.create()
            _webrtcvad.init(handle)
            _webrtcvad.set_mode(handle, mode)
            _webrtcvad.process(handle, RATE, bytes(self.step), self.step // 2)  # a trial: the call is as we know it
            self._decide, self._args = _webrtcvad.process, (handle, RATE)
        except Exception:  # a webrtcvad-wheels whose inside differs (moved, renamed, called otherwise): its public API
            import webrtcvad

            self._decide, self._args = webrtcvad.Vad(mode).is_speech, ()

    def decide(self, frames: memoryview) -> bytes:
        """One byte per whole frame of ``frames`` (1: speech, 0: none); a partial frame at the end is left out."""
        step = self.step
        count = len(frames) // step
        pieces = [frames[at : at + step] for at in range(0, count * step, step)]
        if self._args:  # _webrtcvad.process(handle, rate, frame, samples)
            handle, rate = self._args
            decisions = map(self._decide, repeat(handle, count), repeat(rate, count), pieces, repeat(step // 2, count))
        else:  # webrtcvad.Vad.is_speech(frame, rate)
            decisions = map(self._decide, pieces, repeat(RATE, count))
        return bytes(decisions)


def webrtc_decisions(pcm: bytes, *, mode: int = MODE, frame_ms: int = FRAME_MS) -> Iterator[bool]:
    """One decision per whole frame of ``pcm`` (s16le 16 kHz mono)."""
    return (byte == 1 for byte in Detector(mode, frame_ms).decide(memoryview(pcm)))


class Listener:
    """PCM chunks in (``feed``, any sizes), :class:`Speech` out (``finish``): the detector's intervals and the speech
    band's level of every frame (:mod:`funasr_subs.media.level`; one byte a frame)."""

    def __init__(self, rules: Rules = RULES) -> None:
        self._detector = Detector(MODE, rules.frame_ms)
        self._level = bytearray()
        self._unmeasured = bytearray()  # whole frames heard but not yet measured (under _LEVEL_BATCH of them)
        self._step = self._detector.step
        self._rest = b""
        self._smoother = Smoother(rules)
        self._frame_ms = rules.frame_ms

    def feed(self, chunk: bytes | memoryview) -> None:
        step = self._step
        view = memoryview(chunk)
        if self._rest:  # complete the frame left over from the last chunk (no copy of the whole chunk)
            need = step - len(self._rest)
            self._rest += bytes(view[:need])
            view = view[need:]
            if len(self._rest) < step:
                return
            self._hear(memoryview(self._rest))
            self._rest = b""
        end = len(view) - len(view) % step
        self._hear(view[:end])
        self._rest = bytes(view[end:])

    def _hear(self, frames: memoryview) -> None:
        """Whole frames: the detector's decisions smoothed, the frames' level measured (in batches)."""
        if not frames:
            return
        self._smoother.push_frames(self._detector.decide(frames))
        if len(frames) >= _LEVEL_BATCH * self._step:  # a whole chunk (the usual case): measured where it is
            self._measure_waiting()  # after the frames before it (one completed across two chunks)
            self._measure(frames)
        else:
            self._unmeasured += frames
            if len(self._unmeasured) >= _LEVEL_BATCH * self._step:
                self._measure_waiting()

    def _measure(self, frames: bytes | bytearray | memoryview) -> None:
        from funasr_subs.media.level import band_levels  # numpy: not at start-up (the warm-up imports it ahead)

        self._level += band_levels(frames, self._frame_ms)

    def _measure_waiting(self) -> None:
        if self._unmeasured:
            self._measure(self._unmeasured)
            self._unmeasured.clear()

    def finish(self) -> Speech:
        """The speech heard in everything fed (a last partial frame is left out)."""
        self._measure_waiting()
        level = Level(bytes(self._level), self._frame_ms)
        return Speech(self._smoother.finish(), DETECTOR, self._frame_ms, level)

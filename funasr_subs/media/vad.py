"""Speech activity from the PCM we send: WebRTC's voice-activity detector fed the stream as it passes to the server.

No second decode: :class:`Listener` is given every chunk of s16le 16 kHz mono PCM on its way to the server (see
``recognition/run.py``), cuts it into 30 ms frames, asks the detector about each and hands the decisions to the pure
smoothing of :mod:`funasr_subs.media.activity`. Memory stays flat (one partial frame and the intervals found).

Why WebRTC's detector (``webrtcvad-wheels``): measured on speech with music and noise (docs/speech-activity.md),
the neural detectors place speech edges better in music and noise but cost 25-45 times the CPU — more than the
whole ``--send pcm`` run — and tens of MB more to install (or a system library); this one costs 0.3 s of CPU an hour
of audio and 200 kB.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from funasr_subs.media.activity import Level, Rules, Smoother, Speech

log = logging.getLogger(__name__)

RATE = 16_000
#: WebRTC's aggressiveness, 0-3: 3 calls the least noise speech (measured best on speech in music and noise).
MODE = 3
FRAME_MS = 30
DETECTOR = f"webrtcvad mode {MODE}, {FRAME_MS} ms"
RULES = Rules(frame_ms=FRAME_MS)
_SLICE = 32 * RATE * 2 * FRAME_MS // 1000  # bytes the thread hears between two chances for the loop to run


def webrtc_decisions(pcm: bytes, *, mode: int = MODE, frame_ms: int = FRAME_MS) -> Iterator[bool]:
    """One decision per whole frame of ``pcm`` (s16le 16 kHz mono)."""
    import webrtcvad  # here, not at start-up: it reads its version with importlib.metadata (25 ms)

    vad = webrtcvad.Vad(mode)
    step = RATE * 2 * frame_ms // 1000
    view = memoryview(pcm)
    for at in range(0, len(view) - step + 1, step):
        yield vad.is_speech(view[at : at + step], RATE)


class Listener:
    """PCM chunks in (``feed``, any sizes), :class:`Speech` out (``finish``): the detector's intervals and the speech
    band's level of every frame (:mod:`funasr_subs.media.level`; one byte a frame)."""

    def __init__(self, rules: Rules = RULES) -> None:
        import webrtcvad  # here, not at start-up: it reads its version with importlib.metadata (25 ms)

        from funasr_subs.media.level import band_levels  # numpy: here too

        self._vad = webrtcvad.Vad(MODE)
        self._levels = band_levels
        self._level = bytearray()
        self._step = RATE * 2 * rules.frame_ms // 1000
        self._rest = b""
        self._smoother = Smoother(rules)
        self._frame_ms = rules.frame_ms

    def feed(self, chunk: bytes | memoryview) -> None:
        step, vad, push = self._step, self._vad, self._smoother.push
        view = memoryview(chunk)
        if self._rest:  # complete the frame left over from the last chunk (no copy of the whole chunk)
            need = step - len(self._rest)
            self._rest += bytes(view[:need])
            view = view[need:]
            if len(self._rest) < step:
                return
            push(vad.is_speech(self._rest, RATE))
            self._level += self._levels(self._rest, self._frame_ms)
            self._rest = b""
        end = len(view) - len(view) % step
        for at in range(0, end, step):
            push(vad.is_speech(view[at : at + step], RATE))
        self._level += self._levels(view[:end], self._frame_ms)
        self._rest = bytes(view[end:])

    def finish(self) -> Speech:
        """The speech heard in everything fed (a last partial frame is left out)."""
        level = Level(bytes(self._level), self._frame_ms)
        return Speech(self._smoother.finish(), DETECTOR, self._frame_ms, level)


class Beside:
    """A :class:`Listener` fed from a thread of its own, beside the event loop that sends the audio: the detector's
    work (about 2 us a frame) runs while the loop waits for ffmpeg and the server, not in their way. At most
    ``ahead`` chunks wait for it (memory stays flat); ``close()`` always ends the thread."""

    def __init__(self, listener: Listener, ahead: int = 4) -> None:
        self.listener = listener
        self._ahead = ahead
        self._pending: deque[asyncio.Future[None]] = deque()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speech-activity")

    async def feed(self, chunk: bytes) -> None:
        """Hand ``chunk`` over (in order: one thread); waits only while ``ahead`` chunks are still unheard."""
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._worker, self._hear, chunk))
        while len(self._pending) > self._ahead:
            await self._pending.popleft()

    def _hear(self, chunk: bytes) -> None:
        """In the thread: ``chunk`` heard in slices of 32 frames, the GIL let go between them, so that the loop
        (reading ffmpeg's pipe) never waits the 5 ms of Python's switch interval for it: ffmpeg would stall."""
        view = memoryview(chunk)
        for at in range(0, len(view), _SLICE):
            self.listener.feed(view[at : at + _SLICE])
            time.sleep(0)

    async def finish(self) -> Speech:
        """Every chunk heard: the speech found."""
        while self._pending:
            await self._pending.popleft()
        return self.listener.finish()

    def close(self) -> None:
        """End the thread (a chunk being heard is finished first: a millisecond or two)."""
        self._worker.shutdown(wait=True, cancel_futures=True)

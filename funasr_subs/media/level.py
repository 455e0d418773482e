"""The speech band's level, frame by frame: what the voice-activity detector's yes/no hides (numpy; pure).

In heavy noise WebRTC's detector calls most pauses speech (English at 5 dB: 22 pauses heard between 80 sentences),
yet the energy between 300 and 3400 Hz still drops in a pause. So beside its decisions the listener keeps one
byte per frame (:func:`band_levels`): that energy in whole dB (``dB + LEVEL_ZERO``, clipped to 0-255). ``sync``
compares it with the cues (:mod:`funasr_subs.sync.loudness`); in the sidecar it costs about 100 kB an hour.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000
#: The band that carries speech (Hz): below it hum and the bass of music, above it hiss.
BAND_HZ = (300.0, 3400.0)
#: The byte for 0 dB (a frame's band energy of a full-scale signal is about +42 dB; silence is clipped to 0).
LEVEL_ZERO = 100


def band_levels(pcm: bytes | memoryview, frame_ms: int) -> bytes:
    """One byte per whole frame of ``pcm`` (s16le 16 kHz mono): the speech band's energy in dB plus LEVEL_ZERO."""
    step = RATE * frame_ms // 1000
    samples = np.frombuffer(pcm, dtype="<i2")
    count = samples.size // step
    if count == 0:
        return b""
    frames = samples[: count * step].reshape(count, step).astype(np.float32) / 32768.0
    power = np.abs(np.fft.rfft(frames * np.hanning(step).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(step, 1.0 / RATE)
    band = power[:, (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])].sum(axis=1)
    db = 10.0 * np.log10(band + 1e-10)
    return bytes(np.clip(np.round(db) + LEVEL_ZERO, 0, 255).astype(np.uint8))

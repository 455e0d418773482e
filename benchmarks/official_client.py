"""Baseline: a client that behaves like FunASR's official Python websocket client in offline mode.

Written from the behaviour described in docs/funasr-protocol.md (not from FunASR's code):
- pcm: the user first decodes the whole media with ffmpeg to a 16 kHz mono WAV file, then the client reads that
  whole file into memory; other formats: the whole compressed file is read into memory and sent as-is;
- frames of 60 * chunk_size[1] / chunk_interval / 1000 * 16000 * 2 = 1,920 bytes, ``await asyncio.sleep(0.001)``
  after every frame;
- ``{"is_speaking": false}``, then the sender polls once a second until the receiver task has the reply;
- one connection per file, the default 1 MiB receive limit, no certificate verification.

Usage: ``python benchmarks/official_client.py MEDIA ws://127.0.0.1:10095 [--send pcm|mp4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect

CHUNK_SIZE = [5, 10, 5]
CHUNK_INTERVAL = 10
SAMPLE_RATE = 16000
STRIDE = int(60 * CHUNK_SIZE[1] / CHUNK_INTERVAL / 1000 * SAMPLE_RATE * 2)  # 1,920 bytes


def decode_to_wav(media: Path, wav: Path) -> None:
    """What users do before running the official client on a video: ffmpeg the whole file to a 16 kHz WAV."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(media), "-vn", "-ac", "1", "-ar", "16000"]
    subprocess.run([*argv, "-c:a", "pcm_s16le", str(wav)], check=True)


def load_audio(media: Path, send: Literal["pcm", "mp4"]) -> tuple[bytes, str]:
    """The whole payload in memory, and its wav_format."""
    if send == "mp4":
        return media.read_bytes(), media.suffix.lstrip(".").lower() or "mp4"
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / (media.stem + ".wav")
        decode_to_wav(media, wav_path)
        with wave.open(str(wav_path), "rb") as wav:
            return wav.readframes(wav.getnframes()), "pcm"


async def _receive(ws: ClientConnection, box: list[dict[str, Any]]) -> None:
    async for message in ws:
        box.append(json.loads(message))
        return


async def _transcribe(media: Path, url: str, send: Literal["pcm", "mp4"]) -> dict[str, Any]:
    audio, wav_format = load_audio(media, send)
    ctx = None
    if url.startswith("wss://"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    async with connect(url, ssl=ctx, subprotocols=None, ping_interval=None) as ws:
        box: list[dict[str, Any]] = []
        receiver = asyncio.create_task(_receive(ws, box))
        first = {
            "mode": "offline",
            "chunk_size": CHUNK_SIZE,
            "chunk_interval": CHUNK_INTERVAL,
            "encoder_chunk_look_back": 4,
            "decoder_chunk_look_back": 0,
            "audio_fs": SAMPLE_RATE,
            "wav_name": media.stem,
            "wav_format": wav_format,
            "is_speaking": True,
            "hotwords": "",
            "itn": True,
        }
        await ws.send(json.dumps(first))
        for start in range(0, len(audio), STRIDE):
            await ws.send(audio[start : start + STRIDE])
            await asyncio.sleep(0.001)
        await ws.send(json.dumps({"is_speaking": False}))
        while not box:  # the official client polls for completion once a second
            if receiver.done():
                receiver.result()  # re-raise a connection error
                raise RuntimeError("connection closed without a reply")
            await asyncio.sleep(1)
        await receiver
    return box[0]


def official_transcribe(media_path: Path | str, url: str, *, send: Literal["pcm", "mp4"] = "pcm") -> dict[str, Any]:
    """Transcribe one file the way the official Python client does; returns the server's reply."""
    return asyncio.run(_transcribe(Path(media_path), url, send))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FunASR official-client-like baseline (offline mode)")
    parser.add_argument("media", type=Path)
    parser.add_argument("url")
    parser.add_argument("--send", choices=["pcm", "mp4"], default="pcm")
    args = parser.parse_args(argv)
    reply = official_transcribe(args.media, args.url, send=args.send)
    # the official client writes wav_name<TAB>text<TAB>timestamp
    sys.stdout.write(f"{reply.get('wav_name', '')}\t{reply.get('text', '')}\t{reply.get('timestamp', '')}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

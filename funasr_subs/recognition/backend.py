"""The servers behind one interface: send one piece of audio, get one reply in the C++ server's shape.

- :class:`WebsocketBackend`: FunASR's C++ websocket runtime (``ws://``/``wss://``; the offline and the 2pass server),
  one connection per request (client.py);
- :class:`funasr_subs.recognition.httpapi.HttpBackend`: ``funasr-server``'s OpenAI-compatible HTTP API
  (``http://``/``https://``), one ``POST /v1/audio/transcriptions`` per request.

The pool, retries, failover and progress (run.py) see only this interface. A backend says whether its replies carry
usable times; when they do not (or :attr:`Backend.segmented`), run.py sends the file's speech segments one by one and
times their text itself (segments.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from funasr_subs.config import Settings
from funasr_subs.recognition.client import ServerConfig, close_quietly, exchange, open_connection


@dataclass(frozen=True)
class Request:
    """One piece of audio to recognise (its bytes come separately, as they are read)."""

    wav_name: str
    wav_format: str  # "pcm" (s16le 16 kHz mono) or a container the server decodes
    start: str  # the websocket's first message (svs_lang, hotwords, itn)
    reply_timeout: float  # after the upload
    send_timeout: float  # the longest wait for the server to take a frame


class Backend(Protocol):
    """A kind of server: one request, one reply."""

    @property
    def segmented(self) -> bool:
        """True: send it the file's speech segments one by one (segments.py), never a whole file."""
        ...

    async def send(
        self, request: Request, chunks: AsyncIterator[bytes], on_bytes: Callable[[int], None]
    ) -> dict[str, Any]:
        """Send the audio and return the reply in the C++ offline server's shape (``text``, times when there are
        any). Raises ServerError subclasses that say what to try."""
        ...


class WebsocketBackend:
    """FunASR's C++ websocket server (client.py): whole files (or --split-minutes pieces). Whether it gives times
    depends on its model (SenseVoice gives none): the first reply tells (run.py)."""

    segmented = False

    def __init__(self, url: str, settings: Settings) -> None:
        self.config = ServerConfig(url, settings.insecure, settings.ca_file, settings.connect_timeout)

    async def send(
        self, request: Request, chunks: AsyncIterator[bytes], on_bytes: Callable[[int], None]
    ) -> dict[str, Any]:
        ws = await open_connection(self.config)
        try:
            return await exchange(
                ws,
                request.start,
                chunks,
                url=self.config.url,
                reply_timeout=request.reply_timeout,
                on_bytes=on_bytes,
                send_timeout=request.send_timeout,
            )
        finally:
            with contextlib.suppress(Exception):
                await close_quietly(ws)


def is_http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")

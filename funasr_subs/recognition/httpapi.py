"""``funasr-server``'s HTTP API as a backend: one ``POST /v1/audio/transcriptions`` per piece of audio.

What the server does (FunASR ``funasr/bin/_server_app.py``, snapshot 2026-08-21, v1.4.3): the form takes ``file``,
``model`` (``fun-asr-nano`` | ``sensevoice`` | ``paraformer``; 400 for another, lines 463-505), ``language`` and
``response_format``; ``verbose_json`` answers ``{task, language, duration, text, segments: [{id, start, end (s),
text, words}]}`` (lines 189-210). Only Fun-ASR-Nano's segments on its vLLM engine are real (its VAD regions, words
timed within them, lines 347-406); SenseVoice's and Paraformer's (and Nano's without vLLM) are the duration split by
text length (``build_openai_fallback_segments``, lines 91-113, used at line 440), so their text is timed here by our
own speech activity (segments.py). The file is read with ``soundfile`` (``sf.info``/``sf.read``, lines 413 and
478): a WAV, which is what we send. ``GET /health`` lists the models it has loaded (lines 554-559); the first one is
asked for, and its answers are taken as timed only when it is Fun-ASR-Nano on vLLM.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from funasr_subs import __version__
from funasr_subs.config import Settings
from funasr_subs.errors import (
    ConfigError,
    FunasrSubsError,
    ProtocolError,
    ReplyTimeoutError,
    ServerTimeoutError,
    ServerUnavailableError,
    TLSMismatchError,
)
from funasr_subs.protocol import split_tokens, strict_json, strip_tags
from funasr_subs.recognition.backend import Request
from funasr_subs.recognition.client import ServerConfig, ssl_context
from funasr_subs.recognition.identify import funasr_server_models, http_answer_error
from funasr_subs.recognition.segments import spread
from funasr_subs.recognition.split import SAMPLE_RATE

log = logging.getLogger(__name__)

TRANSCRIPTIONS = "/v1/audio/transcriptions"
#: The model asked for when /health lists none (funasr-server's own choice on a CPU, server.py line 48).
DEFAULT_MODEL = "sensevoice"
#: How /health names Fun-ASR-Nano on its vLLM engine, the one path whose segments and words are real times
#: (``_process_vllm``; without vLLM it runs through ``_process_fallback``, estimated like the others, lines 305-323).
TIMED_MODEL = "fun-asr-nano (vLLM)"
#: The largest answer read (a verbose_json answer is ~0.3 MB an hour of speech).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: The largest upload: funasr-server reads the whole file into memory (``await file.read()``, line 470).
MAX_UPLOAD_BYTES = 512 * 1024 * 1024

_MODELS: dict[str, Model] = {}  # server URL -> the model asked for (from its /health)
_MODELS_LOCK = threading.Lock()
_SAID: set[str] = set()  # what was said once per process (hotwords not sent)


@dataclass(frozen=True)
class Model:
    """The model a funasr-server is asked for, and whether its answers carry real times."""

    name: str
    timed: bool


def wav_header(pcm_bytes: int) -> bytes:
    """The 44-byte RIFF header of s16le 16 kHz mono PCM of ``pcm_bytes`` bytes (pure)."""
    rate, channels, width = SAMPLE_RATE, 1, 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + pcm_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate, rate * channels * width,
        channels * width, 8 * width, b"data", pcm_bytes,
    )  # fmt: skip


def pick_model(loaded: Sequence[str]) -> Model:
    """The model to ask for: the first /health lists (``"fun-asr-nano (vLLM)"`` → ``fun-asr-nano``, timed) (pure)."""
    for name in loaded:
        bare = name.split(" (", 1)[0].strip()
        if bare:
            return Model(bare, name.strip() == TIMED_MODEL)
    return Model(DEFAULT_MODEL, False)


def _seconds_ms(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 7 * 86_400:
        return None
    return round(value * 1000)


def _join(parts: Sequence[str]) -> str:
    """Segment texts joined as one text: a space only between two Latin words or numbers."""
    out = ""
    for part in parts:
        if out and part and out[-1].isascii() and out[-1].isalnum() and part[0].isascii() and part[0].isalnum():
            out += " "
        out += part
    return out


def _segment_times(segment: Mapping[str, Any], tokens: Sequence[str]) -> list[tuple[int, int]] | None:
    """A Fun-ASR-Nano segment's token times: its words when they match the tokens, else the tokens spread over
    the segment; None when the segment has no usable times."""
    start, end = _seconds_ms(segment.get("start")), _seconds_ms(segment.get("end"))
    if start is None or end is None or end < start:
        return None
    words = segment.get("words")
    if isinstance(words, list) and len(words) == len(tokens):
        times = [(_seconds_ms(w.get("start")), _seconds_ms(w.get("end"))) for w in words if isinstance(w, Mapping)]
        pairs = [(a, max(a, b)) for a, b in times if a is not None and b is not None]
        if len(pairs) == len(tokens):
            return pairs
    return spread(tokens, [(start, max(end, start + 1))])


def reply_from_answer(answer: Any, timed: bool, wav_name: str) -> dict[str, Any]:
    """funasr-server's ``verbose_json`` answer as a reply in the C++ server's shape (pure): ``text``, and for a
    model with real times one ``timestamp`` pair per token; text only for the others (their segments are estimated
    from text length: not times); its ``language`` kept. ProtocolError when the answer is not such an object."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("text"), str):
        raise ProtocolError("funasr-server's answer has no text: is this funasr-server's verbose_json?")
    text, _ = strip_tags(answer["text"])
    reply: dict[str, Any] = {"mode": "offline", "text": text, "wav_name": wav_name}
    language = answer.get("language")
    if isinstance(language, str) and len(language) <= 16:  # the spoken language (recognition/language.py)
        reply["language"] = language
    segments = answer.get("segments")
    if not timed or not isinstance(segments, list) or not segments:
        return reply
    texts: list[str] = []
    pairs: list[tuple[int, int]] = []
    for segment in segments:
        if not isinstance(segment, Mapping) or not isinstance(segment.get("text"), str):
            return reply
        seg_text, _ = strip_tags(segment["text"])
        tokens = split_tokens(seg_text)
        times = _segment_times(segment, tokens)
        if times is None:
            return reply
        texts.append(seg_text)
        pairs += times
    if pairs:
        reply["text"] = _join(texts)
        reply["timestamp"] = [[a, b] for a, b in pairs]
    return reply


def _detail(body: bytes) -> str:
    """What an answer says: FastAPI's ``{"detail": "..."}`` (HTTPException), else its first characters."""
    try:
        detail = strict_json(body[:4096].decode("utf-8")).get("detail")
    except (ValueError, UnicodeDecodeError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) else body[:200].decode("utf-8", "replace")
    return " ".join(text.split())[:200]


def _ssl(url: str, settings: Settings) -> ssl.SSLContext | bool:
    ctx = ssl_context(ServerConfig(url, settings.insecure, settings.ca_file, settings.connect_timeout))
    return ctx if ctx is not None else True


def _root(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _explain(url: str, exc: BaseException, connect_timeout: float) -> FunasrSubsError:
    """What went wrong on the way to ``url``, in words that say what to try."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLSMismatchError(
            f"the TLS certificate of {url} is not trusted ({exc.certificate_error}): add --insecure, or --ca-file "
            "FILE to trust yours"
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        plain = "http://" + url.split("://", 1)[1]
        return TLSMismatchError(f"TLS handshake with {url} failed: the server probably speaks plain HTTP: try {plain}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error) if exc.os_error is not None else str(exc)
        return ServerUnavailableError(f"no funasr-server at {url} ({reason}): start it or check --server")
    if isinstance(exc, TimeoutError):
        return ServerTimeoutError(f"no answer from {url} within {connect_timeout:g} s: is the server up?")
    return ServerUnavailableError(f"{url} dropped the connection ({type(exc).__name__}): is the server still running?")


async def check_server(url: str, settings: Settings) -> Model:
    """``GET /health``: the model to ask ``url`` for (also kept for the requests that follow); raises the error that
    names what answers there when it is not funasr-server."""
    timeout = aiohttp.ClientTimeout(total=settings.connect_timeout)
    target = _root(url) + "/health"
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": f"funasr-subs/{__version__}"}) as session,
            session.get(target, allow_redirects=False, ssl=_ssl(url, settings)) as answer,
        ):
            body = await answer.content.read(64 * 1024)
            status, headers = answer.status, answer.headers
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _explain(url, exc, settings.connect_timeout) from None
    loaded = funasr_server_models(status, body)
    if loaded is None:
        raise http_answer_error(url, status, headers, body)
    model = pick_model(loaded)
    with _MODELS_LOCK:
        known = _MODELS.get(url)
        _MODELS[url] = model
    if known != model:
        timing = "its times" if model.timed else "times from our speech activity (its own are estimated)"
        named = ", ".join(loaded) or "none"
        log.info("%s is funasr-server (models loaded: %s): asking %s, with %s", url, named, model.name, timing)
    return model


class HttpBackend:
    """funasr-server: each request a WAV file in a multipart form (language when ``--language`` is given); sent
    the speech segments one by one (segmented), which is how its untimed models can be timed at all."""

    segmented = True

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings

    async def _model(self) -> Model:
        with _MODELS_LOCK:
            model = _MODELS.get(self.url)
        return model if model is not None else await check_server(self.url, self.settings)

    async def send(
        self, request: Request, chunks: AsyncIterator[bytes], on_bytes: Callable[[int], None]
    ) -> dict[str, Any]:
        if request.wav_format != "pcm":
            raise ConfigError(f"{self.url} is funasr-server, which funasr-subs sends PCM: drop --send mp4")
        pcm = bytearray()
        async for chunk in chunks:
            pcm += chunk
            if len(pcm) > MAX_UPLOAD_BYTES:
                raise ProtocolError(f"a piece of over {MAX_UPLOAD_BYTES >> 20} MB for {self.url}: report this as a bug")
        model = await self._model()
        if self.settings.hotwords:
            with _MODELS_LOCK:
                first = "hotwords" not in _SAID
                _SAID.add("hotwords")
            if first:  # (its /asr takes hotwords, but only for Fun-ASR-Nano and without the OpenAI answer's shape)
                log.warning("warning: funasr-server's /v1/audio/transcriptions takes no hotwords: they are not sent")
        form = aiohttp.FormData()
        form.add_field("file", wav_header(len(pcm)) + bytes(pcm), filename="audio.wav", content_type="audio/wav")
        form.add_field("model", model.name)
        form.add_field("response_format", "verbose_json")
        if self.settings.language is not None:
            form.add_field("language", self.settings.language)
        s = self.settings
        timeout = aiohttp.ClientTimeout(sock_connect=s.connect_timeout, connect=s.connect_timeout)
        wait = request.send_timeout + request.reply_timeout
        try:
            async with (
                asyncio.timeout(wait),
                aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": f"funasr-subs/{__version__}"}) as session,
                session.post(
                    _root(self.url) + TRANSCRIPTIONS, data=form, allow_redirects=False, ssl=_ssl(self.url, s)
                ) as answer,
            ):
                on_bytes(len(pcm))
                body = await answer.content.read(MAX_ANSWER_BYTES + 1)
                status = answer.status
        except TimeoutError:
            raise ReplyTimeoutError(
                f"{self.url} sent no answer within {wait:.0f} s: the server may be overloaded or stuck; try again "
                "later or raise --reply-timeout"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _explain(self.url, exc, s.connect_timeout) from None
        return self._reply(status, body, model, request.wav_name)

    def _reply(self, status: int, body: bytes, model: Model, wav_name: str) -> dict[str, Any]:
        detail = _detail(body)
        if status >= 500:
            raise ServerUnavailableError(f"{self.url} answered HTTP {status} ({detail}): is the server well?")
        if status != 200:
            raise ProtocolError(f"{self.url} refused the request with HTTP {status}: {detail}")
        if len(body) > MAX_ANSWER_BYTES:
            raise ProtocolError(f"{self.url} sent an answer of over {MAX_ANSWER_BYTES >> 20} MB")
        try:
            answer = strict_json(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError(f"{self.url} answered with something that is not JSON ({detail[:60]!r})") from None
        return reply_from_answer(answer, model.timed, wav_name)

"""OpenAI's ``POST /v1/audio/transcriptions`` shape over the same FunASR path as ``/asr`` (pure parsing/rendering).

Form fields: ``file`` (any media), ``model`` (accepted, the FunASR server decides), ``language`` (ISO 639-1; refused
unless the model speaks it), ``prompt`` and ``temperature`` (ignored), ``response_format`` (json, text, srt, vtt,
verbose_json), ``timestamp_granularities[]`` (segment, word: words only in verbose_json) and ``stream``: server-sent
events as OpenAI sends them (``transcript.text.delta`` events, then ``transcript.text.done``; FunASR answers a file
at once, so the deltas are the cues' texts, sent together).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from funasr_subs.config import Settings
from funasr_subs.model import Cue, Token
from funasr_subs.names import echo
from funasr_subs.service.asr import cue_text, joiner, model_language
from funasr_subs.service.responses import openai_error
from funasr_subs.writers import render

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
FIELDS = ("model", "language", "prompt", "response_format", "temperature", "timestamp_granularities", "stream")
#: What ``GET /v1/models`` lists: FunASR's own name, and the one OpenAI clients send by default.
MODELS = ("funasr", "whisper-1")
STREAM_FORMATS = ("json", "text")
LIST_FIELDS = ("timestamp_granularities[]",)


class OpenAIRequestError(ValueError):
    """A form field is invalid (HTTP 400, OpenAI's error shape, ``param`` names the field)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class TranscriptionRequest:
    model: str = ""
    language: str | None = None
    response_format: str = "json"
    granularities: tuple[str, ...] = ("segment",)
    stream: bool = False


def _stream_flag(value: str | None) -> bool:
    text = (value or "false").strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise OpenAIRequestError(f"stream {value!r} is not true or false", "stream")


def parse_request(fields: Mapping[str, str], lists: Mapping[str, Sequence[str]]) -> TranscriptionRequest:
    fmt = (fields.get("response_format") or "json").strip().lower()
    if fmt not in FORMATS:
        raise OpenAIRequestError(f"response_format {echo(fmt)} is not one of {', '.join(FORMATS)}", "response_format")
    raw = list(lists.get("timestamp_granularities[]", ())) + [
        g for g in (fields.get("timestamp_granularities") or "").split(",") if g.strip()
    ]
    granularities = tuple(dict.fromkeys(g.strip().lower() for g in raw)) or ("segment",)
    for g in granularities:
        if g not in GRANULARITIES:
            raise OpenAIRequestError(
                f"timestamp_granularities: {echo(g)} is not segment or word", "timestamp_granularities"
            )
    if granularities != ("segment",) and fmt != "verbose_json":
        raise OpenAIRequestError(
            "timestamp_granularities needs response_format verbose_json", "timestamp_granularities"
        )
    stream = _stream_flag(fields.get("stream"))
    if stream and fmt not in STREAM_FORMATS:
        raise OpenAIRequestError(f"stream needs response_format json or text, not {fmt}", "stream")
    language = (fields.get("language") or "").strip() or None
    return TranscriptionRequest((fields.get("model") or "").strip(), language, fmt, granularities, stream)


def error_body(message: str, param: str | None = None) -> dict[str, object]:
    """A 400's body in OpenAI's shape."""
    return openai_error(message, 400, param)


def models_body() -> dict[str, object]:
    """``GET /v1/models``: the list clients read before they transcribe."""
    return {"object": "list", "data": [model_body(name) for name in MODELS]}


def model_body(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "funasr-subs"}


def _event(data: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n\n"


def render_stream(cues: Sequence[Cue], settings: Settings) -> bytes:
    """Server-sent events as OpenAI streams a transcription: one ``transcript.text.delta`` per cue (its text with
    the joining space), then ``transcript.text.done`` with the whole text."""
    join = joiner(settings)
    texts = [cue_text(c, join) for c in cues]
    deltas = [(join if i else "") + text for i, text in enumerate(texts)]
    events = [_event({"type": "transcript.text.delta", "delta": d, "logprobs": None}) for d in deltas]
    events.append(_event({"type": "transcript.text.done", "text": join.join(texts), "logprobs": None}))
    return b"".join(events)


def render_transcription(
    request: TranscriptionRequest, tokens: Sequence[Token], cues: Sequence[Cue], settings: Settings, duration_s: float
) -> tuple[bytes, str]:
    """The body and Content-Type for ``request.response_format``."""
    join = joiner(settings)
    text = join.join(cue_text(c, join) for c in cues)
    fmt = request.response_format
    if fmt == "text":
        return (text + "\n").encode("utf-8"), "text/plain; charset=utf-8"
    if fmt in ("srt", "vtt"):
        body = render(cues, fmt) if cues else ("WEBVTT\n\n" if fmt == "vtt" else "")
        return body.encode("utf-8"), "text/plain; charset=utf-8" if fmt == "srt" else "text/vtt; charset=utf-8"
    if fmt == "json":
        return json.dumps({"text": text}, ensure_ascii=False).encode("utf-8"), "application/json"
    data: dict[str, object] = {
        "task": "transcribe",
        "language": model_language(settings)[1],
        "duration": duration_s,
        "text": text,
    }
    if "segment" in request.granularities:
        data["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": cue.start_ms / 1000,
                "end": cue.end_ms / 1000,
                "text": cue_text(cue, join),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for i, cue in enumerate(cues)
        ]
    if "word" in request.granularities:
        timed = words_in_cues(tokens, cues)
        data["words"] = [{"word": text, "start": a / 1000, "end": b / 1000} for text, a, b in timed]
    return json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json"


def words_in_cues(tokens: Sequence[Token], cues: Sequence[Cue]) -> list[tuple[str, int, int]]:
    """Each token (text, start_ms, end_ms) inside the segment (cue) it is spoken in: a segment's edges are moved to
    the speech heard (a first token that ran on from the pause before starts where the speech does), and its words
    follow, so no word starts before its segment or ends after it. A token belongs to the cue it overlaps most
    (the nearest when it overlaps none). Tokens of whitespace are left out, as the cues leave them out."""
    starts = [c.start_ms for c in cues]
    words: list[tuple[str, int, int]] = []
    for token in tokens:
        if not token.text.strip():
            continue
        start, end = token.start_ms, token.end_ms
        if cues:
            cue = _cue_of(start, end, cues, starts)
            start = min(max(start, cue.start_ms), cue.end_ms)
            end = max(min(end, cue.end_ms), start)
        words.append((token.text, start, end))
    return words


def _cue_of(start: int, end: int, cues: Sequence[Cue], starts: list[int]) -> Cue:
    k = max(0, bisect_right(starts, start) - 1)  # the last cue that starts at or before the token; or the first

    def closeness(cue: Cue) -> int:  # overlap when positive, minus the distance otherwise
        return min(end, cue.end_ms) - max(start, cue.start_ms)

    return max(cues[k : k + 2], key=closeness)  # the first of equals: the cue before

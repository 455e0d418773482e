"""The whisper-asr-webservice contract (``POST /asr``, ``POST /detect-language``) that Bazarr's Whisper provider uses.

Pure request parsing and output rendering, plus the calls to the FunASR server: :func:`recognise_upload` (the
pipeline) and :func:`detect_upload` (the spoken language, when the server runs SenseVoice).
"""

from __future__ import annotations

import asyncio
import json
import logging
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from funasr_subs.config import Settings
from funasr_subs.cues import build_cues
from funasr_subs.errors import NoSpeechError
from funasr_subs.model import Cue, Token
from funasr_subs.names import echo
from funasr_subs.pipeline import CancelToken, recognise_file
from funasr_subs.recognition.detect import DETECT_MS, detect_language, detection_source
from funasr_subs.recognition.language import Spoken
from funasr_subs.recognition.pool import shared_pool
from funasr_subs.writers import render

log = logging.getLogger(__name__)

#: The form fields (besides the upload) a whisper-asr-webservice client may send instead of query parameters.
FIELDS = ("task", "language", "output", "encode", "video_file")
OUTPUTS = ("txt", "vtt", "srt", "tsv", "json")
TASKS = ("transcribe", "translate")
#: whisper's language names for the codes a FunASR model may serve.
LANGUAGE_NAMES = {
    "zh": "chinese",
    "yue": "cantonese",
    "en": "english",
    "ja": "japanese",
    "ko": "korean",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "ru": "russian",
}
#: Other names a caller may use for a model's language (ISO 639-2/3 codes, Chinese variants).
ALIASES: dict[str, frozenset[str]] = {
    "zh": frozenset({"zho", "chi", "cmn", "chinese", "mandarin"}),
    "yue": frozenset({"cantonese"}),
    "en": frozenset({"eng", "english"}),
    "ja": frozenset({"jpn", "japanese"}),
    "ko": frozenset({"kor", "korean"}),
    "de": frozenset({"deu", "ger", "german"}),
    "fr": frozenset({"fra", "fre", "french"}),
    "es": frozenset({"spa", "spanish"}),
    "ru": frozenset({"rus", "russian"}),
}
CONTENT_TYPES = {
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "json": "application/json",
}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class AsrRequestError(ValueError):
    """A query parameter is invalid (HTTP 400 with this message)."""


@dataclass(frozen=True)
class AsrRequest:
    """The parameters of one ``/asr`` or ``/detect-language`` call (whisper-asr-webservice defaults)."""

    task: str = "transcribe"
    language: str | None = None
    output: str = "txt"
    encode: bool = True
    video_file: str | None = None


def _one(query: Mapping[str, Sequence[str]], fields: Mapping[str, str], name: str) -> str | None:
    values = query.get(name)
    if values:
        return values[-1]
    return fields.get(name)


def parse_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AsrRequestError(f"{name}={echo(value)} is not a boolean: use true or false")


def parse_request(query: Mapping[str, Sequence[str]], fields: Mapping[str, str] | None = None) -> AsrRequest:
    """Read ``task``, ``language``, ``output``, ``encode`` and ``video_file`` from the query (or form fields)."""
    fields = fields or {}
    task = (_one(query, fields, "task") or "transcribe").strip().lower()
    if task not in TASKS:
        raise AsrRequestError(f"task={echo(task)}: use transcribe")
    if task == "translate":
        raise AsrRequestError("task=translate is not supported: FunASR transcribes only (use task=transcribe)")
    output = (_one(query, fields, "output") or "txt").strip().lower()
    if output not in OUTPUTS:
        raise AsrRequestError(f"output={echo(output)}: use one of {', '.join(OUTPUTS)}")
    encode_text = _one(query, fields, "encode")
    encode = True if encode_text is None or not encode_text.strip() else parse_bool("encode", encode_text)
    language = (_one(query, fields, "language") or "").strip() or None
    video_file = (_one(query, fields, "video_file") or "").strip() or None
    return AsrRequest(task=task, language=language, output=output, encode=encode, video_file=video_file)


def model_language(settings: Settings) -> tuple[str, str]:
    """(code, whisper name) of the language the FunASR model transcribes: ``settings.lang``, else the profile's."""
    code = (settings.output_lang or settings.profile).split("-")[0].split("_")[0].lower() or "zh"
    return code, LANGUAGE_NAMES.get(code, code)


def detect_language_reply(settings: Settings) -> dict[str, object]:
    """``/detect-language`` on a server of one language (Paraformer: ``--language`` not ``auto``): the configured
    model language, which is all it transcribes."""
    code, name = model_language(settings)
    return {"detected_language": name, "language_code": code, "confidence": 1.0}


def detected_reply(spoken: Spoken | None, settings: Settings) -> dict[str, object]:
    """``/detect-language``'s answer from what SenseVoice heard: its language, whisper's name for it and the share
    of the words heard in it; none heard: the configured language with confidence 0 (whisper always names one)."""
    if spoken is None:
        code, name = model_language(settings)
        return {"detected_language": name, "language_code": code, "confidence": 0.0}
    name = LANGUAGE_NAMES.get(spoken.code, spoken.code)
    return {"detected_language": name, "language_code": spoken.code, "confidence": round(spoken.confidence, 3)}


def detect_upload(path: Path, settings: Settings, *, raw_pcm: bool, cancel: CancelToken | None = None) -> Spoken | None:
    """The language spoken in the first 30 s of an upload, asked of the FunASR server (SenseVoice, ``svs_lang=auto``);
    None when it heard no speech (said in the log). The pipeline's FunasrSubsError types raise."""
    source = detection_source(path, raw_pcm=raw_pcm)
    cancelled = cancel.is_set if cancel is not None else None
    job = detect_language(source, settings, shared_pool(settings), wav_name=path.name, cancelled=cancelled)
    spoken = asyncio.run(job)
    if spoken is None:
        code = model_language(settings)[0]
        log.info(
            "/detect-language: no speech heard in the first %d s (silence, music, or a model that tells no language): "
            "answered %s with confidence 0", DETECT_MS // 1000, code,
        )  # fmt: skip
    else:
        log.info("/detect-language: %s (%.0f %% of %d words)", spoken.code, 100 * spoken.confidence, spoken.words)
    return spoken


def joiner(settings: Settings) -> str:
    """What joins lines and cues into running text: a space for languages written with spaces (en, ko); for Chinese
    and Japanese nothing with the recogniser's marks (each break keeps its ，or 。), else a space — the ``space``
    style (zh's and yue's default) drops ，。 at every line end, and the space stands for them as it does inside a
    line (``谁知盘 中餐``, never ``谁知盘中餐``)."""
    if settings.profile in ("en", "ko"):
        return " "
    return "" if settings.cue_settings().punctuation == "keep" else " "


def cue_text(cue: Cue, join: str) -> str:
    """One cue on one line, its lines joined by ``join`` (see :func:`joiner`)."""
    return join.join(line.strip() for line in cue.lines)


def whisper_json(cues: Sequence[Cue], settings: Settings) -> dict[str, object]:
    """Like whisper's result: ``text``, ``segments`` (``id``, ``start``/``end`` seconds, ``text``), ``language``."""
    join = joiner(settings)
    segments = [
        {"id": i, "start": cue.start_ms / 1000, "end": cue.end_ms / 1000, "text": cue_text(cue, join)}
        for i, cue in enumerate(cues)
    ]
    return {
        "text": join.join(str(s["text"]) for s in segments),
        "segments": segments,
        "language": model_language(settings)[0],
    }


def render_output(cues: Sequence[Cue], output: str, settings: Settings) -> tuple[bytes, str]:
    """The response body and its Content-Type for ``output`` (srt, vtt, txt, tsv or json)."""
    if output in ("srt", "vtt"):
        text = render(cues, output) if cues else ("WEBVTT\n\n" if output == "vtt" else "")
    elif output == "txt":
        join = joiner(settings)
        text = "".join(cue_text(cue, join) + "\n" for cue in cues)
    elif output == "tsv":
        join = joiner(settings)
        rows = [f"{c.start_ms}\t{c.end_ms}\t{cue_text(c, join).replace(chr(9), ' ')}" for c in cues]
        text = "start\tend\ttext\n" + "".join(row + "\n" for row in rows)
    elif output == "json":
        text = json.dumps(whisper_json(cues, settings), ensure_ascii=False)
    else:
        raise AsrRequestError(f"output={output!r}: use one of {', '.join(OUTPUTS)}")
    return text.encode("utf-8"), CONTENT_TYPES[output]


def model_speaks(settings: Settings, language: str) -> bool:
    """True when ``language`` (an ISO 639-1/-3 code, a region-tagged code or whisper's name) is the model's."""
    code, name = model_language(settings)
    asked = language.strip().lower().replace("_", "-")
    base = asked.split("-")[0]
    return base in ({code, name} | ALIASES.get(code, frozenset()))


#: What SenseVoice transcribes (funasr_subs.protocol.SVS_LANGS without "auto").
SENSEVOICE_CODES = ("zh", "yue", "en", "ja", "ko")


def _code_of(language: str) -> str | None:
    """The SenseVoice code ``language`` names (``ja``, ``jpn``, ``japanese``, ``ja-JP``), or None."""
    asked = language.strip().lower().replace("_", "-")
    base = asked.split("-")[0]
    if asked in ("zh-yue", "zh-hk"):  # Cantonese written as a Chinese variant
        return "yue"
    return next((c for c in SENSEVOICE_CODES if base == c or base in ALIASES[c]), None)


def request_settings(settings: Settings, language: str | None) -> Settings | None:
    """The settings a request asking for ``language`` is recognised with, or None when the server cannot do it.

    A server run with ``--language auto`` (SenseVoice, which knows zh, yue, en, ja, ko) is told each request's
    language (``svs_lang``), and the cues follow that language's profile; any other server transcribes its one
    language (``--language``, ``--lang`` or the profile's)."""
    if not language:
        return settings
    if settings.language == "auto":
        code = _code_of(language)
        return settings.replace(language=code) if code else None
    return settings if model_speaks(settings, language) else None


def refusal(settings: Settings, language: str) -> str:
    """Why ``language`` cannot be transcribed here, and what would do it, in one line."""
    code, name = model_language(settings)
    if settings.language == "auto":
        return (
            f"language={echo(language, quote=False)}: SenseVoice transcribes {', '.join(SENSEVOICE_CODES)} only; "
            "point this language at another provider"
        )
    return (
        f"language={echo(language, quote=False)}: the FunASR model transcribes {name} ({code}) only; ask for that "
        "language, run a SenseVoice server and serve --language auto (zh, yue, en, ja, ko), or point this "
        "language at another provider"
    )


#: One speech interval packed in the cache: start and end, signed 32-bit ms (24 days either way).
_PACKED = "i"


@dataclass(frozen=True)
class Recognised:
    """What the server recognised in one upload (what the result cache keeps): the tokens, the audio's length and
    where speech was heard (``heard``: the intervals packed, 8 bytes each; empty when the detector heard none or
    did not listen, ``--no-speech-activity``), for cue edges on the speech as ``transcribe`` makes them."""

    tokens: tuple[Token, ...]
    duration_ms: int
    heard: bytes = b""

    @property
    def speech(self) -> list[tuple[int, int]]:
        """The speech intervals (start_ms, end_ms) in the tokens' timeline, sorted."""
        flat = array(_PACKED)
        flat.frombytes(self.heard)
        return list(zip(flat[::2], flat[1::2], strict=True))


def pack_speech(intervals: Sequence[tuple[int, int]]) -> bytes:
    """Speech intervals as :attr:`Recognised.heard` keeps them."""
    return array(_PACKED, [ms for interval in intervals for ms in interval]).tobytes()


def recognise_upload(path: Path, settings: Settings, *, raw_pcm: bool, cancel: CancelToken | None = None) -> Recognised:
    """Send an uploaded file to the FunASR server (the pipeline's FunasrSubsError types raise). Speech the reply
    has no words for is sent again on its own, as ``transcribe`` does (unless ``--no-resend-lost``)."""
    try:
        recognition = recognise_file(path, settings, raw_pcm=raw_pcm, cancel=cancel, pool=shared_pool(settings))
    except NoSpeechError:
        return Recognised((), 0)
    speech = recognition.speech.intervals if recognition.speech is not None else ()
    return Recognised(recognition.transcript.tokens, recognition.duration_ms, pack_speech(speech))


def cues_of(result: Recognised, settings: Settings) -> list[Cue]:
    """The cues of a recognition, their edges on the speech heard (as ``transcribe`` times them)."""
    if not result.tokens:
        return []
    return build_cues(result.tokens, settings.cue_settings(), speech=result.speech)

"""FunASR's websocket protocol as pure functions: the messages we send and every reply shape we accept."""

from __future__ import annotations

import ast
import contextlib
import gc
import itertools
import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from funasr_subs.errors import NoTimestampsError, ProtocolError
from funasr_subs.hotwords import hotwords_wire
from funasr_subs.model import Token, Transcript

log = logging.getLogger(__name__)

#: The model that gives timestamps; without it FunASR sends text only.
TIMESTAMP_MODEL = "damo/speech_paraformer-large-vad-punc_asr_nat-zh-cn-16k-common-vocab8404-onnx"
#: One binary frame; far under the server's 32,000,000-byte limit, big enough that framing costs nothing.
FRAME_BYTES = 1 << 20
END_MESSAGE = json.dumps({"is_speaking": False})
#: The languages SenseVoice on the C++ server knows (``lid_map``, ``runtime/onnxruntime/src/sensevoice-small.h``
#: lines 110-118; "nospeech" there is an output, not a choice).
SVS_LANGS = ("auto", "zh", "yue", "en", "ja", "ko")
#: SenseVoice's tags: language, emotion, event (``<|zh|><|HAPPY|><|BGM|>``) and ``<|withitn|>``/``<|woitn|>``. The
#: C++ server's CTC search puts the first three before each speech segment's text (``sensevoice-small.cpp`` line
#: 354: ``str_lang + str_emo + str_event + " " + text``) and joins the segments with nothing between them
#: (``funasrruntime.cpp`` line 296); the Python servers also keep ``<|withitn|>`` (FunASR #2427).
SENSEVOICE_TAG = re.compile(r"<\|[A-Za-z_\-]{1,24}\|>")

# A token of FunASR's: one CJK character (or kana/hangul syllable), a digit group, or a Latin word.
_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
TOKEN_RE = re.compile(rf"[{_CJK}]|[0-9]+(?:[.,:][0-9]+)*%?|[^\W\d_{_CJK}]+(?:['’][^\W\d_{_CJK}]+)*", re.UNICODE)


def start_message(
    *,
    wav_name: str,
    wav_format: str,
    audio_fs: int = 16000,
    itn: bool = True,
    hotwords: Mapping[str, int] | None = None,
    svs_lang: str | None = None,
) -> str:
    """The first text message, with exactly the JSON types the C++ server expects (wrong types crash it).

    ``svs_lang`` (SenseVoice's language: one of :data:`SVS_LANGS`) adds ``svs_lang`` (a string) and ``svs_itn`` (a
    boolean, the same as ``itn``): the C++ server copies both from the first message when present
    (``runtime/websocket/bin/websocket-server.cpp`` lines 365-370, defaults "auto" and true at lines 168-169) and
    hands them to SenseVoice only (``runtime/onnxruntime/src/funasrruntime.cpp`` line 262); an unknown language
    silently means ``auto`` (``sensevoice-small.cpp`` lines 460-462, ``sensevoice-small.h`` lines 110-118)."""
    message: dict[str, Any] = {
        "mode": "offline",
        "wav_name": str(wav_name),
        "wav_format": str(wav_format),
        "audio_fs": int(audio_fs),
        "is_speaking": True,
        "itn": bool(itn),
        "chunk_size": [5, 10, 5],
    }
    if hotwords:
        message["hotwords"] = hotwords_wire(hotwords)
    if svs_lang is not None:
        if svs_lang not in SVS_LANGS:
            raise ValueError(f"svs_lang {svs_lang!r} is not one of {', '.join(SVS_LANGS)}")
        message["svs_lang"] = str(svs_lang)
        message["svs_itn"] = bool(itn)
    return json.dumps(message, ensure_ascii=False)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token[:20]} is too large a number")
    return value


def strict_json(text: str, *, overflow: bool = False) -> Any:
    """``json.loads`` for text from outside (replies, sidecars): ValueError for NaN, Infinity, a number too large
    for a float (``1e400``; with ``overflow`` it reads as infinity, for the reader's own checks to name the field)
    and runaway nesting (never RecursionError or an infinite time further on)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=float if overflow else _finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def decode_reply(raw: str | bytes) -> dict[str, Any]:
    """A reply frame as a dict; ProtocolError for anything that is not a JSON object."""
    if isinstance(raw, bytes):
        raise ProtocolError("the server sent binary data where a JSON reply was expected: is this a FunASR server?")
    try:
        data = strict_json(raw)
    except ValueError as exc:
        snippet = raw[:60].replace("\n", " ")
        if isinstance(exc, json.JSONDecodeError):
            raise ProtocolError(f"the server's reply is not JSON ({snippet!r}): is this a FunASR server?") from None
        raise ProtocolError(f"the server's reply is not usable JSON ({exc}: {snippet!r})") from None
    if not isinstance(data, dict):
        raise ProtocolError("the server's reply is not a JSON object: is this a FunASR server?")
    return data


def _number(value: Any) -> int | None:
    """An int from an int, a float or a numeric string (image 0.4.1 sends strings); None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None  # NaN, 1e400 (inf), a list...


def _loads_lenient(text: str) -> Any:
    """JSON, or the single-quoted pseudo-JSON of image 0.4.0; None when neither parses."""
    text = text.strip()
    if not text:
        return None
    for attempt in (json.loads, ast.literal_eval, lambda s: json.loads(s.replace("\\'", "'").replace("'", '"'))):
        try:
            return attempt(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def parse_pairs(value: Any) -> list[tuple[int, int]] | None:
    """``timestamp``/``ts_list`` as pairs: a list, a JSON string of a list, or None when missing or unusable."""
    if isinstance(value, str):
        value = _loads_lenient(value)
    if not isinstance(value, list):
        return None
    try:  # the shape every current server sends: [[int, int], ...] (checked in C; anything else: the slow path)
        if {type(n) for n in itertools.chain.from_iterable(value)} == {int}:
            return [(start, end if end > start else start) for start, end in value]
    except (TypeError, ValueError):
        pass
    pairs: list[tuple[int, int]] = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) < 2:
            return None
        start, end = _number(item[0]), _number(item[1])
        if start is None or end is None:
            return None
        pairs.append((start, max(start, end)))
    return pairs


def split_tokens(text: str) -> list[str]:
    """FunASR's token units of a display text: CJK characters, digit groups and words."""
    return TOKEN_RE.findall(text)


def is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS" and ch not in "%'’"


def _spread(count: int, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Map ``len(pairs)`` times onto ``count`` tokens when the numbers differ (ITN turns 一百 into 100)."""
    if count == len(pairs) or not pairs:
        return list(pairs)
    m = len(pairs)
    if count > m:  # each pair's span shared evenly by its tokens (as the server spreads ITN's: 十 → 1 0)
        shared: list[tuple[int, int]] = []
        for j, (start, end) in enumerate(pairs):
            first, after = -(-j * count // m), -(-(j + 1) * count // m)  # the tokens i with i * m // count == j
            c = after - first
            shared += [(start + k * (end - start) // c, start + (k + 1) * (end - start) // c) for k in range(c)]
        return shared
    out = []
    for i in range(count):
        lo = i * m // count
        hi = max(lo, (i + 1) * m // count - 1)
        out.append((pairs[lo][0], pairs[hi][1]))
    return out


def _segments(stamp_sents: Any) -> list[Mapping[str, Any]] | None:
    if isinstance(stamp_sents, str):
        stamp_sents = _loads_lenient(stamp_sents)
    if not isinstance(stamp_sents, list):
        return None
    return [s for s in stamp_sents if isinstance(s, Mapping)]


#: A reply's tokens before punctuation is attached: words, their (start, end) pairs, the mark after each.
Raw = tuple[list[str], list[Sequence[int]], list[str]]


def _stamp_sents_fast(segments: Sequence[Mapping[str, Any]]) -> Raw | None:
    """The shape every current server sends (lists of two ints, one pair per word), checked and gathered with
    C-speed bulk operations; None for anything else (then :func:`_stamp_sents_slow` decides)."""
    lists: list[Any] = [seg.get("ts_list") for seg in segments]
    try:
        if set(map(type, itertools.chain.from_iterable(itertools.chain.from_iterable(lists)))) - {int}:
            return None
        if set(map(len, itertools.chain.from_iterable(lists))) - {2}:
            return None
    except TypeError:
        return None
    words_all: list[str] = []
    pairs_all: list[Sequence[int]] = []
    puncts: list[str] = []
    for seg, pairs in zip(segments, lists, strict=True):
        if not pairs:  # leading-punctuation / empty segments (real sample 06): skip
            continue
        text_seg = seg.get("text_seg")
        words = text_seg.split() if isinstance(text_seg, str) else []
        if not words or len(words) != len(pairs):
            return None
        words_all.extend(words)
        pairs_all.extend(pairs)
        puncts.extend(itertools.repeat("", len(words) - 1))
        puncts.append(str(seg.get("punc") or ""))
    return words_all, pairs_all, puncts


def _stamp_sents_slow(segments: Sequence[Mapping[str, Any]]) -> Raw | None:
    """Any shape the protocol doc lists (numeric strings, floats, a word count that differs from the pairs')."""
    words_all: list[str] = []
    pairs_all: list[Sequence[int]] = []
    puncts: list[str] = []
    for seg in segments:
        ts_list = seg.get("ts_list")
        pairs = parse_pairs(ts_list)
        if pairs is None and ts_list not in (None, "", []):
            raise ProtocolError(f"the server's reply has times that are not pairs of numbers ({str(ts_list)[:40]})")
        if not pairs:  # leading-punctuation / empty segments (real sample 06): skip
            continue
        words = str(seg.get("text_seg") or "").split()
        if not words:
            return None
        words_all.extend(words)
        pairs_all.extend(_spread(len(words), pairs))
        puncts.extend(itertools.repeat("", len(words) - 1))
        puncts.append(str(seg.get("punc") or ""))
    return words_all, pairs_all, puncts


def _tokens_from_stamp_sents(segments: Sequence[Mapping[str, Any]]) -> Raw | None:
    return _stamp_sents_fast(segments) or _stamp_sents_slow(segments)


def _only_marks_and_space(between: str) -> bool:
    return all(is_punctuation(c) or c.isspace() for c in between)


@dataclass(frozen=True, slots=True)
class Order:
    """How far a reply's token starts were from rising (they are put in order on reading): ``back`` tokens started
    before the token before them (or below 0), ``repeated`` at the same time as it. A real reply has neither."""

    back: int = 0
    repeated: int = 0


def _attach_text_punctuation(raw: Raw, text: str) -> tuple[tuple[Token, ...], Order]:
    """Give each token the punctuation that follows it in ``text`` (stamp_sents drops ！；. inside segments) and make
    the times monotonic (each start at or after the one before, each end at or after its start), counting in an
    :class:`Order` what had to be put in order.
    One pass over the tokens and one Token each: a 10-hour reply has 150,000 of them."""
    lowered = text.lower()
    find = lowered.find
    pos = 0
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    puncts: list[str] = []
    floor = 0
    back = repeated = 0
    for word, (start, end), seg_punc in zip(*raw, strict=True):
        idx = find(word, pos)
        if idx != pos:
            idx = find(word.lower(), pos)
        if idx == pos:  # the common case: the token follows the previous one directly
            pos = idx + len(word)
        elif idx > pos:
            between = text[pos:idx]
            if _only_marks_and_space(between):
                # punctuation found before this token belongs to the previous one
                marks = "".join(c for c in between if is_punctuation(c))
                if puncts and marks:
                    puncts[-1] = marks
                pos = idx + len(word)
        if start < floor:  # times made monotonic on the way
            start = floor
            back += 1
        elif start == floor and words:
            repeated += 1
        if end < start:
            end = start
        floor = start
        words.append(word)
        starts.append(start)
        ends.append(end)
        puncts.append(seg_punc)
    tail = "".join(c for c in text[pos:] if is_punctuation(c))  # punctuation after the last token
    if puncts and tail:
        puncts[-1] = tail
    return tuple(map(Token, words, starts, ends, puncts)), Order(back, repeated)


def _monotonic(tokens: list[Token]) -> tuple[tuple[Token, ...], Order]:
    out: list[Token] = []
    floor = 0
    back = repeated = 0
    for t in tokens:
        start = max(t.start_ms, floor, 0)
        back += start != t.start_ms
        repeated += bool(out) and t.start_ms == floor
        end = max(t.end_ms, start)
        out.append(t if (start, end) == (t.start_ms, t.end_ms) else Token(t.text, start, end, t.punct))
        floor = start
    return tuple(out), Order(back, repeated)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a long reply is read (or its cues built): 150,000 tokens (10 hours) are
    that many new objects, and the collector would scan the growing heap again and again (2-3x the time). Nothing
    built there forms a reference cycle (plain garbage is still freed at once); the previous state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: What a reply of odd shape can raise deep inside the parsing: each means the reply is not usable.
_SHAPE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)


def parse_reply(reply: Mapping[str, Any] | str) -> Transcript:
    """Every reply shape the protocol doc lists → Transcript. Raises NoTimestampsError for text without times,
    ProtocolError for anything else that cannot be read."""
    return parse_reply_counted(reply)[0]


def parse_reply_counted(reply: Mapping[str, Any] | str) -> tuple[Transcript, Order]:
    """:func:`parse_reply`, and what had to be put in order."""
    with gc_paused():
        try:
            return _parse_reply(reply)
        except _SHAPE_ERRORS as exc:
            raise ProtocolError(f"the server's reply has a shape that cannot be read ({type(exc).__name__})") from None


def strip_tags(text: str) -> tuple[str, bool]:
    """``text`` without SenseVoice's ``<|...|>`` tags (the spaces they leave collapsed), and whether it had any."""
    if "<|" not in text:
        return text, False
    bare = SENSEVOICE_TAG.sub(" ", text)
    return re.sub(r"\s+", " ", bare).strip(), bare != text


def _parse_reply(reply: Mapping[str, Any] | str) -> tuple[Transcript, Order]:
    data = decode_reply(reply) if isinstance(reply, str) else dict(reply)
    text = data.get("text")
    text, tagged = strip_tags(text if isinstance(text, str) else "")
    wav_name = str(data.get("wav_name") or "")
    raw: Raw | None = None
    segments = _segments(data.get("stamp_sents"))
    if segments:
        raw = _tokens_from_stamp_sents(segments)
    if not raw or not raw[0]:
        stamps = data.get("timestamp")
        pairs = parse_pairs(stamps)
        listed = isinstance(stamps, list) or (isinstance(stamps, str) and stamps.lstrip().startswith("["))
        if pairs is None and listed:  # (an integer, as newer 2pass builds send, or "" holds no times)
            raise ProtocolError(f"the server's reply has times that are not pairs of numbers ({str(stamps)[:40]})")
        words = split_tokens(text)
        raw = (words, list(_spread(len(words), pairs)), [""] * len(words)) if pairs and words else None
    if not raw:
        if split_tokens(text):
            model = "SenseVoice (its reply carries <|...|> tags)" if tagged else "the hotword or English model"
            raise NoTimestampsError(
                f"the server sent text without timestamps: it runs {model}, and cues cannot be timed honestly "
                "from text alone (transcribe with --send pcm, the default, times it by speech activity, segment by "
                f"segment); for the server's own times run funasr-wss-server with the timestamp model (--model-dir "
                f"{TIMESTAMP_MODEL})"
            )
        return Transcript(text=text, tokens=(), wav_name=wav_name), Order()
    tokens, order = _attach_text_punctuation(raw, text)
    return Transcript(text=text, tokens=tokens, wav_name=wav_name), order


def parse_session(replies: Iterable[Mapping[str, Any]]) -> Transcript:
    """A 2pass session (many replies) → one Transcript from its ``2pass-offline`` (final) replies."""
    return parse_session_counted(replies)[0]


def parse_session_counted(replies: Iterable[Mapping[str, Any]]) -> tuple[Transcript, Order]:
    """:func:`parse_session`, and what had to be put in order."""
    with gc_paused():
        try:
            return _parse_session(replies)
        except _SHAPE_ERRORS as exc:
            raise ProtocolError(f"the server's reply has a shape that cannot be read ({type(exc).__name__})") from None


def _parse_session(replies: Iterable[Mapping[str, Any]]) -> tuple[Transcript, Order]:
    texts: list[str] = []
    tokens: list[Token] = []
    wav_name = ""
    for reply in replies:
        mode = str(reply.get("mode") or "")
        if mode.endswith("online"):
            continue
        part, _ = _parse_reply(reply)
        wav_name = wav_name or part.wav_name
        if part.text:
            texts.append(part.text)
        tokens.extend(part.tokens)
    ordered, order = _monotonic(tokens)
    return Transcript(text="".join(texts), tokens=ordered, wav_name=wav_name), order

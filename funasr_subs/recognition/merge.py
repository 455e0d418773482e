"""Merging the replies of a split file into the one reply a single server would have sent (pure).

Every time is moved by its piece's offset; ``text`` is joined, ``timestamp`` keeps its type (a JSON string, as
the C++ server sends it, or a list), ``stamp_sents`` its segments. 2pass sessions (our own ``session`` wrapping)
are concatenated. The result parses exactly as one reply would (see tests/test_merge.py on real replies).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from funasr_subs.protocol import _loads_lenient, parse_pairs

_LATIN_END = re.compile(r"[A-Za-z0-9]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9]")


def _shift_number(value: Any, offset_ms: int) -> Any:
    """A start/end as the server wrote it (int, float or numeric string), moved; -1 (no time) stays -1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if value < 0 else type(value)(value + offset_ms)
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            return value
        return value if number < 0 else str(number + offset_ms)
    return value


def _shift_pairs(pairs: Any, offset_ms: int) -> Any:
    if not isinstance(pairs, list):
        return pairs
    out: list[Any] = []
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) >= 2:
            out.append([_shift_number(pair[0], offset_ms), _shift_number(pair[1], offset_ms), *pair[2:]])
        else:
            out.append(pair)
    return out


def _sentences(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.strip():
        parsed = _loads_lenient(value)
        return parsed if isinstance(parsed, list) else None
    return None


def _shift_sentence(sentence: Any, offset_ms: int) -> Any:
    if not isinstance(sentence, Mapping):
        return sentence
    out = dict(sentence)
    for key in ("start", "end"):
        if key in out:
            out[key] = _shift_number(out[key], offset_ms)
    if "ts_list" in out:
        out["ts_list"] = _shift_pairs(out["ts_list"], offset_ms)
    return out


def join_texts(texts: Sequence[str]) -> str:
    """Pieces' texts in order; a space only where two Latin words or numbers would otherwise touch."""
    out = ""
    for text in texts:
        if not text:
            continue
        if out and _LATIN_END.search(out) and _LATIN_START.search(text):
            out += " "
        out += text
    return out


def shift_reply(reply: Mapping[str, Any], offset_ms: int) -> dict[str, Any]:
    """One offline reply with every time moved by ``offset_ms``."""
    return merge_replies([reply], [offset_ms])


def merge_replies(replies: Sequence[Mapping[str, Any]], offsets_ms: Sequence[int]) -> dict[str, Any]:
    """The replies of consecutive pieces (``offsets_ms``: where each piece starts) as one reply."""
    if len(replies) != len(offsets_ms) or not replies:
        raise ValueError("merge_replies needs one offset per reply, and at least one reply")
    if any("session" in r for r in replies):
        session = [
            shift_reply(part, off)
            for r, off in zip(replies, offsets_ms, strict=True)
            for part in (r.get("session") or [r])
            if isinstance(part, Mapping)
        ]
        return {"mode": "2pass-offline", "session": session, "is_final": True}
    keys: list[str] = []
    for r in replies:
        keys += [k for k in r if k not in keys]
    out: dict[str, Any] = {k: replies[0].get(k) for k in keys}
    for k in keys:  # a key the first piece lacks (silence: no timestamp) comes from the first piece that has it
        if k not in replies[0]:
            out[k] = next(r[k] for r in replies if k in r)
    if "text" in out:
        out["text"] = join_texts([r["text"] for r in replies if isinstance(r.get("text"), str)])
    if "timestamp" in out:
        out["timestamp"] = _merge_timestamps(replies, offsets_ms)
    if "stamp_sents" in out:
        out["stamp_sents"] = _merge_sentences(replies, offsets_ms)
    if all(list(r) == sorted(r) for r in replies):
        out = dict(sorted(out.items()))
    return out


def _merge_timestamps(replies: Sequence[Mapping[str, Any]], offsets_ms: Sequence[int]) -> Any:
    template = next(r["timestamp"] for r in replies if "timestamp" in r)
    if not isinstance(template, str | list):
        return template  # an integer (2pass partials): no times to move
    pairs: list[Any] = []
    for r, off in zip(replies, offsets_ms, strict=True):
        got = parse_pairs(r.get("timestamp")) if "timestamp" in r else None
        pairs += [[s + off, e + off] for s, e in got or []]
    if isinstance(template, list):
        return pairs
    return json.dumps(pairs, separators=(",", ":"))


def _merge_sentences(replies: Sequence[Mapping[str, Any]], offsets_ms: Sequence[int]) -> Any:
    template = next(r["stamp_sents"] for r in replies if "stamp_sents" in r)
    merged: list[Any] = []
    for r, off in zip(replies, offsets_ms, strict=True):
        merged += [_shift_sentence(s, off) for s in _sentences(r.get("stamp_sents")) or []]
    if isinstance(template, str):
        return json.dumps(merged, ensure_ascii=False) if merged else template
    return merged

"""Merging the replies of a split file into the one reply a single server would have sent (pure).

Every time is moved by its piece's offset; ``text`` is joined, ``timestamp`` keeps its type (a JSON string, as
the C++ server sends it, or a list), ``stamp_sents`` its segments. 2pass sessions (our own ``session`` wrapping)
are concatenated. The result parses exactly as one reply would (see tests/test_merge.py on real replies).

A stretch sent again on its own (a lost stretch, see ``recover.py``) goes *inside* a reply: :func:`insert_replies`
cuts the reply at the stretch (:func:`split_reply`: whole sentences, and the text after the same words) and merges
the pieces in time order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from funasr_subs.errors import NoTimestampsError, ProtocolError
from funasr_subs.protocol import _loads_lenient, is_punctuation, parse_pairs, parse_reply

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
            for part in (r["session"] if isinstance(r.get("session"), list) else [r])
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


def _sentence_start(sentence: Any) -> int | None:
    """When a ``stamp_sents`` segment starts: its first word's time, else its ``start``; None when it has none."""
    if not isinstance(sentence, Mapping):
        return None
    pairs = parse_pairs(sentence.get("ts_list"))
    if pairs:
        return pairs[0][0]
    start = _shift_number(sentence.get("start"), 0)
    return start if isinstance(start, int) and not isinstance(start, bool) and start >= 0 else None


def _cut_sentence(sentence: Any, at_ms: int) -> tuple[Any, list[Any]]:
    """A ``stamp_sents`` segment cut before its first word at or after ``at_ms``: (the part before, or None; [the
    part after] or []). A segment whose words and times do not pair up one to one is left whole, before."""
    if not isinstance(sentence, Mapping):
        return sentence, []
    pairs = parse_pairs(sentence.get("ts_list"))
    text_seg = sentence.get("text_seg")
    words = text_seg.split() if isinstance(text_seg, str) else []
    if not pairs or len(words) != len(pairs):
        return sentence, []
    k = sum(start < at_ms for start, _ in pairs)
    if k == len(pairs):
        return sentence, []
    ts_list = sentence["ts_list"]
    items = _loads_lenient(ts_list) if isinstance(ts_list, str) else ts_list
    if not isinstance(items, list) or len(items) != len(pairs):
        return sentence, []
    shaped = (lambda v: json.dumps(v)) if isinstance(ts_list, str) else (lambda v: v)
    tail = {**sentence, "text_seg": " ".join(words[k:]), "ts_list": shaped(items[k:]), "start": pairs[k][0]}
    if k == 0:
        return None, [tail]
    head = {**sentence, "text_seg": " ".join(words[:k]), "ts_list": shaped(items[:k]), "end": pairs[k - 1][1]}
    return {**head, "punc": ""}, [tail]


def _tokens(reply: Mapping[str, Any]) -> list[tuple[str, int]]:
    """A reply's tokens as (word, start), in order ([] for one that cannot be read)."""
    try:
        return [(t.text, t.start_ms) for t in parse_reply(reply).tokens]
    except (ProtocolError, NoTimestampsError):
        return []


def _text_after(text: str, words: list[str]) -> int:
    """Where ``text`` goes on after ``words`` (found in order, as the parser finds them) and the marks after them."""
    lowered, pos = text.lower(), 0
    for word in words:
        idx = lowered.find(word.lower(), pos)
        if idx >= 0:
            pos = idx + len(word)
    while pos < len(text) and (is_punctuation(text[pos]) or text[pos].isspace()):
        pos += 1
    return pos


def split_reply(reply: Mapping[str, Any], at_ms: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``reply`` cut in two at ``at_ms``: the words that start before it and the rest, times unchanged (sentences
    are kept whole: one that starts before ``at_ms`` stays before it). Merged back (offsets 0, 0) they are the
    reply again."""
    if isinstance(reply.get("session"), list):
        before_parts: list[Any] = []
        after_parts: list[Any] = []
        for part in reply["session"]:
            first = _first_start(part) if isinstance(part, Mapping) else None
            (after_parts if after_parts or (first is not None and first >= at_ms) else before_parts).append(part)
        return {**reply, "session": before_parts}, {**reply, "session": after_parts}
    before, after = dict(reply), dict(reply)
    words = _tokens(reply)
    sentences = _sentences(reply.get("stamp_sents"))
    if sentences:
        cut = len(sentences)
        for i, sentence in enumerate(sentences):
            start = _sentence_start(sentence)
            if start is not None and start >= at_ms:
                cut = i
                break
        shape = reply["stamp_sents"]
        head, tail = sentences[:cut], sentences[cut:]
        if head:  # a sentence with words on both sides of ``at_ms`` is cut between them
            first, rest = _cut_sentence(head[-1], at_ms)
            head, tail = [*head[:-1], *([first] if first is not None else [])], [*rest, *tail]
        before["stamp_sents"] = json.dumps(head, ensure_ascii=False) if isinstance(shape, str) else head
        after["stamp_sents"] = json.dumps(tail, ensure_ascii=False) if isinstance(shape, str) else tail
        count = len(_tokens({"stamp_sents": head, "text": ""}))  # the words of the sentences before
    else:
        count = sum(start < at_ms for _, start in words)
    if "timestamp" in reply:
        pairs = parse_pairs(reply["timestamp"])
        if pairs is not None:
            cut_pairs = count if sentences else sum(start < at_ms for start, _ in pairs)
            head_pairs = [list(p) for p in pairs[:cut_pairs]]
            tail_pairs = [list(p) for p in pairs[cut_pairs:]]
            shaped = isinstance(reply["timestamp"], str)
            before["timestamp"] = json.dumps(head_pairs, separators=(",", ":")) if shaped else head_pairs
            after["timestamp"] = json.dumps(tail_pairs, separators=(",", ":")) if shaped else tail_pairs
    text = reply.get("text")
    if isinstance(text, str):
        cut_at = _text_after(text, [w for w, _ in words[:count]]) if count else 0
        before["text"], after["text"] = text[:cut_at].rstrip(), text[cut_at:].lstrip()
    return before, after


def _first_start(reply: Mapping[str, Any]) -> int | None:
    try:
        tokens = parse_reply(reply).tokens
    except (ProtocolError, NoTimestampsError):
        return None
    return tokens[0].start_ms if tokens else None


def insert_replies(reply: Mapping[str, Any], parts: Sequence[tuple[Mapping[str, Any], int]]) -> dict[str, Any]:
    """``reply`` with the replies of stretches sent again on their own put in where they start (``parts``: each
    stretch's reply, its times already on ``reply``'s timeline (:func:`shift_reply`), and where it starts); the
    stretches must not overlap each other."""
    pieces: list[Mapping[str, Any]] = []
    rest: Mapping[str, Any] = reply
    for part, start_ms in sorted(parts, key=lambda p: p[1]):
        before, rest = split_reply(rest, start_ms)
        pieces += [before, part]
    return merge_replies([*pieces, rest], [0] * (len(pieces) + 1))

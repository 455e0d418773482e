"""The fast path of reading a reply (int pairs gathered in bulk) gives exactly what the general path gives; odd
shapes go the general way. Speed itself: ``python -m benchmarks.bench_cues --reply``."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.bench_cues import funasr_like_tokens, reply_for
from funasr_subs.protocol import _stamp_sents_fast, _stamp_sents_slow, parse_reply


def test_fast_and_general_paths_agree_on_a_long_reply() -> None:
    tokens = funasr_like_tokens(3000)
    reply = reply_for(tokens)
    segments = reply["stamp_sents"]
    assert isinstance(segments, list)
    fast, slow = _stamp_sents_fast(segments), _stamp_sents_slow(segments)
    assert fast is not None and slow is not None
    assert fast[0] == slow[0] and fast[2] == slow[2]
    assert [tuple(p) for p in fast[1]] == [tuple(p) for p in slow[1]]
    parsed = parse_reply(reply).tokens
    assert [(t.start_ms, t.end_ms) for t in parsed] == [(t.start_ms, t.end_ms) for t in tokens]
    assert "".join(t.punct for t in parsed) == "".join(t.punct for t in tokens)


@pytest.mark.parametrize(
    "ts_list, text_seg",
    [
        ([["1", "5"], [5, 9]], "a b"),  # numeric strings (image 0.4.1)
        ([[1.0, 5], [5, 9]], "a b"),  # floats
        ([[1, 5], [5, 9]], "a b c"),  # more words than pairs (ITN)
        ([[True, 5], [5, 9]], "a b"),  # not numbers at all
        ([[1, 5, 7], [6, 9]], "a b"),  # three values in a pair
        ("[[1, 5], [5, 9]]", "a b"),  # a JSON string
        ([[1, 5], [5, 9]], 5),  # text_seg not a string
    ],
)
def test_odd_shapes_take_the_general_path(ts_list: Any, text_seg: Any) -> None:
    segments = [{"text_seg": text_seg, "ts_list": ts_list, "punc": "。"}]
    assert _stamp_sents_fast(segments) is None


def test_pairs_going_backwards_are_made_monotonic() -> None:
    reply = {
        "text": "甲乙丙。",
        "stamp_sents": [{"text_seg": "甲 乙 丙", "ts_list": [[100, 50], [80, 200], [300, 400]], "punc": "。"}],
    }
    times = [(t.start_ms, t.end_ms) for t in parse_reply(reply).tokens]
    assert times == [(100, 100), (100, 200), (300, 400)]

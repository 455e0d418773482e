"""Segment-timed recognition, the pure core: speech intervals → the pieces to send; a piece's untimed text → a timed
reply, each token placed in the piece's own speech (cue edges fall on the pauses between intervals).

Some servers return text without usable times: SenseVoice (on the C++ server and through ``funasr-server``) and
Paraformer through ``funasr-server`` (whose ``verbose_json`` segments are only its duration split by text length).
Then our own speech activity times the text: the file's speech intervals are grouped into pieces of at most
:data:`MAX_PIECE_MS` (cut at the longest pauses first), each piece is recognised alone, and its text is spread over
its speech by character count. The result is a reply in the shape of the C++ server's (``text`` and one
``timestamp`` pair per token), so merging, checking, the sidecar and ``retime`` treat it like any other.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from funasr_subs.media.activity import Interval
from funasr_subs.protocol import TOKEN_RE as _TOKEN
from funasr_subs.protocol import split_tokens, strip_tags

#: The longest piece sent as one request (SenseVoice is made for utterances; funasr-server cuts at 30 s itself).
MAX_PIECE_MS = 15_000
#: Audio kept on each side of a piece's speech (the detector's edges are 30 ms frames; onsets are soft).
PAD_MS = 200
#: What the reply records about how its times were found.
TIMING = "segments"


@dataclass(frozen=True)
class Piece:
    """One request: ``start_ms``-``end_ms`` of the audio, and the speech in it (ms from ``start_ms``)."""

    start_ms: int
    end_ms: int
    speech: tuple[Interval, ...]

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def _groups(intervals: Sequence[Interval], max_ms: int) -> list[list[Interval]]:
    """Intervals grouped so that each group spans at most ``max_ms``, cut at the longest pause first (an interval
    longer than ``max_ms`` on its own is cut into equal parts: no pause to cut at was heard)."""
    out: list[list[Interval]] = []
    stack = [list(intervals)]
    while stack:
        group = stack.pop()
        if not group:
            continue
        if group[-1][1] - group[0][0] <= max_ms:
            out.append(group)
        elif len(group) == 1:
            start, end = group[0]
            parts = -(-(end - start) // max_ms)
            cuts = [start + k * (end - start) // parts for k in range(parts + 1)]
            out.extend([[(a, b)] for a, b in itertools.pairwise(cuts)])
        else:
            middle = (group[0][0] + group[-1][1]) / 2
            gaps = [(group[k + 1][0] - group[k][1], -abs(group[k][1] - middle), k) for k in range(len(group) - 1)]
            at = max(gaps)[2] + 1
            stack += [group[at:], group[:at]]  # (the first half is taken next: pieces come out in order)
    return out


def plan_pieces(
    intervals: Sequence[Interval], duration_ms: int, *, max_ms: int = MAX_PIECE_MS, pad_ms: int = PAD_MS
) -> list[Piece]:
    """The pieces that cover ``intervals`` (sorted speech, ms of the audio), in order, each padded by up to
    ``pad_ms`` of the audio around its speech but never into a neighbour's half of the pause between them."""
    usable = [(max(0, s), min(e, duration_ms)) for s, e in intervals if min(e, duration_ms) > max(0, s)]
    groups = _groups(usable, max(1, max_ms))
    pieces = []
    for k, group in enumerate(groups):
        lo = (groups[k - 1][-1][1] + group[0][0]) // 2 if k else 0
        hi = (group[-1][1] + groups[k + 1][0][0]) // 2 if k + 1 < len(groups) else duration_ms
        start = max(lo, group[0][0] - pad_ms)
        end = min(hi, group[-1][1] + pad_ms)
        pieces.append(Piece(start, end, tuple((s - start, e - start) for s, e in group)))
    return pieces


def _weight(token: str) -> int:
    """How long a token takes to say, in characters: a CJK character or syllable 1, a word or number its length."""
    return len(token) if token[:1].isascii() else 1


#: How far (in tokens) the first token of a speech interval may move to follow a sentence or clause mark.
SNAP_TOKENS = 3
_MARKS = frozenset("。！？；，、.!?;,…")


def marks_after(text: str) -> frozenset[int]:
    """The indices of the tokens of ``text`` (:func:`split_tokens`) that a punctuation mark follows."""
    found = list(_TOKEN.finditer(text))
    stops = [m.start() for m in found[1:]] + [len(text)]
    return frozenset(
        i for i, (m, stop) in enumerate(zip(found, stops, strict=True)) if _MARKS & set(text[m.end() : stop])
    )


def spread(tokens: Sequence[str], speech: Sequence[Interval], marks: frozenset[int] = frozenset()) -> list[Interval]:
    """A time for each token: the tokens shared among the speech intervals by character count (a token goes to the
    interval that holds its middle on the speech-only clock), then evenly within each, so no token spans a pause
    and a cue can end where the speech does. Where a token that a mark follows (``marks``) is within
    :data:`SNAP_TOKENS` of a pause, the pause is put after it: sentences end at pauses more often than not."""
    weights = [_weight(t) for t in tokens]
    spans = [(s, e) for s, e in speech if e > s]
    if not tokens or not spans:
        return []
    total_w, total_ms = sum(weights), sum(e - s for s, e in spans)
    ends = list(itertools.accumulate(e - s for s, e in spans))
    owner, done, k = [], 0, 0
    for w in weights:  # the interval of each token's middle
        middle = (done + w / 2) * total_ms / total_w
        done += w
        while k + 1 < len(spans) and middle >= ends[k]:
            k += 1
        owner.append(k)
    firsts = [0] + [next((i for i, o in enumerate(owner) if o >= j), len(tokens)) for j in range(1, len(spans))]
    firsts.append(len(tokens))
    for j in range(1, len(spans)):
        near = [i + 1 for i in marks if abs(i + 1 - firsts[j]) <= SNAP_TOKENS and firsts[j - 1] < i + 1 < firsts[j + 1]]
        if near:
            firsts[j] = min(near, key=lambda at: (abs(at - firsts[j]), at))
    out: list[Interval] = []
    for j, (s, e) in enumerate(spans):
        mine = weights[firsts[j] : firsts[j + 1]]
        whole, at = sum(mine), 0
        for w in mine:
            out.append((s + at * (e - s) // whole, s + (at + w) * (e - s) // whole))
            at += w
    return out


def is_untimed(reply: dict[str, Any]) -> bool:
    """True when a reply has words but no times of its own (SenseVoice's, an untimed model's)."""
    return not reply.get("timestamp") and not reply.get("stamp_sents") and "session" not in reply


def timed_reply(text: str, speech: Sequence[Interval], wav_name: str) -> dict[str, Any]:
    """The reply for a piece whose server sent only ``text``: its tokens spread over ``speech`` (ms of the piece),
    in the C++ server's shape (tags dropped, ``timestamp`` a list of pairs) with ``timing`` saying how."""
    bare, _ = strip_tags(text)
    tokens = split_tokens(bare)
    times = spread(tokens, speech, marks_after(bare))  # (every piece holds speech: words are never without a place)
    reply: dict[str, Any] = {"mode": "offline", "text": bare if times else "", "wav_name": wav_name}
    if times:
        reply["timestamp"] = [[s, e] for s, e in times]
        reply["timing"] = TIMING
    return reply

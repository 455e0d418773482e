"""Speech FunASR returned no words for (pure): the stretches to send again, and what was recovered and what stays lost.

FunASR returns text for only part of some long recordings, silently (FunASR issues #1180, #1686, #2008). The speech
heard in the audio as it was sent (:mod:`funasr_subs.media.activity`) shows it: a stretch of speech with no token
near it. Real replies leave no such stretch where the audio is fine: their longest gaps between tokens are 0.6, 0.8,
1.4, 1.5 and 3.5 s (the replies 11-15 in ``tests/data/funasr-responses``), and a token covers :data:`REACH_MS`
either side of it, so at most 1.5 s of speech is ever uncovered there; a stretch counts from :data:`LOST_MIN_MS`.

In the sidecar (media timeline, ms): ``"recovery": {"format": 1, "resent": true, "recovered": [[s, e], ...],
"lost": [[s, e], ...]}``, read back by :func:`recovery_from_json` as hostile input.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from funasr_subs.media.activity import MAX_INTERVALS, MAX_MS, Interval, without_words

#: Heard speech with no token within this of it is without words (a token's times hide pauses; words run on).
REACH_MS = 1_000
#: A stretch without words holding this much speech is lost (real replies: at most 1.5 s, see the module docstring).
LOST_MIN_MS = 5_000
#: Audio sent on either side of a lost stretch: a word cut at its edge is heard whole. Under REACH_MS, so the margin
#: never holds a word the reply has already.
MARGIN_MS = 500
#: The longest request a lost stretch is sent again in (a longer one goes in pieces, cut at pauses).
MOST_MS = 300_000
#: The sidecar's ``recovery.format``.
RECOVERY_FORMAT = 1
REASON = "FunASR returned no text for it"
#: What a stretch that stays without words when sent alone may be.
UNHEARD = "music or noise heard as speech, or speech FunASR cannot hear"


def lost_stretches(speech: Sequence[Interval], tokens: Sequence[Interval]) -> list[Interval]:
    """The stretches of ``speech`` no token comes within :data:`REACH_MS` of, holding at least :data:`LOST_MIN_MS`
    of speech (both sorted by start). Speech on both sides of a pause with no word in it is one stretch, however
    long the pause: a loss of 40 s of talk is one stretch, not its sentences (each too short to count) one by one."""
    pieces = without_words(speech, tokens, reach_ms=REACH_MS, min_ms=0)
    starts = [start - REACH_MS for start, _ in tokens]  # where each token's reach begins, in order
    out: list[Interval] = []
    heard: list[int] = []
    at = 0  # speech intervals before this one end before the current piece
    for start, end in pieces:
        ms = 0
        while at < len(speech) and speech[at][1] <= start:
            at += 1
        k = at
        while k < len(speech) and speech[k][0] < end:
            ms += min(end, speech[k][1]) - max(start, speech[k][0])
            k += 1
        if out and not _any_between(starts, out[-1][1], start):
            out[-1] = (out[-1][0], end)
            heard[-1] += ms
        else:
            out.append((start, end))
            heard.append(ms)
    return [stretch for stretch, ms in zip(out, heard, strict=True) if ms >= LOST_MIN_MS]


def _any_between(starts: Sequence[int], lo: int, hi: int) -> bool:
    """Whether a token's reach begins in ``lo``-``hi`` (``starts`` sorted)."""
    i = bisect.bisect_left(starts, lo)
    return i < len(starts) and starts[i] < hi


def in_pieces(stretch: Interval, speech: Sequence[Interval], most_ms: int = MOST_MS) -> list[Interval]:
    """``stretch`` as requests of at most ``most_ms``, each cut in the middle of the last pause of ``speech`` in its
    second half (a hard cut only where there is none): FunASR loses words of *long* audio, so a long loss is not sent
    again as one long request."""
    start, end = stretch
    ends = [e for _, e in speech]
    out: list[Interval] = []
    while end - start > most_ms:
        limit = start + most_ms
        cut = limit
        i = bisect.bisect_left(ends, start + most_ms // 2 - 1)  # pauses from speech[i]'s end on
        while i + 1 < len(speech):
            middle = (speech[i][1] + speech[i + 1][0]) // 2
            if middle > limit:
                break
            if middle >= start + most_ms // 2:
                cut = middle
            i += 1
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


def with_margin(stretch: Interval, duration_ms: int) -> Interval:
    """The audio to send for ``stretch``: :data:`MARGIN_MS` more on each side, within the audio."""
    start, end = stretch
    return max(0, start - MARGIN_MS), min(max(duration_ms, end), end + MARGIN_MS)


@dataclass(frozen=True)
class Recovery:
    """Lost stretches: those sent again whose words came back, and those still without words (ms)."""

    recovered: tuple[Interval, ...] = ()
    lost: tuple[Interval, ...] = ()
    resent: bool = True  # False: re-sending was turned off (--no-resend-lost)

    def shifted(self, offset_ms: int) -> Recovery:
        def move(spans: tuple[Interval, ...]) -> tuple[Interval, ...]:
            return tuple((max(0, s + offset_ms), max(0, e + offset_ms)) for s, e in spans)

        return Recovery(move(self.recovered), move(self.lost), self.resent)

    def __bool__(self) -> bool:
        return bool(self.recovered or self.lost)

    def summary(self) -> str:
        """``recovered 2 stretches, 43 s; no words for 1 stretch, 40 s, even sent again alone (…)``, or with
        re-sending off ``lost 1 stretch, 40 s (FunASR returned no text for it)``; "" when none."""
        parts = []
        if self.recovered:
            parts.append(f"recovered {_stretches(self.recovered)}")
        if self.lost and self.resent:
            # the known loss (text missing from a long file) comes back when the stretch goes alone; what stays
            # empty is as likely music or noise the detector took for speech as speech FunASR cannot hear
            parts.append(f"no words for {_stretches(self.lost)} even sent again alone ({UNHEARD})")
        elif self.lost:
            them = "it" if len(self.lost) == 1 else "them"
            parts.append(f"lost {_stretches(self.lost)} (FunASR returned no text for {them})")
        return "; ".join(parts)


def _stretches(spans: tuple[Interval, ...]) -> str:
    count = len(spans)
    seconds = round(sum(e - s for s, e in spans) / 1000)
    return f"{count} stretch{'es' if count != 1 else ''}, {seconds} s"


def clock(ms: int) -> str:
    """``1:02:03`` / ``4:05`` for a time in a message."""
    s = ms // 1000
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def spans_text(spans: Iterable[Interval], most: int = 5) -> str:
    """``4:00-4:40, 7:10-7:31`` for a message; past ``most`` of them, how many more (a server that loses nearly
    everything of a day of audio gave a line of thousands)."""
    listed = list(spans)
    text = ", ".join(f"{clock(s)}-{clock(e)}" for s, e in listed[:most])
    return text + (f" and {len(listed) - most} more" if len(listed) > most else "")


def recovery_to_json(recovery: Recovery) -> dict[str, Any]:
    return {
        "format": RECOVERY_FORMAT,
        "resent": recovery.resent,
        "recovered": [[s, e] for s, e in recovery.recovered],
        "lost": [[s, e] for s, e in recovery.lost],
    }


def recovery_from_json(value: Any) -> Recovery | None:
    """The recovery recorded in a sidecar, checked as hostile input (ValueError says what is wrong); None for a
    format this version does not know."""
    if not isinstance(value, Mapping):
        raise ValueError("recovery is not an object")
    if value.get("format") != RECOVERY_FORMAT:
        return None
    resent = value.get("resent", True)
    if not isinstance(resent, bool):
        raise ValueError("recovery resent is not true or false")
    return Recovery(_spans(value.get("recovered", []), "recovered"), _spans(value.get("lost", []), "lost"), resent)


def _spans(raw: Any, name: str) -> tuple[Interval, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS:
        raise ValueError(f"recovery {name} is not a list of [start_ms, end_ms] pairs")
    out: list[Interval] = []
    previous_end = 0
    for pair in raw:
        ok = isinstance(pair, list) and len(pair) == 2 and all(type(n) is int for n in pair)
        if not ok or not previous_end <= pair[0] < pair[1] <= MAX_MS:
            raise ValueError(f"recovery {name} {str(pair)[:40]} is not an ordered [start_ms, end_ms] pair in range")
        out.append((pair[0], pair[1]))
        previous_end = pair[1]
    return tuple(out)

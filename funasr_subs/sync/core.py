"""The sync itself: cues and a transcript in, re-timed cues and how they were found out (pure: no I/O)."""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from funasr_subs.media.activity import Level
from funasr_subs.model import Cue, Transcript
from funasr_subs.sync.heard import MIN_LEVEL_Z, HeardFit, fit_heard
from funasr_subs.sync.normalise import TimedUnits, normalise
from funasr_subs.sync.pattern import PatternFit, fit_pattern, speech_intervals
from funasr_subs.sync.textalign import MIN_MATCHED, MIN_SHARE, CueMatch, match_cues, recognised_units, shared_units
from funasr_subs.sync.timemap import Fit, TimeMap, fit_anchors

Method = Literal["text", "pattern"]
MethodChoice = Literal["auto", "text", "pattern"]
#: What the timing pattern was compared with: the speech heard in the audio, or the gaps between the reply's tokens.
PatternSource = Literal["heard", "tokens", ""]
Interval = tuple[int, int]

#: The text method is used when at least this share of the cues (with text) is placed by its own text ...
TEXT_MIN_SHARE = 0.25
#: ... and at least this many cues, and this share of them agree with the fitted map.
TEXT_MIN_CUES = 3
TEXT_MIN_AGREE = 0.5
#: A cue keeps the times of its own text only when they are this close to what the map says.
OWN_TEXT_MS = 600
#: ... and closer still for a cue of few units (a two-character cue is easily found at the wrong repeat).
OWN_TEXT_SHORT_MS = 250
SHORT_UNITS = 4
#: The few units found of a cue's text tell its side of a split when they are this close to where that side puts it.
SIDE_MS = 3000
#: How far around where a side would put a cue its words are looked for.
SIDE_SLACK_MS = 1000


#: A cue placed closer than this to the evidence (a cue placed by its text, a start of speech) is not worth a doubt.
DOUBTFUL_MS = 500


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one cue went. ``doubt_ms``: how far from the evidence it is (text: ms to the nearest cue placed by its own
    text, 0 when placed by its own; pattern: ms from its start to the nearest speech start; pattern against the
    speech heard: ms of silence heard inside it and of speech heard in the pauses around it)."""

    start_ms: int
    end_ms: int
    by_text: bool
    doubt_ms: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    method: Method
    placements: tuple[Placement, ...]
    time_map: TimeMap | None
    ratio: float
    #: cues placed by their own text / all cues
    by_text: float
    trusted: bool
    #: why the alignment is not trusted ("" when it is)
    reason: str = ""
    #: by timing pattern: what the cues were compared with
    pattern_from: PatternSource = ""

    def cues(self, originals: Sequence[Cue]) -> list[Cue]:
        """The original cues with the new times (the text untouched)."""
        return [Cue(p.start_ms, p.end_ms, c.lines) for p, c in zip(self.placements, originals, strict=True)]

    def least_sure(self, count: int = 5) -> list[int]:
        """Indices of the cues with the largest doubt (at least ``DOUBTFUL_MS`` from the evidence), worst first."""
        order = sorted(range(len(self.placements)), key=lambda i: (-self.placements[i].doubt_ms, i))
        return [i for i in order[:count] if self.placements[i].doubt_ms >= DOUBTFUL_MS]


def sync(
    cues: Sequence[Cue],
    transcript: Transcript,
    method: MethodChoice = "auto",
    heard: Sequence[Interval] | None = None,
    heard_end_ms: int = 0,
    heard_level: Level | None = None,
) -> SyncResult:
    """Re-time ``cues`` to the speech in ``transcript``: by their text when it matches, else by the timing pattern.

    ``heard``: the speech intervals a detector heard in the audio (the sidecar's speech activity, in the transcript's
    timeline; the audio ``heard_end_ms`` long): the timing pattern compares the cues with them. Without them (None:
    nothing was listened to) it falls back to the gaps between the reply's tokens, which FunASR mostly closes.
    ``heard_level``: the speech band's level kept beside them (same timeline), which decides whether that is trusted.
    The cues may come in any order (ASS files are often sorted by style); placements come back in the given order."""
    order = sorted(range(len(cues)), key=lambda i: (cues[i].start_ms, i))
    heard_at = _Heard(tuple(heard), heard_end_ms, heard_level) if heard is not None else None
    if order == list(range(len(cues))):
        return _sync_sorted(cues, transcript, method, heard_at)
    result = _sync_sorted([cues[i] for i in order], transcript, method, heard_at)
    if not result.placements:
        return result
    placements: list[Placement | None] = [None] * len(cues)
    for k, i in enumerate(order):
        placements[i] = result.placements[k]
    return dataclasses.replace(result, placements=tuple(p for p in placements if p is not None))


@dataclass(frozen=True, slots=True)
class _Heard:
    intervals: tuple[Interval, ...]
    end_ms: int
    level: Level | None = None


def _sync_sorted(cues: Sequence[Cue], transcript: Transcript, method: MethodChoice, heard: _Heard | None) -> SyncResult:
    if not cues:
        return SyncResult("text", (), None, 1.0, 0.0, False, "the subtitle has no cues")
    if not transcript.tokens and not (heard is not None and method == "pattern"):
        return SyncResult("text", (), None, 1.0, 0.0, False, "the recognised speech is empty")
    text_result: SyncResult | None = None
    if method in ("auto", "text"):
        text_result = sync_by_text(cues, transcript)
        if text_result.trusted or method == "text":
            return text_result
    if heard is not None:
        pattern_result = sync_by_heard(cues, heard.intervals, heard.end_ms, heard.level)
    else:
        pattern_result = sync_by_pattern(cues, transcript)
    if pattern_result.trusted or text_result is None:
        return pattern_result
    return SyncResult(
        "pattern",
        (),
        None,
        1.0,
        0.0,
        False,
        f"{text_result.reason}; and by the timing pattern: {pattern_result.reason}",
        pattern_result.pattern_from,
    )


def _ends(cues: Sequence[Cue], starts: list[int], durations: list[int]) -> list[int]:
    """Ends from new starts and durations; a cue that did not overlap the next before does not overlap it now."""
    ends = [max(s + d, s) for s, d in zip(starts, durations, strict=True)]
    for i in range(len(cues) - 1):
        was_clear = cues[i].end_ms <= cues[i + 1].start_ms
        if was_clear and starts[i] < starts[i + 1] < ends[i]:
            ends[i] = starts[i + 1]
    return ends


def _by_neighbours(
    cues: Sequence[Cue],
    starts: list[int],
    time_map: TimeMap,
    good: Sequence[bool],
    matches: Sequence[CueMatch],
    speech: TimedUnits,
) -> list[int]:
    """Cues between the last cue placed by its text before a split and the first one after it, placed by their
    neighbours on their side of the split rather than by where the map's pieces happen to meet.

    A cue on the side of the cue before the split keeps its distance to that cue, one on the other side its distance
    to the cue after the split; the side is what its text says (:func:`_side`). At a cut, cues whose text says nothing
    are where the speech went missing: the cues before the first of them are on the near side, those after the last
    on the far side, and the missing ones are spread, in their order, over the media time between. Otherwise (an
    inserted scene, or nothing missing) the split is taken at the widest gap between those cues that agrees best with
    their text: a scene changes where nobody speaks. Where the two sides would overlap (a cut), the cues that would
    run backwards are spread too, so the starts stay in order."""
    out = list(starts)
    xs = [c.start_ms for c in cues]
    for at, jump in time_map.splits():
        b = min((i for i in range(len(cues)) if good[i] and xs[i] >= at), default=None)
        if b is None:
            continue
        # the last cue found before the split that still comes before ``b`` (one found by chance inside a cut does not)
        a = max((i for i in range(b) if good[i] and xs[i] < at and out[i] <= out[b]), default=None)
        if a is None or b - a < 2 or xs[b] <= xs[a]:
            continue
        ratio_a, ratio_b = time_map.piece_at(xs[a]).ratio, time_map.piece_at(xs[b]).ratio
        near = {i: out[a] + round((xs[i] - xs[a]) * ratio_a) for i in range(a + 1, b)}
        far = {i: out[b] - round((xs[b] - xs[i]) * ratio_b) for i in range(a + 1, b)}
        side = {i: _side(cues[i], matches[i], speech, near[i], far[i]) for i in range(a + 1, b)}
        lost = [i for i in range(a + 1, b) if side[i] == 0 and matches[i].units >= SHORT_UNITS]
        if jump < 0 and lost:
            first, last = lost[0], lost[-1]
        else:
            split = _widest_agreeing(cues, a, b, side)
            first, last = split + 1, split
        for i in range(a + 1, first):
            out[i] = near[i]
        for i in range(last + 1, b):
            out[i] = far[i]
        # at a cut the two sides overlap in media time: a cue that would come before the last one of the near side (it
        # straddles the cut) is spread with the missing ones
        while last + 1 < b and out[last + 1] < out[first - 1]:
            last += 1
        while first - 1 > a and out[first - 1] > out[last + 1]:
            first -= 1
        lo, hi = first - 1, last + 1
        for i in range(first, last + 1):
            out[i] = round(out[lo] + (xs[i] - xs[lo]) * (out[hi] - out[lo]) / max(xs[hi] - xs[lo], 1))
    return out


def _widest_agreeing(cues: Sequence[Cue], a: int, b: int, side: dict[int, int]) -> int:
    """The k in [a, b) after which to split the cues a+1..b-1: fewest cues put on the side their units deny, then the
    widest gap between cue k and cue k+1."""

    def cost(k: int) -> tuple[int, int, int]:
        wrong = sum(side[i] > 0 for i in range(a + 1, k + 1)) + sum(side[i] < 0 for i in range(k + 1, b))
        return (wrong, cues[k].end_ms - cues[k + 1].start_ms, k)

    return min(range(a, b), key=cost)


def _side(cue: Cue, match: CueMatch, speech: TimedUnits, near: int, far: int) -> int:
    """-1: a cue's text puts it on the near side of a split, 1: on the far side, 0: it does not say. In order: where
    its own text was found (a cue whose speech straddles the split), where the first of the few units of it that
    were found lies, where more of its words are said."""
    for at in (match.start_ms, match.hint_ms):
        if at is not None and _nearer(at, near, far):
            return _nearer(at, near, far)
    if match.units >= MIN_MATCHED:
        said = normalise(cue.text)
        length = cue.end_ms - cue.start_ms
        at_near = shared_units(said, speech, near - SIDE_SLACK_MS, near + length + SIDE_SLACK_MS)
        at_far = shared_units(said, speech, far - SIDE_SLACK_MS, far + length + SIDE_SLACK_MS)
        if abs(at_far - at_near) >= MIN_MATCHED and max(at_near, at_far) >= MIN_SHARE * len(said):
            return 1 if at_far > at_near else -1
    return 0


def _nearer(at: int, near: int, far: int) -> int:
    """-1 or 1 when ``at`` is clearly closer to ``near`` or ``far``, else 0."""
    to_near, to_far = abs(at - near), abs(at - far)
    if min(to_near, to_far) > SIDE_MS or max(to_near, to_far) < 2 * min(to_near, to_far):
        return 0
    return -1 if to_near < to_far else 1


def _by_map(cues: Sequence[Cue], time_map: TimeMap, distances: Sequence[int]) -> tuple[Placement, ...]:
    """Every cue moved by ``time_map`` (none by its own text), with how far each is from the evidence (ms)."""
    starts = [max(time_map.apply(c.start_ms), 0) for c in cues]
    ends = _place(cues, time_map, starts)
    return tuple(Placement(s, max(e, s), False, max(d, 1)) for s, e, d in zip(starts, ends, distances, strict=True))


def _place(cues: Sequence[Cue], time_map: TimeMap, starts: list[int]) -> list[int]:
    """Ends for new starts: each cue keeps its duration, scaled by the frame-rate ratio of its piece."""
    durations = [round(time_map.piece_at(c.start_ms).ratio * (c.end_ms - c.start_ms)) for c in cues]
    return _ends(cues, starts, durations)


def sync_by_text(cues: Sequence[Cue], transcript: Transcript) -> SyncResult:
    speech = recognised_units(transcript.tokens)
    matches = match_cues([c.text for c in cues], speech)
    placed = [i for i, m in enumerate(matches) if m.placed]
    with_text = sum(1 for m in matches if m.units) or 1
    share = len(placed) / with_text
    fit: Fit | None = None
    if len(placed) >= TEXT_MIN_CUES and share >= TEXT_MIN_SHARE:
        fit = fit_anchors([cues[i].start_ms for i in placed], [_own_start(matches[i]) for i in placed])
    if fit is None:
        reason = f"only {len(placed)} of {len(cues)} cues match the recognised text"
        return SyncResult("text", (), None, 1.0, share, False, reason)
    agree = sum(fit.inliers) / len(fit.inliers)
    if agree < TEXT_MIN_AGREE:
        reason = f"the {len(placed)} cues found in the recognised text disagree about the timing ({agree:.0%} agree)"
        return SyncResult("text", (), fit.time_map, fit.ratio, share, False, reason)
    good_x = sorted(cues[i].start_ms for i, ok in zip(placed, fit.inliers, strict=True) if ok)
    starts: list[int] = []
    by_text: list[bool] = []
    doubts: list[int] = []
    for cue, match in zip(cues, matches, strict=True):
        mapped = fit.time_map.apply(cue.start_ms)
        own = match.start_ms
        limit = OWN_TEXT_SHORT_MS if match.units < SHORT_UNITS else OWN_TEXT_MS
        if own is not None and abs(own - mapped) <= limit:
            starts.append(own)
            by_text.append(True)
            doubts.append(0)
        else:
            starts.append(mapped)
            by_text.append(False)
            # a cue with no words to find (a sound tag, an empty line) is not in doubt: the map is all there is
            doubts.append(_distance(good_x, cue.start_ms) if match.units else 0)
    starts = [max(s, 0) for s in _by_neighbours(cues, starts, fit.time_map, by_text, matches, speech)]
    ends = _place(cues, fit.time_map, starts)
    placements = tuple(Placement(s, max(e, s), t, d) for s, e, t, d in zip(starts, ends, by_text, doubts, strict=True))
    return SyncResult("text", placements, fit.time_map, fit.ratio, sum(by_text) / len(cues), True)


def _own_start(match: CueMatch) -> int:
    assert match.start_ms is not None
    return match.start_ms


def _distance(sorted_xs: list[int], x: int) -> int:
    if not sorted_xs:
        return 10**9
    k = bisect_left(sorted_xs, x)
    near = [abs(sorted_xs[j] - x) for j in (k - 1, k) if 0 <= j < len(sorted_xs)]
    return max(min(near), 1)


def sync_by_pattern(cues: Sequence[Cue], transcript: Transcript) -> SyncResult:
    speech = speech_intervals(transcript.tokens)
    fit: PatternFit | None = fit_pattern([(c.start_ms, c.end_ms) for c in cues], speech)
    if fit is None:
        return SyncResult(
            "pattern", (), None, 1.0, 0.0, False, "too few cues or too little speech to compare", "tokens"
        )
    if not fit.trusted:
        reason = (
            f"only {fit.landed:.0%} of the cues start where speech starts (by chance: {fit.chance:.0%}): "
            "is this the right media?"
        )
        return SyncResult("pattern", (), fit.time_map, fit.ratio, 0.0, False, reason, "tokens")
    # (no squeezing at cuts here: a cue that lands on speech may do so by chance, so which cues lost their speech is
    # not known well enough; they keep the times of the nearest piece and may overlap their neighbours)
    return SyncResult(
        "pattern", _by_map(cues, fit.time_map, fit.distance), fit.time_map, fit.ratio, 0.0, True, "", "tokens"
    )


def sync_by_heard(
    cues: Sequence[Cue], heard: Sequence[Interval], end_ms: int = 0, level: Level | None = None
) -> SyncResult:
    """By the timing pattern against the speech heard in the audio (:mod:`funasr_subs.sync.heard`)."""
    fit: HeardFit | None = fit_heard([(c.start_ms, c.end_ms) for c in cues], heard, end_ms, level)
    if fit is None:
        reason = "too few cues or too little speech heard to compare"
        return SyncResult("pattern", (), None, 1.0, 0.0, False, reason, "heard")
    if not fit.trusted and fit.level_z is not None:
        reason = (
            f"the cues stand out from the speech heard only {fit.level_z:.1f} times as far as chance lets them (the "
            f"same cues anywhere else in the audio; {MIN_LEVEL_Z:g} needed): "
            "is this the right media?"
        )
        return SyncResult("pattern", (), fit.time_map, fit.ratio, 0.0, False, reason, "heard")
    if not fit.trusted:
        reason = (
            f"the cues agree with the speech heard in the audio for {fit.agreement:.0%} of their time, and as well "
            f"as {fit.best_chance:.0%} with the same speech shuffled: is this the right media?"
        )
        return SyncResult("pattern", (), fit.time_map, fit.ratio, 0.0, False, reason, "heard")
    return SyncResult(
        "pattern", _by_map(cues, fit.time_map, fit.disagreement), fit.time_map, fit.ratio, 0.0, True, "", "heard"
    )

"""Same-language alignment: the subtitle's units matched to the recognised units by edit operations (rapidfuzz).

The whole subtitle is aligned to the whole transcript at once, so offsets, drift and cuts do not matter here: only
the order of what is said. Recognition errors are substitutions, dropped words deletions, text the subtitle leaves
out insertions. A cue whose units are mostly matched, close together, gets the times of its first and last matched
units (corrected for a unit or two unmatched at either edge).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from funasr_subs.model import Token
from funasr_subs.sync.normalise import TimedUnits, normalise_all, timed_units

#: A cue is placed by its own text when at least this share of its units is matched ...
MIN_SHARE = 0.5
#: ... and at least this many (one or two matched characters are chance).
MIN_MATCHED = 2
#: Unmatched units at a cue's edge that may be bridged by the cue's own pace.
EDGE_SLACK = 2


@dataclass(frozen=True, slots=True)
class CueMatch:
    """What the text says about one cue: ``units`` compared, ``matched`` of them found in the recognised text.

    ``start_ms``/``end_ms`` are the speech times of the cue's first and last unit when the cue is placed by its own
    text (``placed``), else None. ``hint_ms``: where its first matched unit is in the speech, when at least two are
    matched but the cue cannot be placed by them (too few, too scattered: a hint of which side of a cut it is on).
    """

    units: int
    matched: int
    start_ms: int | None
    end_ms: int | None
    hint_ms: int | None = None

    @property
    def placed(self) -> bool:
        return self.start_ms is not None

    @property
    def share(self) -> float:
        return self.matched / self.units if self.units else 0.0


def shared_units(cue_units: Sequence[str], speech: TimedUnits, start_ms: int, end_ms: int) -> int:
    """How many of a cue's units (counted with repeats) are among the units recognised from ``start_ms`` to
    ``end_ms``: whether its words are said there, whatever the order."""
    lo = bisect_left(speech.starts, start_ms)
    hi = bisect_right(speech.starts, end_ms)
    return sum((Counter(cue_units) & Counter(speech.units[lo:hi])).values())


def recognised_units(tokens: Sequence[Token]) -> TimedUnits:
    return timed_units([t.text for t in tokens], [t.start_ms for t in tokens], [t.end_ms for t in tokens])


def match_cues(texts: Sequence[str], speech: TimedUnits) -> list[CueMatch]:
    """One CueMatch per subtitle text, in order."""
    sub_units: list[str] = []
    owner: list[int] = []  # cue index of each subtitle unit
    position: list[int] = []  # its index inside the cue
    counts: list[int] = []
    for idx, found in enumerate(normalise_all(texts)):
        counts.append(len(found))
        sub_units.extend(found)
        owner.extend([idx] * len(found))
        position.extend(range(len(found)))
    pairs: list[list[tuple[int, int]]] = [[] for _ in texts]  # (position in cue, index of recognised unit)
    if sub_units and speech.units:
        ids: dict[str, int] = {}  # units as small integers: rapidfuzz compares those fastest
        src = [ids.setdefault(u, len(ids)) for u in sub_units]
        dest = [ids.setdefault(u, len(ids)) for u in speech.units]
        for block in Levenshtein.opcodes(src, dest):
            if block.tag != "equal":
                continue
            for k in range(block.src_end - block.src_start):
                at = block.src_start + k
                pairs[owner[at]].append((position[at], block.dest_start + k))
    return [_cue_match(counts[i], pairs[i], speech) for i in range(len(texts))]


def _cue_match(n: int, pairs: list[tuple[int, int]], speech: TimedUnits) -> CueMatch:
    matched = len(pairs)
    if n == 0 or matched < MIN_MATCHED:
        return CueMatch(n, matched, None, None)
    (p_first, u_first), (p_last, u_last) = pairs[0], pairs[-1]
    if u_last - u_first + 1 > 2 * n + 4:  # matched units scattered over far more speech than the cue holds (or split)
        return CueMatch(n, matched, None, None, speech.starts[u_first])
    if matched / n < MIN_SHARE:
        return CueMatch(n, matched, None, None, speech.starts[u_first])
    first, last = speech.starts[u_first], speech.ends[u_last]
    pace = (last - first) / max(p_last - p_first + 1, 1)  # ms per unit, from the cue's own matched span
    lead, tail = p_first, n - 1 - p_last
    if lead > EDGE_SLACK or tail > EDGE_SLACK:
        return CueMatch(n, matched, None, None, first)
    return CueMatch(n, matched, round(first - lead * pace), round(last + tail * pace))

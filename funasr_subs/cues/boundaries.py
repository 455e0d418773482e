"""How good a break after each token is: sentence ends, pauses, clause marks, then word-level hints (pure code)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import CLAUSE_END, TokenKind, ends_sentence

# Costs of a break after a token: 0 is perfect (a sentence end), 1 is an arbitrary word boundary.
SENTENCE_COST = 0.0
PAUSE_COST = 0.1
CLAUSE_COST = 0.3
OTHER_MARK_COST = 0.5
WORD_COST = 1.0
#: How much of a word boundary's cost a silence of ``pause`` ms or more takes away (shorter silences: pro rata).
GAP_BONUS = 0.5
ATTACHED_PENALTY = 0.6  # the next token clings to this one (的, 了, 吗 ...)
STICKY_PENALTY = 0.4  # this word leads into the next (the, of, I ...)
PHRASE_PENALTY = 0.3  # two English words/numbers inside Chinese text; a number and its unit
CONJUNCTION_BONUS = 0.3  # the next token starts a conjunction (但是, because ...)

#: Chinese characters that attach to what precedes them: a line or cue should not start with them.
ZH_ATTACHED = frozenset("的了吗呢吧啊呀嘛么们着过地得哦啦")
#: Chinese conjunctions by first character: a break before them is good.
ZH_CONJUNCTIONS: dict[str, tuple[str, ...]] = {
    "但": ("但是",),
    "因": ("因为", "因此"),
    "所": ("所以",),
    "而": ("而且", "而是"),
    "然": ("然后", "然而"),
    "如": ("如果",),
    "或": ("或者",),
    "可": ("可是",),
    "不": ("不过",),
    "虽": ("虽然",),
    "并": ("并且",),
    "还": ("还是",),
    "另": ("另外",),
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


EN_CONJUNCTIONS = _words(
    "and but or so because although though while when if that which who where then unless until since"
)
#: English words that should not end a line or cue: articles, prepositions, pronouns before their verb.
EN_STICKY = _words(
    "a an the to of in on at for with by from into onto my your his her its our their this these those "
    "i you he she we they it's i'm you're we're they're is are was were be been not no very"
)

# Conjunction status of a token: none, certainly one, or the first character of a two-character Chinese one.
NO_CONJ, CONJ, CONJ_IF_NEXT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Traits:
    """What the break rules need to know about one token (computed once per distinct text and punctuation)."""

    kind: TokenKind
    sentence_end: bool
    punct_cost: float  # cost of a break after this token's punctuation (WORD_COST when it has none)
    attached: bool  # clings to the previous token
    sticky: bool  # leads into the next token
    conj: int  # NO_CONJ, CONJ or CONJ_IF_NEXT
    first: str  # first character (for two-character conjunction checks)


def traits(text: str, punct: str, kind: TokenKind) -> Traits:
    lower = text.lower()
    punct_cost = WORD_COST
    if punct:
        punct_cost = CLAUSE_COST if any(ch in CLAUSE_END for ch in punct) else OTHER_MARK_COST
    conj = NO_CONJ
    if lower in EN_CONJUNCTIONS:
        conj = CONJ
    elif text and text[0] in ZH_CONJUNCTIONS:
        conj = CONJ if any(text.startswith(w) for w in ZH_CONJUNCTIONS[text[0]]) else CONJ_IF_NEXT
    return Traits(
        kind=kind,
        sentence_end=ends_sentence(text, punct),
        punct_cost=punct_cost,
        attached=kind == "cjk" and bool(text) and text[0] in ZH_ATTACHED,
        sticky=lower in EN_STICKY,
        conj=conj,
        first=text[:1],
    )


def _latin_like(kind: TokenKind) -> bool:
    return kind in ("latin", "digit")


def boundary_costs(
    info: Sequence[Traits],
    starts: Sequence[int],
    ends: Sequence[int],
    settings: CueSettings,
) -> tuple[list[float], list[bool], list[bool]]:
    """Per token k: (cost of a break after k, whether the break is hard, whether it ends a sentence).

    A hard break is a sentence end or a silence longer than ``settings.pause``; the last token's break is hard.
    """
    n = len(info)
    pause = settings.pause
    scale = GAP_BONUS / max(pause, 1)
    zh = settings.profile == "zh"
    costs = [0.0] * n
    hard = [True] * n
    sentence = [True] * n
    for k in range(n - 1):
        tr = info[k]
        if tr.sentence_end:
            continue
        sentence[k] = False
        gap = starts[k + 1] - ends[k]
        if gap > pause:
            costs[k] = PAUSE_COST
            continue
        hard[k] = False
        cost = tr.punct_cost
        nxt = info[k + 1]
        if cost == WORD_COST:
            if nxt.attached:
                cost += ATTACHED_PENALTY
            if tr.sticky:
                cost += STICKY_PENALTY
            if (tr.kind == "digit" and nxt.kind == "cjk") or (zh and _latin_like(tr.kind) and _latin_like(nxt.kind)):
                cost += PHRASE_PENALTY
        if gap > 0:
            cost -= scale * gap
        if nxt.conj == CONJ or (
            nxt.conj == CONJ_IF_NEXT
            and k + 2 < n
            and any(w[1:2] == info[k + 2].first for w in ZH_CONJUNCTIONS.get(nxt.first, ()))
        ):
            cost -= CONJUNCTION_BONUS
        costs[k] = cost if cost > PAUSE_COST else PAUSE_COST
    return costs, hard, sentence

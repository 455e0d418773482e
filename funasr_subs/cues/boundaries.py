"""How good a break after each word is: sentence ends, pauses, clause marks, then word-level hints (pure code)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from funasr_subs.cues.script import Script, convert
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
#: A silence of up to HESITATION_MS inside a phrase whose cut costs at least HESITATION_BOND (的 before its noun,
#: a preposition before its object: :mod:`.grammar`) is a hesitation, not a place the cue must break.
HESITATION_MS = 1500
HESITATION_BOND = 0.5

#: Chinese words that cling to what precedes them (particles): a line or cue should not start with them. The
#: word grouping (:mod:`.words`) already joins them to the word before; this covers one left alone by a long pause.
ZH_ATTACHED = frozenset("的了吗呢吧啊呀嘛么们着过地得哦啦")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Chinese conjunctions and clause openers: a break before them is good.
ZH_CONJUNCTIONS = _words(
    "但是 但 可是 不过 然而 因为 因此 所以 于是 而且 而是 并且 或者 还是 如果 要是 假如 虽然 尽管 即使 "
    "无论 不管 只要 只有 除非 既然 否则 然后 接着 另外 此外 同时 比如 例如 甚至 以及"
)
#: Chinese words that lead into the next one: a break right after them costs extra (a subject pronoun and its
#: verb, a determiner and its noun, an adverb or negation and its verb, a preposition and its object).
ZH_STICKY = _words(
    "我 你 他 她 它 我们 你们 他们 她们 咱们 大家 这个 那个 一个 这种 那种 这些 那些 每个 "
    "很 太 最 更 都 也 就 才 还 再 又 不 没 没有 别 不要 不会 不能 非常 特别 比较 "
    "在 把 被 对 从 向 给 跟 和 与 为 让 叫 将 往"
)


@lru_cache(maxsize=8)
def zh_word_sets(script: Script) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(attached, conjunctions, sticky) as they are written in ``script`` (the display text is converted first)."""
    sets = (ZH_ATTACHED, ZH_CONJUNCTIONS, ZH_STICKY)
    if script == "hans":
        return sets
    return tuple(frozenset(w) | frozenset(convert(x, script) for x in w) for w in sets)  # type: ignore[return-value]


EN_CONJUNCTIONS = _words(
    "and but or so because although though while when if that which who where then unless until since"
)
#: English words that should not end a line or cue: articles, prepositions, pronouns before their verb.
EN_STICKY = _words(
    "a an the to of in on at for with by from into onto my your his her its our their this these those "
    "i you he she we they it's i'm you're we're they're is are was were be been not no very"
)


@dataclass(frozen=True, slots=True)
class Traits:
    """What the break rules need to know about one token (computed once per distinct text and punctuation)."""

    kind: TokenKind
    sentence_end: bool
    punct_cost: float  # cost of a break after this token's punctuation (WORD_COST when it has none)
    attached: bool  # clings to the previous token
    sticky: bool  # leads into the next token
    conj: bool  # starts a clause: a break before it is good


def traits(text: str, punct: str, kind: TokenKind, script: Script = "hans") -> Traits:
    attached, conjunctions, sticky = zh_word_sets(script)
    lower = text.lower()
    punct_cost = WORD_COST
    if punct:
        punct_cost = CLAUSE_COST if any(ch in CLAUSE_END for ch in punct) else OTHER_MARK_COST
    return Traits(
        kind=kind,
        sentence_end=ends_sentence(text, punct),
        punct_cost=punct_cost,
        attached=text in attached,
        sticky=lower in EN_STICKY or text in sticky,
        conj=lower in EN_CONJUNCTIONS or text in conjunctions,
    )


#: The eight possible traits of a word of Chinese characters without punctuation, by (attached, sticky, conj).
_CJK_TRAITS = {
    (a, s, c): Traits("cjk", False, WORD_COST, a, s, c)
    for a in (False, True)
    for s in (False, True)
    for c in (False, True)
}


def cjk_traits(text: str, script: Script = "hans") -> Traits:
    """traits() of a word of Chinese characters without punctuation (the common case, made cheap)."""
    attached, conjunctions, sticky = zh_word_sets(script)
    return _CJK_TRAITS[text in attached, text in sticky, text in conjunctions]


def _latin_like(kind: TokenKind) -> bool:
    return kind in ("latin", "digit")


def boundary_costs(
    info: Sequence[Traits],
    starts: Sequence[int],
    ends: Sequence[int],
    settings: CueSettings,
    bonds: Sequence[float] | None = None,
) -> tuple[list[float], list[bool], list[bool], list[bool]]:
    """Per token k: (cost of a break after k, whether the break is hard, whether it ends a sentence, whether a
    clause mark ``，、；：,;:—`` follows k inside a sentence).

    A hard break is a sentence end or a silence longer than ``settings.pause``; the last token's break is hard.
    ``bonds[k]`` (from :mod:`.grammar`) is added to the break after k: the phrase it would cut (0 after a mark
    that stays visible).
    """
    n = len(info)
    pause = settings.pause
    scale = GAP_BONUS / max(pause, 1)
    zh = settings.profile == "zh"
    costs = [0.0] * n
    hard = [True] * n
    sentence = [True] * n
    clause = [False] * n
    for k in range(n - 1):
        tr = info[k]
        if tr.sentence_end:
            continue
        sentence[k] = False
        gap = starts[k + 1] - ends[k]
        if gap > pause and not (bonds is not None and bonds[k] >= HESITATION_BOND and gap <= HESITATION_MS):
            costs[k] = PAUSE_COST
            continue
        hard[k] = False  # (or a hesitation inside a phrase: a break there is a word boundary that cuts it)
        cost = tr.punct_cost
        clause[k] = cost == CLAUSE_COST
        nxt = info[k + 1]
        if cost == WORD_COST:
            if nxt.attached:
                cost += ATTACHED_PENALTY
            if tr.sticky:
                cost += STICKY_PENALTY
            if (tr.kind == "digit" and nxt.kind == "cjk") or (zh and _latin_like(tr.kind) and _latin_like(nxt.kind)):
                cost += PHRASE_PENALTY  # a number and its unit; English words and names inside Chinese text
        if bonds is not None:
            cost += bonds[k]
        if gap > 0:
            cost -= scale * min(gap, pause)
        if nxt.conj:
            cost -= CONJUNCTION_BONUS
        costs[k] = cost if cost > PAUSE_COST else PAUSE_COST
    return costs, hard, sentence, clause

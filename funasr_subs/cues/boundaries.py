"""How good a break after each token is: sentence ends, pauses, clause marks, then word-level hints (pure code)."""

from __future__ import annotations

from collections.abc import Sequence

from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import CLAUSE_END, TokenKind, ends_sentence
from funasr_subs.model import Token

# Costs of a break after a token: 0 is perfect (a sentence end), 1 is an arbitrary word boundary.
SENTENCE_COST = 0.0
PAUSE_COST = 0.1
CLAUSE_COST = 0.3
OTHER_MARK_COST = 0.5
WORD_COST = 1.0
#: How much of a word boundary's cost a silence of ``pause`` ms or more takes away (shorter silences: pro rata).
GAP_BONUS = 0.5

#: Chinese characters that attach to what precedes them: a line or cue should not start with them.
ZH_ATTACHED = frozenset("的了吗呢吧啊呀嘛么们着过地得哦啦")
#: Chinese conjunctions (first character -> words): a break before them is good.
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


def _latin_like(kind: TokenKind) -> bool:
    return kind in ("latin", "digit")


def _starts_conjunction(tokens: Sequence[Token], k: int) -> bool:
    text = tokens[k].text.strip()
    if not text:
        return False
    if text.lower() in EN_CONJUNCTIONS:
        return True
    words = ZH_CONJUNCTIONS.get(text[0])
    if not words:
        return False
    following = text
    m = k + 1
    while len(following) < 2 and m < len(tokens):
        following += tokens[m].text.strip()
        m += 1
    return any(following.startswith(w) for w in words)


def boundary_costs(
    tokens: Sequence[Token],
    kinds: Sequence[TokenKind],
    starts: Sequence[int],
    ends: Sequence[int],
    settings: CueSettings,
) -> tuple[list[float], list[bool], list[bool]]:
    """Per token k: (cost of a break after k, whether the break is hard, whether it ends a sentence).

    A hard break is a sentence end or a silence longer than ``settings.pause``; the last token's break is hard.
    """
    n = len(tokens)
    pause = max(settings.pause, 1)
    zh = settings.profile == "zh"
    costs = [0.0] * n
    hard = [True] * n
    sentence = [True] * n
    for k in range(n - 1):
        tok = tokens[k]
        punct = tok.punct.strip()
        gap = starts[k + 1] - ends[k]
        if ends_sentence(tok.text, punct):
            costs[k] = SENTENCE_COST
            continue
        sentence[k] = False
        if gap > settings.pause:
            costs[k] = PAUSE_COST
            continue
        hard[k] = False
        if punct:
            cost = CLAUSE_COST if any(ch in CLAUSE_END for ch in punct) else OTHER_MARK_COST
        else:
            cost = WORD_COST
            nxt = tokens[k + 1].text.strip()
            if nxt and nxt[0] in ZH_ATTACHED and kinds[k + 1] == "cjk":
                cost += 0.6
            if tok.text.strip().lower() in EN_STICKY:
                cost += 0.4
            if zh and _latin_like(kinds[k]) and _latin_like(kinds[k + 1]):
                cost += 0.3  # keep English phrases and names together inside Chinese text
            if kinds[k] == "digit" and kinds[k + 1] == "cjk":
                cost += 0.3  # a number and its unit ("3 个", "2024 年")
        if gap > 0:
            cost -= GAP_BONUS * min(gap / pause, 1.0)
        if _starts_conjunction(tokens, k + 1):
            cost -= 0.3
        costs[k] = max(cost, PAUSE_COST)
    return costs, hard, sentence

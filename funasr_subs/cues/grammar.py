"""What the words are, for keeping phrases whole and leaving fillers out (pure code apart from the tagger it calls).

A line or cue may break between any two words, but some breaks cut a phrase a reader takes in as one:
``认知的一切的 | 执着`` (的 before its noun), ``仅能获得较 | 低的保底收益`` (an adverb before its adjective),
``关于 | 五常大米`` (a preposition before its object), ``三 | 个`` (a numeral before its measure word),
``放 | 回来`` (a verb before its complement), ``种粮 | 大户`` (a compound noun), ``一是 | 五常市政府`` (an item
marker left at a line end). Each word's part of speech comes from jieba's tagger (rjieba, the segmenter the engine
already ships: its dictionary carries a tag for every word), and each kind of cut adds its cost to the break
(:mod:`.boundaries`), so the break choice moves a word or two when it can and cuts a phrase only when nothing
else fits.

Fillers — hesitation syllables standing alone (``呃``, ``嗯``), and ``啊``/``那个``/``这个`` only where they stand
alone before a pause or a clause mark — are left out of the display text unless the settings ask for verbatim
text; the cue still covers their speech.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from funasr_subs.cues import lexicon
from funasr_subs.cues.text import SENTENCE_END
from funasr_subs.model import Token


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What a word ends with (its last tagged piece), as flags.
END_DE = 1  # 的/之 that ties a modifier to its head
END_ADVERB = 2  # an adverb or negation (不, 很, 较)
END_PREPOSITION = 4  # a preposition (在, 关于, 把)
END_NUMERAL = 8  # a numeral (三, 几)
END_VERB = 16
END_NOUN = 32
END_OPENER = 64  # a conjunction or an item marker (但是, 所以, 一是, 首先): starts a line, never ends one
# What a word starts with (its first tagged piece).
START_PREDICATE = 1  # a verb or adjective: an adverb before it belongs to it
START_MEASURE = 2  # a measure word: a numeral before it belongs to it
START_COMPLEMENT = 4  # a directional or result complement (来, 回来, 出来, 完, 好, 住, 到 ...)
START_NOUN = 8
START_OPENER = 16  # a conjunction, an item marker or an interjection: a break before it is good

#: Extra cost of a break that cuts each kind of phrase (a plain word boundary costs 1.0, a clause mark 0.3).
DE_HEAD = 0.6
ADVERB_PREDICATE = 0.5
PREPOSITION_OBJECT = 0.5
NUMERAL_MEASURE = 0.6
VERB_COMPLEMENT = 0.5
NOUN_NOUN = 0.4
OPENER_AT_END = 0.6
OPENER_BONUS = 0.3

_NOUN_TAGS = frozenset({"n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "ng", "vn", "an", "s"})
_VERB_TAGS = frozenset({"v", "vd", "vg", "vi", "vq"})
_PREDICATE_TAGS = _VERB_TAGS | frozenset({"a", "ad", "ag", "al", "vn", "an"})
#: Directional and result complements: the closed class of verbs that complete the verb before them.
_COMPLEMENTS = _word_set(
    "来 去 回来 回去 出来 出去 进来 进去 上来 上去 下来 下去 过来 过去 起来 开来 到 完 好 住 掉 走 成  "
    "见 懂 会 开 着 清楚 明白 干净"
)
#: Item markers (一是 … 二是, 首先, 其次, 第一): the tagger calls them verbs or adverbs.
_ITEM_MARKER = re.compile(r"[一二三四五六七八九十]是|首先|其次|再次|第[一二三四五六七八九十]+")
#: Hesitation syllables: a word made only of these is a filler.
_HESITATION = frozenset("呃嗯额唔")
#: Words that are fillers only when they stand alone before a pause or a clause mark.
_SOMETIMES_FILLERS = frozenset({"啊", "那个", "这个", "就是说"})
#: Of those, the demonstratives: inside a clause they are often the word itself (an object, a pronoun).
_DEMONSTRATIVES = frozenset({"那个", "这个"})
#: The first characters of every filler (a fast test before :func:`is_filler`).
_FILLER_FIRST = frozenset(_HESITATION | {w[0] for w in _SOMETIMES_FILLERS})
#: Clause marks the ``space`` style hides at a line end.
_HIDDEN = frozenset("，；：、")


def _end_flags(tag: str) -> int:
    """END_* flags a piece's tag gives on its own (the piece's text adds 的/之, 不/没, item markers)."""
    end = 0
    if tag in ("d", "zg", "ad"):
        end |= END_ADVERB
    elif tag == "p":
        end |= END_PREPOSITION
    elif tag in ("m", "mq"):
        end |= END_NUMERAL
    if tag in _VERB_TAGS:
        end |= END_VERB
    if tag in _NOUN_TAGS:
        end |= END_NOUN
    if tag == "c":
        end |= END_OPENER
    return end


def _start_flags(tag: str) -> int:
    """START_* flags a piece's tag gives on its own (the piece's text adds complements and item markers)."""
    start = 0
    if tag in _PREDICATE_TAGS:
        start |= START_PREDICATE
    if tag == "q":
        start |= START_MEASURE
    if tag in _NOUN_TAGS:
        start |= START_NOUN
    if tag in ("c", "e"):
        start |= START_OPENER
    return start


_END_BY_TAG: dict[str, int] = {}
_START_BY_TAG: dict[str, int] = {}
_NOT_NUMERAL_END = tuple("个次年月日号岁")


@lru_cache(maxsize=65536)
def edges(text: str) -> tuple[int, int]:
    """(what ``text`` ends with, what it starts with), as END_* and START_* flags, from jieba's tags of its pieces
    (a display word may hold several: ``认知的`` is 认知 + 的). Words that are not Chinese have no flags."""
    if not text or not ("\u3400" <= text[0] <= "\u9fff" or "\u3400" <= text[-1] <= "\u9fff"):
        return 0, 0
    pieces = lexicon.tag(text)
    if not pieces:
        return 0, 0
    first, first_tag = pieces[0]
    last, last_tag = pieces[-1]
    end = _END_BY_TAG.get(last_tag)
    if end is None:
        end = _END_BY_TAG[last_tag] = _end_flags(last_tag)
    if last in ("的", "之") and last_tag in ("uj", "u"):
        end = (end & ~(END_ADVERB | END_PREPOSITION | END_NUMERAL)) | END_DE
    elif last in ("不", "没", "没有"):
        end = (end & ~(END_PREPOSITION | END_NUMERAL)) | END_ADVERB
    elif end & END_NUMERAL and last.endswith(_NOT_NUMERAL_END):
        end &= ~END_NUMERAL
    if len(last) > 1 and _ITEM_MARKER.fullmatch(last):
        end |= END_OPENER
    start = _START_BY_TAG.get(first_tag)
    if start is None:
        start = _START_BY_TAG[first_tag] = _start_flags(first_tag)
    if first in _COMPLEMENTS:
        start |= START_COMPLEMENT
    if len(first) > 1 and _ITEM_MARKER.fullmatch(first):
        start |= START_OPENER
    return end, start


def bond(left_end: int, right_start: int) -> float:
    """The extra cost of a break between a word ending with ``left_end`` and one starting with ``right_start``
    (negative: a break there is better than a plain word boundary)."""
    if not left_end and not right_start:
        return 0.0
    cost = 0.0
    if left_end & END_DE:
        cost += DE_HEAD
    if left_end & END_ADVERB and right_start & START_PREDICATE:
        cost += ADVERB_PREDICATE
    if left_end & END_PREPOSITION:
        cost += PREPOSITION_OBJECT
    if left_end & END_NUMERAL and right_start & START_MEASURE:
        cost += NUMERAL_MEASURE
    if left_end & END_VERB and right_start & START_COMPLEMENT:
        cost += VERB_COMPLEMENT
    if left_end & END_NOUN and right_start & START_NOUN:
        cost += NOUN_NOUN
    if left_end & END_OPENER:
        cost += OPENER_AT_END
    if right_start & START_OPENER and not left_end & END_OPENER:
        cost -= OPENER_BONUS
    return cost


#: The share of the 的 bond that still counts after a clause mark the line end hides (``space`` style): the
#: reader sees ``…欢欢喜喜的 | 能够…`` with no comma, so a mark after 的 is a weaker break.
HIDDEN_MARK_SHARE = 0.5


def bonds(words: Sequence[Token], punctuation: str = "space") -> list[float]:
    """For each word, the extra cost of a break after it: the phrase the break would cut (0.0 after the last word
    and after a mark that stays visible at a line end; a share of the 的 bond after ``，；：、`` in the ``space``
    style)."""
    n = len(words)
    out = [0.0] * n
    if n < 2:
        return out
    hidden = punctuation == "space"
    seen: dict[str, tuple[int, int]] = {}  # one lookup per distinct word (edges' own cache is shared and bounded)
    flags = []
    for w in words:
        f = seen.get(w.text)
        if f is None:
            f = seen[w.text] = edges(w.text)
        flags.append(f)
    bonds_of: dict[tuple[int, int], float] = {}
    for k in range(n - 1):
        left = flags[k][0]
        right = flags[k + 1][1]
        if not left and not right:
            continue
        punct = words[k].punct
        if not punct:
            key = (left, right)
            b = bonds_of.get(key)
            if b is None:
                b = bonds_of[key] = bond(left, right)
            out[k] = b
        elif hidden and left & END_DE and all(ch in _HIDDEN for ch in punct):
            out[k] = HIDDEN_MARK_SHARE * DE_HEAD
    return out


def _hesitation(text: str) -> bool:
    return bool(text) and all(ch in _HESITATION for ch in text)


def _starts_clause(words: Sequence[Token], k: int, pause: int) -> bool:
    """True when word k is the first of its clause: after a mark, a pause or a hesitation, or the first word."""
    if k == 0:
        return True
    before = words[k - 1]
    return bool(before.punct) or _hesitation(before.text) or words[k].start_ms - before.end_ms > pause


def is_filler(words: Sequence[Token], k: int, pause: int) -> bool:
    """True when word k is a filler: hesitation syllables alone (呃, 嗯嗯), or 啊/那个/这个 standing alone right
    before a clause mark, a pause, another filler or the same word again. 那个/这个 inside a clause is a filler
    there only when what follows is what it points at (``讨论那个，成本问题``: a noun, the same word, a hesitation);
    otherwise it is the word itself (``我要那个，不要这个``, ``我喜欢这个，也喜欢那个``)."""
    text = words[k].text
    if _hesitation(text):
        return True
    if text not in _SOMETIMES_FILLERS:
        return False
    nxt = words[k + 1] if k + 1 < len(words) else None
    repeated = nxt is not None and (nxt.text == text or _hesitation(nxt.text))
    marked = bool(words[k].punct) and not any(ch in SENTENCE_END for ch in words[k].punct)
    paused = nxt is not None and nxt.start_ms - words[k].end_ms > pause
    if not (marked or paused):
        return repeated
    if text in _DEMONSTRATIVES and not _starts_clause(words, k, pause):
        return repeated or (nxt is not None and bool(edges(nxt.text)[1] & START_NOUN))
    return True


def _stronger(a: str, b: str) -> str:
    """The mark that ends a clause more strongly (a sentence end beats a clause mark; the first wins a tie)."""
    if not b or any(ch in SENTENCE_END for ch in a):
        return a
    if not a or any(ch in SENTENCE_END for ch in b):
        return b
    return a


def drop_fillers(words: Sequence[Token], pause: int) -> list[Token]:
    """``words`` without fillers (see :func:`is_filler`). The next word takes the start of the fillers right before
    it when each follows the one before within ``pause`` (the cue still covers the speech, never the silences
    between); a filler's mark goes to the word before it."""
    out: list[Token] = []
    carry: int | None = None  # the start of fillers just dropped, for the next word
    n = len(words)
    first = _FILLER_FIRST
    for k, word in enumerate(words):
        if word.text[:1] not in first:  # most words: no filler starts with their first character
            if carry is not None:
                if word.start_ms - words[k - 1].end_ms <= pause:
                    word = Token(word.text, min(carry, word.start_ms), word.end_ms, word.punct)
                carry = None
            out.append(word)
            continue
        if not is_filler(words, k, pause):
            if carry is not None and word.start_ms - words[k - 1].end_ms <= pause:
                word = Token(word.text, min(carry, word.start_ms), word.end_ms, word.punct)
            carry = None
            out.append(word)
            continue
        if word.punct and out:
            prev = out[-1]
            out[-1] = Token(prev.text, prev.start_ms, prev.end_ms, _stronger(prev.punct, word.punct))
            carry = None
        elif k + 1 < n:
            # a filler after a pause starts a new stretch of speech: the fillers before it are not joined up
            joined = carry is not None and word.start_ms - words[k - 1].end_ms <= pause
            carry = carry if joined else word.start_ms
    return out

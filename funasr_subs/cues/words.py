"""From FunASR's tokens to the words a line may break between (pure code apart from the segmenter it calls).

FunASR sends one token per Chinese character, digits one by one (``1 6 号`` for 16号), spelled-out letters as
separate lower-case tokens (``f s d``) and every English word lower-case. This module turns that into display
words, each a :class:`Token` with the time of its first and last character:

- digit runs become one number (``1 6`` → ``16``); spelled letters become one upper-case word (``f s d`` → ``FSD``,
  ``o k`` → ``OK``); a lone letter beside Chinese is upper-case (``a 股`` → ``A股``'s ``A``);
- the user's words (hotwords, ``--words``) get their own spelling back (``jackson`` → ``Jackson``);
- each run of Chinese characters between punctuation and pauses is cut into words (see :mod:`.lexicon`);
- a particle joins the word before it (``可以了哦``), a measure word or unit joins its number (``5个人``,
  ``2024年``), so no line or cue starts with either;
- a word wider than a line is cut into line-sized pieces (the only place a break falls inside a word);
- the display text is converted to the chosen script word by word (:mod:`.script`).

The cue engine then treats each word as one unbreakable unit: every break it chooses is between words.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from funasr_subs.cues import grammar, lexicon
from funasr_subs.cues.script import convert_clauses
from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import TokenKind, separator, text_width, token_kind
from funasr_subs.model import Token

#: Characters that cling to the word before them: a line or cue never starts with one (after no punctuation).
PARTICLES = frozenset("的了吗呢吧啊哦呀啦嘛么着过得地哈呐喔噢")
#: Measure words and units that belong to the number before them (``5个人``, ``2024年``, ``16号``, ``3万``).
MEASURES = frozenset("个次年月日号岁元块角分秒点位名只件条张本台辆家种天周倍层期届批套份首部场遍声亿万千百斤米里克度")
#: English words FunASR sends lower-case that are always written otherwise (the user's words can add more).
DISPLAY = {"ok": "OK"}
#: A particle this close after the previous word (ms of silence) joins it even across a pause.
PARTICLE_GLUE_MS = 2000


#: The longest a single token is believed to be spoken, per character of its text; a longer token holds a pause
#: FunASR absorbed into it (FunASR #2091), and its start is taken to be that much before its end.
MAX_TOKEN_MS_PER_CHAR = 250
MAX_TOKEN_MS = 1000


def give_back_pauses(tokens: Sequence[Token]) -> Sequence[Token]:
    """Tokens with a pause absorbed into them (FunASR #2091) given back to the silence before them."""
    out: list[Token] | None = None
    for idx, tok in enumerate(tokens):
        if tok.end_ms - tok.start_ms <= MAX_TOKEN_MS:
            continue
        longest = max(MAX_TOKEN_MS, MAX_TOKEN_MS_PER_CHAR * sum(1 for ch in tok.text if ch.isalnum()))
        if tok.end_ms - tok.start_ms > longest:
            if out is None:
                out = list(tokens)
            out[idx] = Token(tok.text, tok.end_ms - longest, tok.end_ms, tok.punct)
    return tokens if out is None else out


def _is_letter(text: str) -> bool:
    return len(text) == 1 and text.isascii() and text.isalpha()


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _spelled(letters: str) -> str:
    """Spelled letters as one upper-case word; a repeated one is written each time (``o k o k`` → ``OK OK``)."""
    word = letters.upper()
    for size in range(2, len(word) // 2 + 1):
        if len(word) % size == 0 and word == word[:size] * (len(word) // size):
            return " ".join([word[:size]] * (len(word) // size))
    return word


def _casing(words: Sequence[str]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """The user's spelling of every word that holds Latin letters, keyed by its lower-case words."""
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    for word in words:
        parts = tuple(word.split())
        if parts and any(ch.isascii() and ch.isalpha() for ch in word):
            out[tuple(p.lower() for p in parts)] = parts
    return out


def normalise_latin(tokens: Sequence[Token], settings: CueSettings) -> list[Token]:
    """Digit runs joined, spelled letters joined and upper-cased, the user's spelling restored."""
    zh = settings.profile == "zh"
    out: list[Token] = []
    letters: list[int] = []  # where single letters landed in out
    n = len(tokens)
    done = 0  # tokens before this one are in out
    for k in [i for i, t in enumerate(tokens) if t.text.isascii()]:  # Chinese needs nothing: copied in slices
        if k < done:
            continue
        out.extend(tokens[done:k])
        done = k + 1
        tok = tokens[k]
        text = tok.text.strip()
        joinable = _is_number(text) or (zh and _is_letter(text))
        if joinable and not tok.punct:
            same = _is_number if _is_number(text) else _is_letter
            j = k
            while (
                j + 1 < n
                and not tokens[j].punct
                and same(tokens[j + 1].text.strip())
                and tokens[j + 1].start_ms - tokens[j].end_ms <= settings.pause
            ):
                j += 1
            if j > k:
                joined = "".join(t.text.strip() for t in tokens[k : j + 1])
                if same is _is_letter:
                    joined = _spelled(joined)
                out.append(Token(joined, tok.start_ms, tokens[j].end_ms, tokens[j].punct))
                done = j + 1
                continue
        text = DISPLAY.get(text, text)
        if _is_letter(text):
            letters.append(len(out))
        out.append(tok if text == tok.text else Token(text, tok.start_ms, tok.end_ms, tok.punct))
    out.extend(tokens[done:])
    if zh:  # a lone letter beside Chinese is an initial or a symbol: upper-case (C罗, A股, X光)
        for idx in letters:
            tok = out[idx]
            if tok.text.islower():
                before = token_kind(out[idx - 1].text) if idx else "cjk"
                after = token_kind(out[idx + 1].text) if idx + 1 < len(out) else "cjk"
                if "cjk" in (before, after) or tok.text == "i":
                    out[idx] = Token(tok.text.upper(), tok.start_ms, tok.end_ms, tok.punct)
    casing = _casing(settings.words)
    if casing:
        out = _restore_casing(out, casing)
    return out


def _restore_casing(tokens: list[Token], casing: dict[tuple[str, ...], tuple[str, ...]]) -> list[Token]:
    longest = max(len(key) for key in casing)
    firsts = {key[0] for key in casing}
    out = list(tokens)
    k = 0
    while k < len(out):
        if out[k].text.lower() not in firsts:
            k += 1
            continue
        for size in range(min(longest, len(out) - k), 0, -1):
            key = tuple(t.text.lower() for t in out[k : k + size])
            spelled = casing.get(key)
            if spelled is not None and all(not t.punct for t in out[k : k + size - 1]):
                # a name of several words becomes one word: never split across lines
                last = out[k + size - 1]
                out[k : k + size] = [Token(" ".join(spelled), out[k].start_ms, last.end_ms, last.punct)]
                break
        k += 1
    return out


def _word_bounds(toks: Sequence[Token], kinds: Sequence[TokenKind], settings: CueSettings) -> list[bool]:
    """For each token, whether a word ends after it: every run of Chinese characters (between punctuation, pauses
    and other tokens) is cut into words in one call of the segmenter; anything else is a word of its own."""
    n = len(toks)
    pause = settings.pause
    cjk = [kind == "cjk" for kind in kinds]
    # joined[k]: token k and k+1 are in the same run of Chinese
    joined = [
        cjk[k] and cjk[k + 1] and not toks[k].punct and toks[k + 1].start_ms - toks[k].end_ms <= pause
        for k in range(n - 1)
    ]
    joined.append(False)
    # the text given to the segmenter: runs kept apart by a line feed, so a word never crosses a run's end
    parts = [(toks[k].text if k and joined[k - 1] else "\n" + toks[k].text) if cjk[k] else "" for k in range(n)]
    offsets = accumulate(map(len, parts))  # where token k ends in that text
    ends = set(accumulate(map(len, lexicon.cut("".join(parts), settings.words))))
    return [not j or off in ends for j, off in zip(joined, offsets, strict=True)]


def _glue(toks: Sequence[Token], kinds: Sequence[TokenKind], bounds: list[bool]) -> None:
    """Particles join the word before them; a measure word or unit joins its number; a number joins 第."""
    n = len(toks)
    for k in range(n - 1):
        if not bounds[k] or toks[k].punct:
            continue
        nxt = toks[k + 1]
        gap = nxt.start_ms - toks[k].end_ms
        text = nxt.text
        if text in PARTICLES and bounds[k + 1]:
            bounds[k] = gap > PARTICLE_GLUE_MS
        elif (kinds[k] == "digit" and kinds[k + 1] == "cjk" and text[:1] in MEASURES) or (
            kinds[k + 1] == "digit" and toks[k].text.endswith("第")
        ):
            bounds[k] = gap > 1000


def _join(toks: Sequence[Token], kinds: Sequence[TokenKind], i: int, j: int, latin_space: bool) -> str:
    if all(kinds[k] == "cjk" for k in range(i, j + 1)):
        return "".join(toks[k].text for k in range(i, j + 1))
    parts = [toks[i].text]
    for k in range(i + 1, j + 1):
        parts.append(separator(kinds[k - 1], toks[k - 1].punct, kinds[k], latin_space=latin_space))
        parts.append(toks[k].text)
    return "".join(parts)


def to_words(tokens: Sequence[Token], settings: CueSettings) -> list[Token]:
    """The display words of ``tokens`` (see the module docstring), in order, each timed from its first token's
    start to its last token's end and carrying the last token's punctuation. Linear in the number of tokens."""
    return words_and_bonds(tokens, settings)[0]


def words_and_bonds(tokens: Sequence[Token], settings: CueSettings) -> tuple[list[Token], list[float] | None]:
    """:func:`to_words`, and for Chinese the extra cost of a break after each word where it would cut a phrase
    (:func:`.grammar.bonds`; None for other profiles). Fillers are left out here unless ``settings.verbatim``."""
    toks = normalise_latin(give_back_pauses(tokens), settings)
    n = len(toks)
    if not n:
        return [], None
    if settings.profile != "zh":  # (Cantonese is written in Traditional characters: --script applies to it too)
        return (_convert(toks, settings) if settings.script != "hans" else toks), None
    kinds = [token_kind(t.text) for t in toks]
    bounds = _word_bounds(toks, kinds, settings)
    _glue(toks, kinds, bounds)
    bounds[-1] = True
    latin_space = settings.latin_spacing == "space"
    max_w = settings.max_width
    texts = [t.text for t in toks]
    others = [0, *accumulate(kind != "cjk" for kind in kinds)]  # others[k]: tokens before k that are not Chinese
    words: list[Token] = []
    append = words.append
    i = 0
    for k in [k for k, end_here in enumerate(bounds) if end_here]:
        if i == k:
            append(toks[k])
        else:
            chinese_only = others[k + 1] == others[i]  # the common case: no separators to work out
            text = "".join(texts[i : k + 1]) if chinese_only else _join(toks, kinds, i, k, latin_space)
            if len(text) > max_w and text_width(text, "zh") > max_w:
                words.extend(_split_wide(toks, kinds, i, k, settings))
            else:
                last = toks[k]
                append(Token(text, toks[i].start_ms, last.end_ms, last.punct))
        i = k + 1
    if not settings.verbatim:
        words = grammar.drop_fillers(words, settings.pause)
    bonds = grammar.bonds(words, settings.punctuation)
    if settings.script != "hans":
        words = _convert(words, settings)
    return words, bonds


def _split_wide(
    toks: Sequence[Token], kinds: Sequence[TokenKind], i: int, j: int, settings: CueSettings
) -> list[Token]:
    """A word wider than a line, cut into pieces that fill a line each (the one place a break falls inside a word:
    names and numbers that long are rare)."""
    out: list[Token] = []
    first = i
    width = 0.0
    latin_space = settings.latin_spacing == "space"
    for k in range(i, j + 1):
        w = text_width(toks[k].text, "zh")
        if k > first and width + w > settings.max_width:
            out.append(Token(_join(toks, kinds, first, k - 1, latin_space), toks[first].start_ms, toks[k - 1].end_ms))
            first, width = k, 0.0
        width += w
    out.append(Token(_join(toks, kinds, first, j, latin_space), toks[first].start_ms, toks[j].end_ms, toks[j].punct))
    return out


def _convert(words: list[Token], settings: CueSettings) -> list[Token]:
    """Script conversion word by word, the clauses between punctuation as context (:func:`.script.convert_clauses`)."""
    texts = [w.text for w in words]
    ends = [idx + 1 for idx, word in enumerate(words) if word.punct]
    if not ends or ends[-1] != len(words):
        ends.append(len(words))
    clauses = convert_clauses([texts[first:end] for first, end in zip([0, *ends], ends, strict=False)], settings.script)
    return [
        w if t == w.text else Token(t, w.start_ms, w.end_ms, w.punct)
        for w, t in zip(words, (t for clause in clauses for t in clause), strict=True)
    ]

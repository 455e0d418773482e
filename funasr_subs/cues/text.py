"""Character classes, display widths and token joining for Chinese, English and mixed subtitles (pure code)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Literal

#: Profiles whose text is measured as East Asian text: a wide character 1, a half-width one 0.5 (Netflix's zh, ja
#: and ko guides count so).
WIDE_PROFILES = frozenset({"zh", "yue", "ja", "ko"})

TokenKind = Literal["cjk", "latin", "digit", "other"]

#: Marks that end a sentence. ``.`` counts only after a word that is not a known abbreviation.
SENTENCE_END = frozenset("。？！?!…．")
#: Marks that end a clause (FunASR closes a segment at ``，、?,`` — these are merged back when there is room).
CLAUSE_END = frozenset("，、；：,;:—")
#: Marks dropped at the end of a line and shown as one space inside one, in the ``space`` style (the Chinese
#: subtitle guides: Udacity's 格式规范 drops ，。； and mostly ：, the talk series' guide ，； — see docs/chinese.md).
SPACE_STYLE_MARKS = frozenset("，。；：")
#: Marks kept inside a line (an enumeration: 糖尿病、视网膜病变) but dropped at its end, in the ``space`` style.
LINE_END_MARKS = frozenset("、")
#: What an in-line mark becomes: a half-width space. People's files write U+0020 (2,500+ times between Chinese
#: characters in the 17 files measured) and almost never U+3000 (once); the talk series' guide asks for
#: "半個中文字寬的空格" — half a Chinese character's width.
INLINE_SPACE = " "
#: Opening marks: no space after them.
OPENING = frozenset("“‘「『（《〈【([{\"'")

_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "e.g", "i.e", "mt", "inc", "ltd"})


@lru_cache(maxsize=4096)
def is_cjk(ch: str) -> bool:
    """True for a wide letter or digit written without spaces around it (Han, kana, Hangul, full-width forms)."""
    if not ch:
        return False
    return unicodedata.east_asian_width(ch) in ("W", "F") and not is_punct(ch) and not ch.isspace()


@lru_cache(maxsize=4096)
def is_punct(ch: str) -> bool:
    """True for punctuation (Unicode category P*) and the few symbols used as punctuation."""
    return unicodedata.category(ch).startswith("P") or ch in "～~"


@lru_cache(maxsize=4096)
def char_width(ch: str, profile: str) -> float:
    """Display width of one character: en counts 1 per character; zh (and yue, ja, ko) count wide characters 1,
    half-width 0.5."""
    if profile not in WIDE_PROFILES:
        return 1.0
    eaw = unicodedata.east_asian_width(ch)
    if eaw in ("W", "F"):
        return 1.0
    if eaw == "A" and not ch.isalpha():  # “ ” … · in Chinese text are drawn full-width
        return 1.0
    return 0.5


def text_width(text: str, profile: str) -> float:
    """Display width of a string (line breaks not allowed inside)."""
    if not text:
        return 0.0
    return sum(char_width(ch, profile) for ch in text)


@lru_cache(maxsize=65536)
def token_kind(text: str) -> TokenKind:
    """How a token joins its neighbours: CJK glyphs, a Latin word, a digit group, or something else."""
    has_cjk = has_alpha = has_digit = False
    for ch in text:
        if is_cjk(ch):
            has_cjk = True
        elif ch.isdigit():
            has_digit = True
        elif ch.isalpha():
            has_alpha = True
    if has_cjk:
        return "cjk"
    if has_alpha:
        return "latin"
    if has_digit:
        return "digit"
    return "other"


def edge_kinds(text: str) -> tuple[TokenKind, TokenKind]:
    """How a word joins its neighbours on the left and on the right: a word made of several (``5个人``,
    ``OK 啊``) joins by its first and last letters or digits."""
    letters = [ch for ch in text if ch.isalnum()]
    if not letters:
        kind = token_kind(text)
        return kind, kind
    return token_kind(letters[0]), token_kind(letters[-1])


def separator(prev_kind: TokenKind, prev_punct: str, kind: TokenKind, *, latin_space: bool = True) -> str:
    """The text between two tokens: a space between English words, none between CJK characters and digits; between
    Chinese and an English word a space when ``latin_space`` (digits sit next to Chinese without one)."""
    if prev_punct:
        last = prev_punct[-1]
        if last in OPENING:
            return ""
        if char_width(last, "zh") == 0.5 and kind != "other":  # "Hello, world" — half-width marks take a space
            return " "
        return ""
    if kind == "other" or prev_kind == "other":
        return ""
    if prev_kind == "cjk" and kind == "cjk":
        return ""
    if "cjk" in (prev_kind, kind):
        # digit groups sit next to CJK without a space ("2024年"); English words keep spaces around them
        return " " if latin_space and "digit" not in (prev_kind, kind) else ""
    return " "  # latin/digit next to latin/digit


def ends_sentence(token_text: str, punct: str) -> bool:
    """True when ``punct`` closes a sentence (``。？！?!…``, or ``.`` after a word that is not an abbreviation)."""
    if not punct:
        return False
    for ch in punct:
        if ch in SENTENCE_END:
            return True
    return "." in punct and token_text.lower().rstrip(".") not in _ABBREVIATIONS


def letter_count(text: str) -> int:
    """Characters that carry speech: letters, digits and CJK characters (no punctuation, no spaces)."""
    return sum(1 for ch in text if ch.isalnum())


def reading_length(text: str, profile: str) -> float:
    """Characters a viewer reads, for characters-per-second: zh counts width without punctuation and spaces
    (half-width 0.5); en counts every character but line breaks, as the Netflix English guide does."""
    if profile in WIDE_PROFILES:
        return sum(char_width(ch, "zh") for ch in text if not ch.isspace() and not is_punct(ch))
    return float(sum(1 for ch in text if ch != "\n"))


def apply_punctuation_style(punct: str, style: str, line_end: bool) -> str:
    """The punctuation shown after a token. ``keep`` shows everything; ``space`` (the Chinese convention, the
    default) drops ``，。；：、`` at the end of a line and shows ``，。；：`` as one half-width space inside a line
    (after closing quotes, before opening ones; ``、`` stays inside a line); ``？！…《》“”`` stay."""
    if style != "space" or not punct:
        return punct
    if line_end:
        if not any(ch in SPACE_STYLE_MARKS or ch in LINE_END_MARKS for ch in punct):
            return punct
        return "".join(ch for ch in punct if ch not in SPACE_STYLE_MARKS and ch not in LINE_END_MARKS)
    if not any(ch in SPACE_STYLE_MARKS for ch in punct):
        return punct
    rest = "".join(ch for ch in punct if ch not in SPACE_STYLE_MARKS)
    k = len(rest)
    while k and rest[k - 1] in OPENING:
        k -= 1
    if k and rest[k - 1] == INLINE_SPACE:
        return rest
    return rest[:k] + INLINE_SPACE + rest[k:]

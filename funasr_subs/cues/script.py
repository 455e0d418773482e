"""Simplified → Traditional Chinese for the display text: OpenCC, one engine word at a time.

FunASR writes Simplified Chinese. ``--script`` picks what viewers read: ``hans`` (as FunASR sends it), ``hant``
(OpenCC ``s2t``), ``tw`` (``s2twp``: Taiwan spelling and Taiwan phrases, e.g. 软件 → 軟體) or ``hk`` (``s2hkp``:
Hong Kong spelling and Hong Kong phrases, e.g. 硬盘 → 硬碟). The ``opencc`` package wraps the OpenCC C++ library with
its dictionaries, so nothing is downloaded; a converter is built once per process and configuration.

OpenCC cuts what it is given into its own phrases by longest match, so a clause given whole can convert a "phrase"
that spans two words: ``出来了然后`` became ``出來瞭然後`` (了然), ``负责人参加`` became ``負責人蔘加`` (人参). The
cue engine's words (rjieba's, :mod:`.words`) therefore go to OpenCC one at a time (:func:`convert_clauses`); every
phrase inside one word still converts as a phrase (``程序员`` → ``程式設計師``). Two neighbouring words that OpenCC
knows as one phrase from the first word's start to the second one's end (``比特`` + ``币`` → ``比特幣``, where
the word alone is Taiwan's ``位元``; ``这`` + ``只`` → ``這隻``) are converted together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

Script = Literal["hans", "hant", "tw", "hk"]
SCRIPTS: tuple[Script, ...] = ("hans", "hant", "tw", "hk")
#: The OpenCC configuration for each script (hans: none, the text stays as FunASR wrote it). ``s2hkp`` (Hong Kong
#: phrases) is in OpenCC 1.4 and later.
OPENCC_CONFIG: dict[Script, str] = {"hant": "s2t", "tw": "s2twp", "hk": "s2hkp"}
#: Regional words OpenCC 1.4.2 leaves in the mainland form, replaced in its output word by word: Taiwan writes
#: 行銷 for marketing (OpenCC's Taiwan phrases hold only 市场营销 → 市場行銷).
REGIONAL: dict[Script, tuple[tuple[str, str], ...]] = {"tw": (("營銷", "行銷"),)}
#: The language tag a file gets for each script unless ``--lang`` says otherwise (BCP 47, as players read it).
LANG_TAG: dict[Script, str] = {"hans": "zh", "hant": "zh-Hant", "tw": "zh-TW", "hk": "zh-HK"}

_LOCK = threading.Lock()
_CONVERTERS: dict[str, Any] = {}


def opencc_converter(config: str) -> Any:
    """The process's one OpenCC converter for ``config`` (s2t, t2s, ...), built on first use (the one place
    converters are made: --script here, Traditional -> Simplified in funasr_subs/sync)."""
    conv = _CONVERTERS.get(config)
    if conv is None:
        with _LOCK:
            conv = _CONVERTERS.get(config)
            if conv is None:
                import opencc

                conv = _CONVERTERS[config] = opencc.OpenCC(config)
    return conv


def to_simplified(text: str) -> str:
    """``text`` in Simplified Chinese (OpenCC ``t2s``): how sync compares a Traditional subtitle with FunASR's text."""
    return str(opencc_converter("t2s").convert(text)) if text else text


def _opencc(text: str, script: Script) -> str:
    """OpenCC's conversion of ``text`` as one piece (its own longest-match phrases)."""
    return str(opencc_converter(OPENCC_CONFIG[script]).convert(text)) if text else text


def _opencc_each(texts: Sequence[str], script: Script) -> list[str]:
    """:func:`_opencc` of each text, in one call: joined by line feeds, which no OpenCC phrase holds (a call costs
    more than the converting of a word; 10 hours of speech are ~100,000 words)."""
    converted = _opencc("\n".join(texts), script).split("\n")
    if len(converted) != len(texts):  # a text held a line feed of its own
        return [_opencc(text, script) for text in texts]
    return converted


def convert(text: str, script: Script) -> str:
    """``text``, one word, in ``script`` (unchanged for ``hans``)."""
    if script == "hans" or not text:
        return text
    return convert_clauses([[text]], script)[0][0]


def convert_clauses(clauses: Sequence[Sequence[str]], script: Script) -> list[list[str]]:
    """The words of each clause in ``script``: one word at a time, so no OpenCC phrase spans two words, except two
    neighbours that OpenCC converts as one phrase beginning and ending with them (see the module docstring)."""
    if script == "hans":
        return [list(words) for words in clauses]
    distinct = list(dict.fromkeys(word for words in clauses for word in words))
    by_word = dict(zip(distinct, _opencc_each(distinct, script), strict=True))
    wholes = _opencc_each(["".join(words) for words in clauses], script)
    regional = REGIONAL.get(script, ())
    out: list[list[str]] = []
    for words, whole in zip(clauses, wholes, strict=True):
        converted = [by_word[word] for word in words]
        joined = "".join(converted)
        if whole != joined and len(words) > 1:  # something in the clause spans words: which may
            _join_whole_word_phrases(words, converted, script)
            joined = "".join(converted)
        for mainland, local in regional:
            if mainland in joined:
                converted = [text.replace(mainland, local) for text in converted]
        out.append(converted)
    return out


def _join_whole_word_phrases(words: Sequence[str], out: list[str], script: Script) -> None:
    """Converts together, in ``out``, each pair of neighbouring words that OpenCC converts differently as a pair,
    when the phrase that does it needs the first word's first character and the second word's last one (a phrase
    starting or ending inside a word is the kind that crosses words by accident: 了然 in 出来了|然后). Only pairs
    that keep the length, so each word gets its own characters back."""
    k = 0
    while k < len(words) - 1:
        first, second = words[k], words[k + 1]
        pair = _opencc(first + second, script)
        if (
            pair != out[k] + out[k + 1]
            and len(pair) == len(first) + len(second)
            and len(out[k]) == len(first)
            and (len(first) == 1 or _opencc(first[1:] + second, script) == _opencc(first[1:], script) + out[k + 1])
            and (len(second) == 1 or _opencc(first + second[:-1], script) == out[k] + _opencc(second[:-1], script))
        ):
            out[k], out[k + 1] = pair[: len(first)], pair[len(first) :]
            k += 2
        else:
            k += 1


def map_pieces(pieces: Sequence[str], change: Callable[[str], str]) -> list[str]:
    """Each piece changed with the context of the whole: the joined text is changed at once (phrases that cross
    pieces convert as phrases); when that changes the length, each piece is changed on its own."""
    if not pieces:
        return []
    whole = change("".join(pieces))
    if len(whole) != sum(len(p) for p in pieces):
        return [change(p) for p in pieces]
    out: list[str] = []
    pos = 0
    for piece in pieces:
        out.append(whole[pos : pos + len(piece)])
        pos += len(piece)
    return out

"""Simplified → Traditional Chinese for the display text, with OpenCC's phrase-level conversion.

FunASR writes Simplified Chinese. ``--script`` picks what viewers read: ``hans`` (as FunASR sends it), ``hant``
(OpenCC ``s2t``), ``tw`` (``s2twp``: Taiwan spelling and Taiwan phrases, e.g. 软件 → 軟體) or ``hk`` (``s2hk``).
The ``opencc`` package wraps the OpenCC C++ library with its dictionaries, so nothing is downloaded; a converter is
built once per process and script.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

Script = Literal["hans", "hant", "tw", "hk"]
SCRIPTS: tuple[Script, ...] = ("hans", "hant", "tw", "hk")
#: The OpenCC configuration for each script (hans: none, the text stays as FunASR wrote it).
OPENCC_CONFIG: dict[Script, str] = {"hant": "s2t", "tw": "s2twp", "hk": "s2hk"}
#: The language tag a file gets for each script unless ``--lang`` says otherwise (BCP 47, as players read it).
LANG_TAG: dict[Script, str] = {"hans": "zh", "hant": "zh-Hant", "tw": "zh-TW", "hk": "zh-HK"}

_LOCK = threading.Lock()
_CONVERTERS: dict[str, Any] = {}


def _converter(script: Script) -> Any:
    return opencc_converter(OPENCC_CONFIG[script])


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


def convert(text: str, script: Script) -> str:
    """``text`` in ``script`` (unchanged for ``hans``)."""
    if script == "hans" or not text:
        return text
    return str(_converter(script).convert(text))


def convert_pieces(pieces: Sequence[str], script: Script) -> list[str]:
    """Each piece in ``script``, converted with the context of the whole (see :func:`map_pieces`)."""
    if script == "hans":
        return list(pieces)
    return map_pieces(pieces, lambda text: convert(text, script))


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

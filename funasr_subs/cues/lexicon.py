"""Chinese word segmentation for line breaking: jieba's dictionary (rjieba) plus the user's own words.

FunASR sends one token per Chinese character and no word boundaries. The cue engine asks this module where the
words are, so a line or a cue never breaks inside one. rjieba (the Rust port of jieba) was chosen over jieba
because it ships its dictionary, needs no model download, loads in ~0.2 s and cuts ~8 million characters a second;
it is loaded once per process, on first use (or ahead, while the server works: :mod:`funasr_subs.warmup`).

The user's words (hotwords and ``--words``) are never split: they are found first, longest first, and only the
text between them goes to jieba. No word is added to jieba's shared dictionary, so the words of one folder never
leak into another's subtitles in a long-running daemon.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_JIEBA: Any = None
#: Seconds the dictionary took to load (0.0 until it is loaded); the benchmark reports it.
load_seconds = 0.0


def _jieba() -> Any:
    """The process's one jieba instance (thread-safe lazy load)."""
    global _JIEBA, load_seconds
    if _JIEBA is None:
        with _LOCK:
            if _JIEBA is None:
                began = time.perf_counter()
                # importing rjieba builds its default instance (the whole dictionary): that one is used, as a
                # second Jieba() would load the dictionary again (~0.1 s and ~25 MB). Nothing here adds words to it.
                import rjieba

                _JIEBA = rjieba._DEFAULT_JIEBA
                load_seconds = time.perf_counter() - began
                log.debug("jieba dictionary loaded in %.2f s", load_seconds)
    return _JIEBA


def load() -> None:
    """Load the dictionary now, if it is not loaded yet (thread-safe; see :mod:`funasr_subs.warmup`)."""
    _jieba()


@lru_cache(maxsize=64)
def _user_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regular expression matching any of the user's words of two or more characters, longest first."""
    useful = sorted({w for w in words if len(w) > 1}, key=len, reverse=True)
    if not useful:
        return None
    return re.compile("|".join(re.escape(w) for w in useful), re.IGNORECASE)


def cut(text: str, user_words: tuple[str, ...] = ()) -> list[str]:
    """``text`` cut into words; ``"".join(result) == text``. The user's words come out whole."""
    if not text:
        return []
    jieba = _jieba()
    pattern = _user_pattern(user_words)
    if pattern is None:
        return list(jieba.cut(text, True))
    out: list[str] = []
    pos = 0
    for match in pattern.finditer(text):
        if match.start() > pos:
            out.extend(jieba.cut(text[pos : match.start()], True))
        out.append(match.group())
        pos = match.end()
    if pos < len(text):
        out.extend(jieba.cut(text[pos:], True))
    return out


def normalise_words(words: Iterable[str]) -> tuple[str, ...]:
    """The user's words as the engine keeps them: stripped, non-empty, each once, in a stable order."""
    return tuple(sorted({w.strip() for w in words if w and w.strip()}))


def tag(word: str) -> list[tuple[str, str]]:
    """The pieces of ``word`` with jieba's part-of-speech tags (``认知的`` → ``[("认知", "v"), ("的", "uj")]``)."""
    return [(w, t) for w, t in _jieba().tag(word, True)] if word else []

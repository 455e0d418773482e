"""Hotwords: the seed's ``hotwords.txt`` form (one ``word weight`` per line) and the wire form (a JSON string).

FunASR's advice for its hotword model: weights 1-100, at most 10 characters a word, at most 1,000 words. A weight
outside that (or not written as plain ASCII digits: ``٢٠``, ``1_0``, ``inf``) is refused with the source named;
longer words are left out and a longer list is cut, each with a warning saying so.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from funasr_subs.errors import ConfigError
from funasr_subs.names import echo
from funasr_subs.safeio import read_regular_text

log = logging.getLogger(__name__)

MIN_WEIGHT, MAX_WEIGHT = 1, 100
MAX_WORD_CHARS = 10
MAX_WORDS = 1000
#: A hotwords file bigger than this is refused (a million words is ~15 MB; the 1,000 used need ~40 KB).
MAX_FILE_BYTES = 64 * 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)


def check_weight(word: str, weight: Any, source: str) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise ConfigError(
            f"{source}: weight {echo(weight)} of hotword {echo(word)} must be a whole number {MIN_WEIGHT}-{MAX_WEIGHT}"
        )


def parse_weight(word: str, weight: Any, source: str, where: str = "") -> int:
    """A weight from TOML (an int) or text (ASCII digits only): ConfigError naming ``source`` otherwise."""
    if isinstance(weight, str) and _DIGITS.fullmatch(weight.strip()):
        value: Any = int(weight.strip())
    elif isinstance(weight, int) and not isinstance(weight, bool):
        value = weight
    else:
        value = weight
    check_weight(word, value, f"{source}{where}")
    return int(value)


def parse_hotwords(text: str, source: str) -> dict[str, int]:
    """Parse ``word weight`` lines; blank lines and ``#`` comments are skipped. Errors name source and line."""
    words: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        word, _, weight = line.rpartition(" ")
        if not word.strip():
            # tabs are common too
            word, _, weight = line.rpartition("\t")
        word = word.strip()
        if not word:
            raise ConfigError(f"{source}, line {number}: {echo(line)} must be 'word weight' (e.g. 达摩院 20)")
        words[word] = parse_weight(word, weight, source, f", line {number}")
    return words


def _read_text(path: Path, what: str, flag: str) -> str:
    try:
        return read_regular_text(path, MAX_FILE_BYTES)  # a regular file only: a named pipe is refused, not waited on
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist: check the {flag} path") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc.strerror}") from None


def load_hotwords_file(path: Path) -> dict[str, int]:
    """Read and parse a hotwords file (UTF-8, a regular file: a named pipe is refused, not waited on)."""
    return parse_hotwords(_read_text(path, "hotwords", "--hotwords"), str(path))


def parse_words(text: str) -> tuple[str, ...]:
    """A user dictionary: one word (or name) a line; blank lines and ``#`` comments are skipped."""
    words = (line.strip().lstrip("\ufeff").strip() for line in text.splitlines())
    return tuple(w for w in words if w and not w.startswith("#"))


def load_words_file(path: Path) -> tuple[str, ...]:
    """Read a user dictionary (``--words FILE``, UTF-8)."""
    return parse_words(_read_text(path, "words", "--words"))


def fit_hotwords(words: Mapping[str, int], source: str) -> dict[str, int]:
    """``words`` within FunASR's limits, with a warning for each thing left out (say where they came from)."""
    long = [w for w in words if len(w) > MAX_WORD_CHARS]
    if long:
        shown = ", ".join(echo(w, 20) for w in long[:3]) + (" ..." if len(long) > 3 else "")
        log.warning(
            "warning: %s: %d hotword(s) longer than %d characters left out (FunASR's limit): %s",
            source,
            len(long),
            MAX_WORD_CHARS,
            shown,
        )
    kept = {w: v for w, v in words.items() if len(w) <= MAX_WORD_CHARS}
    if len(kept) > MAX_WORDS:
        log.warning(
            "warning: %s: %d hotwords; only the first %d are sent (FunASR's limit): shorten the list",
            source,
            len(kept),
            MAX_WORDS,
        )
        kept = dict(list(kept.items())[:MAX_WORDS])
    return kept


def hotwords_wire(words: Mapping[str, int]) -> str:
    """The first message's ``hotwords`` value: a JSON *string* of an object with integer weights (FunASR #2805).
    The limits hold here too (silently: the loaders above warned)."""
    fitted = [(str(k), int(v)) for k, v in words.items() if len(str(k)) <= MAX_WORD_CHARS][:MAX_WORDS]
    return json.dumps(dict(fitted), ensure_ascii=False)

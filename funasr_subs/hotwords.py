"""Hotwords: the seed's ``hotwords.txt`` form (one ``word weight`` per line) and the wire form (a JSON string)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from funasr_subs.errors import ConfigError


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
            raise ConfigError(f"{source}, line {number}: {line!r} must be 'word weight' (e.g. 达摩院 20)")
        try:
            value = int(weight)
        except ValueError:
            raise ConfigError(
                f"{source}, line {number}: weight {weight!r} of {word!r} must be a whole number (1-100)"
            ) from None
        words[word] = value
    return words


def _read_text(path: Path, what: str, flag: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist: check the {flag} path") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc.strerror}") from None


def load_hotwords_file(path: Path) -> dict[str, int]:
    """Read and parse a hotwords file (UTF-8)."""
    return parse_hotwords(_read_text(path, "hotwords", "--hotwords"), str(path))


def parse_words(text: str) -> tuple[str, ...]:
    """A user dictionary: one word (or name) a line; blank lines and ``#`` comments are skipped."""
    words = (line.strip().lstrip("\ufeff").strip() for line in text.splitlines())
    return tuple(w for w in words if w and not w.startswith("#"))


def load_words_file(path: Path) -> tuple[str, ...]:
    """Read a user dictionary (``--words FILE``, UTF-8)."""
    return parse_words(_read_text(path, "words", "--words"))


def hotwords_wire(words: Mapping[str, int]) -> str:
    """The first message's ``hotwords`` value: a JSON *string* of an object with integer weights (FunASR #2805)."""
    return json.dumps({str(k): int(v) for k, v in words.items()}, ensure_ascii=False)

"""A server as the user writes it: ``ws(s)://host:port`` or ``http(s)://host:port``, optionally ``#slots=N`` (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from funasr_subs.errors import ConfigError

#: FunASR servers hang under unbounded concurrency (FunASR #2180, #2013): one request at a time unless told.
DEFAULT_SLOTS = 1
MAX_SLOTS = 64
_DIGITS = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str  # without the ``#slots=N`` fragment
    slots: int = DEFAULT_SLOTS

    def __str__(self) -> str:
        return self.url if self.slots == DEFAULT_SLOTS else f"{self.url}#slots={self.slots}"


def parse_endpoint(text: str) -> Endpoint:
    """``ws://gpu1:10095#slots=4`` → Endpoint; ConfigError saying what to write instead."""
    text = str(text).strip()
    url, _, fragment = text.partition("#")
    if not url.startswith(("ws://", "wss://", "http://", "https://")):
        raise ConfigError(
            f"server URL {text!r} must start with ws:// or wss:// (FunASR's C++ server), or http:// or https:// "
            "(funasr-server)"
        )
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises ValueError unless it is a number in 0-65535
    except ValueError as exc:
        raise ConfigError(f"server URL {text!r} is not usable ({exc}): use ws://host:port") from None
    if not host:
        raise ConfigError(f"server URL {text!r} names no host: use ws://host:port")
    slots = DEFAULT_SLOTS
    if fragment:
        key, _, value = fragment.partition("=")
        value = value.strip()
        # ASCII digits only: str.isdigit() takes '²' (int() then fails) and int() takes '٣'
        if key.strip() != "slots" or not _DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_SLOTS:
            raise ConfigError(
                f"server URL {text!r}: after '#' only slots=N (1-{MAX_SLOTS}) is understood, e.g. ws://gpu1:10095#slots=4"
            )
        slots = int(value)
    return Endpoint(url, slots)


def parse_endpoints(texts: tuple[str, ...] | list[str]) -> tuple[Endpoint, ...]:
    """Several servers; the same URL twice is one server (its slots: the larger)."""
    found: dict[str, Endpoint] = {}
    for text in texts:
        ep = parse_endpoint(text)
        old = found.get(ep.url)
        found[ep.url] = ep if old is None or ep.slots > old.slots else old
    return tuple(found.values())

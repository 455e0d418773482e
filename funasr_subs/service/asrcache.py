"""Finished ``/asr`` results kept for a while, keyed by the audio's hash and the settings that shape them.

Bazarr's read timeout (3600 s by default) can end a request before a long film is done; its next search uploads
the same audio again. The service stops a job whose client went away, but a job that did finish is kept here, so
the retry is answered at once instead of starting from zero.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from funasr_subs.config import Settings
from funasr_subs.service.asr import Recognised

TTL_SECONDS = 12 * 3600.0
MAX_ENTRIES = 32


def cache_key(audio_sha256: str, settings: Settings, *, raw_pcm: bool) -> str:
    """The audio's hash plus every setting (server, model language, hotwords...) and how the audio was sent."""
    shaping = hashlib.sha256(repr(settings).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{audio_sha256}:{shaping}:{'pcm' if raw_pcm else 'media'}"


class ResultCache:
    """A small LRU of recognition results with an expiry; safe to use from several threads."""

    def __init__(
        self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, Recognised]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Recognised | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            expires, result = found
            if expires <= self.clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return result

    def put(self, key: str, result: Recognised) -> None:
        with self._lock:
            self._items[key] = (self.clock() + self.ttl, result)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

"""Built-in ``library-refresh`` action: after subtitles are written, ask Jellyfin/Emby/Plex to pick them up.

The plugin object only; the calls are in :mod:`funasr_subs.service.refresh`, imported (with aiohttp) the first time
a refresh is configured, so that every job that has none does not pay for loading an HTTP client.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from funasr_subs.errors import FunasrSubsError

if TYPE_CHECKING:
    from funasr_subs.model import Result
    from funasr_subs.service.config import ServiceConfig

log = logging.getLogger(__name__)


class LibraryRefresh:
    """The plugin object (``funasr_subs.plugins`` entry point ``library-refresh``); reads ``[serve]`` once."""

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self._config = config
        self._loaded = config is not None
        self._lock = threading.Lock()

    def config(self) -> ServiceConfig | None:
        with self._lock:
            if not self._loaded:
                self._loaded = True
                from funasr_subs.config import Settings
                from funasr_subs.service.config import load_service_config

                try:
                    self._config = load_service_config(Settings(), environ=os.environ)
                except FunasrSubsError as exc:
                    log.warning("library refresh disabled: %s", exc)
        return self._config

    def on_subtitle_written(self, result: Result) -> None:
        config = self.config()
        if config is None or not config.refresh_library or not result.written:
            return
        if not (config.jellyfin_url or config.emby_url or config.plex_url):
            return
        import asyncio

        from funasr_subs.service.refresh import refresh_all

        asyncio.run(refresh_all(config, str(result.media)))

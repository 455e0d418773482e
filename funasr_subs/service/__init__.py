"""The HTTP service: Bazarr's whisper-asr-webservice contract, media-server webhooks, health and status."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from funasr_subs.service.app import ServiceHandle, start_service
    from funasr_subs.service.config import ServiceConfig, load_service_config

__all__ = ["ServiceConfig", "ServiceHandle", "load_service_config", "start_service"]

_HOMES = {
    "ServiceHandle": "funasr_subs.service.app",
    "start_service": "funasr_subs.service.app",
    "ServiceConfig": "funasr_subs.service.config",
    "load_service_config": "funasr_subs.service.config",
}


def __getattr__(name: str) -> Any:
    """Import lazily: the ``hook`` command needs the config and path checks, not the HTTP server."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

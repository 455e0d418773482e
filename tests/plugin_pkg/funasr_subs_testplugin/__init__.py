"""A plugin that records every event in ``EVENTS`` and, if ``$FUNASR_SUBS_TESTPLUGIN_EVENTS`` is set, in that file.

The file (JSON lines) is how a test sees the events of the ``funasr-subs`` command run as a subprocess.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

EVENTS: list[dict[str, Any]] = []
IMPORTS = 1  # this module body runs once per process when plugins are loaded once
INSTANCES: list[ClassRecorder] = []
_lock = threading.Lock()


def _record(event: dict[str, Any]) -> None:
    with _lock:
        EVENTS.append(event)
        target = os.environ.get("FUNASR_SUBS_TESTPLUGIN_EVENTS")
        if target:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(event, ensure_ascii=False) + "\n")


def on_subtitle_written(result: Any) -> None:
    _record(
        {
            "plugin": "recorder",
            "event": "written",
            "media": str(result.media),
            "written": [str(p) for p in result.written],
            "cues": len(result.cues),
        }
    )


def on_failure(media_path: Path, error: BaseException) -> None:
    _record({"plugin": "recorder", "event": "failed", "media": str(media_path), "error": type(error).__name__})


class ClassRecorder:
    """A class entry point: funasr-subs instantiates it once with no arguments."""

    def __init__(self) -> None:
        INSTANCES.append(self)

    def on_subtitle_written(self, result: Any) -> None:
        _record({"plugin": "recorder_class", "event": "written", "media": str(result.media)})

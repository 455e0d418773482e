"""How fast each server recognises, measured on earlier files and kept in the state folder, for progress estimates.

After the upload, the server works for a while before it replies (FunASR: roughly audio length / 30 on a CPU); the
progress display shows that wait as its own stage with an estimate taken from here. The book is a small JSON file
(``<state folder>/server-speed.json``: server URL → audio seconds recognised per second of waiting). It only ever
feeds an estimate: a missing, unreadable or clashing write is ignored (last writer wins).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from funasr_subs.config import default_state_dir

log = logging.getLogger(__name__)

FILE_NAME = "server-speed.json"
#: Files shorter than this say more about latency than about speed: they are not recorded.
MIN_AUDIO_S = 5.0
#: Weight of the newest measurement in the running average.
WEIGHT = 0.5
_folder: Path | None = None


def use_folder(folder: Path | None) -> None:
    """Keep the book in ``folder`` (the watch daemon's --state-dir) instead of the default state folder."""
    global _folder
    _folder = folder


def book_path() -> Path:
    return (_folder or default_state_dir()) / FILE_NAME


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def speed(server: str) -> float | None:
    """Audio seconds the server recognises per second of waiting, or None when it has not been measured yet."""
    entry = _load(book_path()).get(server)
    value = entry.get("speed") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def estimate_s(server: str, audio_ms: int) -> float | None:
    """Seconds the server will probably work on ``audio_ms`` of audio after the upload (None: no measurement)."""
    measured = speed(server)
    return audio_ms / 1000 / measured if measured and audio_ms > 0 else None


def record(server: str, audio_ms: int, wait_s: float) -> None:
    """Fold one measurement (``wait_s`` from the end of the upload to the reply) into the book."""
    audio_s = audio_ms / 1000
    if audio_s < MIN_AUDIO_S or wait_s <= 0:
        return
    path = book_path()
    data = _load(path)
    old = data.get(server) if isinstance(data.get(server), dict) else {}
    new = audio_s / wait_s
    previous = old.get("speed") if isinstance(old, dict) else None
    if isinstance(previous, int | float) and previous > 0:
        new = WEIGHT * new + (1 - WEIGHT) * previous
    count = int(old.get("files", 0)) + 1 if isinstance(old, dict) else 1
    data[server] = {"speed": round(new, 3), "files": count}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".server-speed.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.debug("server speed not recorded in %s: %s", path, exc)

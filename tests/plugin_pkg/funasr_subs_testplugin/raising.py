"""A plugin whose hooks raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def on_subtitle_written(result: Any) -> None:
    raise RuntimeError("chat server unreachable")


def on_failure(media_path: Path, error: BaseException) -> None:
    raise ValueError("bad plugin config")

"""The sidecar ``<stem>.funasr.json``: the raw reply plus what rebuilding the subtitles needs, and ownership."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from funasr_subs._version import __version__
from funasr_subs.errors import BadInputError
from funasr_subs.writers import file_digest

SUFFIX = ".funasr.json"
FORMAT_VERSION = 1
_KEEP_DIGESTS = 5


@dataclass(frozen=True)
class Sidecar:
    reply: dict[str, Any]
    offset_ms: int = 0
    duration_ms: int = 0
    media_name: str = ""
    media_size: int = -1
    media_mtime_ns: int = -1
    settings: dict[str, Any] = field(default_factory=dict)
    audio: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)  # file name → digests of versions we wrote
    version: str = ""
    created: str = ""

    def to_json(self) -> str:
        data = {
            "format": FORMAT_VERSION,
            "tool": "funasr-subs",
            "version": self.version or __version__,
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "media": {"name": self.media_name, "size": self.media_size, "mtime_ns": self.media_mtime_ns},
            "audio": {**self.audio, "offset_ms": self.offset_ms, "duration_ms": self.duration_ms},
            "settings": self.settings,
            "outputs": self.outputs,
            "reply": self.reply,
        }
        return json.dumps(data, ensure_ascii=False, indent=1) + "\n"

    def matches(self, media: Path) -> bool:
        """True when ``media`` still has the size and mtime recorded here."""
        try:
            st = media.stat()
        except OSError:
            return False
        return st.st_size == self.media_size and st.st_mtime_ns == self.media_mtime_ns

    def wrote(self, path: Path) -> bool:
        """True when ``path`` holds exactly a version of a subtitle this tool wrote.

        ``outputs`` names files beside the sidecar by name, files elsewhere (``retime -o``) by absolute path.
        """
        digests = [*self.outputs.get(path.name, ()), *self.outputs.get(str(path.resolve()), ())]
        return bool(digests) and file_digest(path) in digests


def sidecar_path_for(media: Path, output_dir: Path | None = None) -> Path:
    folder = output_dir if output_dir is not None else media.parent
    return folder / f"{media.stem}{SUFFIX}"


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def media_stamp(media: Path) -> tuple[int, int]:
    st = os.stat(media)
    return st.st_size, st.st_mtime_ns


def merged_outputs(previous: Sidecar | None, new: Mapping[str, str]) -> dict[str, list[str]]:
    """New digests first, earlier ones kept (a crash between sidecar and subtitle must not orphan our file)."""
    out: dict[str, list[str]] = {}
    old = previous.outputs if previous is not None else {}
    for name, digest in new.items():
        history = [digest] + [d for d in old.get(name, []) if d != digest]
        out[name] = history[:_KEEP_DIGESTS]
    for name, digests in old.items():
        out.setdefault(name, list(digests))
    return out


def sidecar_from_dict(data: Mapping[str, Any], source: str) -> Sidecar:
    if "reply" not in data or not isinstance(data["reply"], dict):
        raise BadInputError(f"{source} is not a funasr-subs sidecar (no 'reply')")
    try:  # a hand-edited or damaged file: wrong types anywhere
        media = data.get("media") or {}
        audio = dict(data.get("audio") or {})
        outputs = {str(k): [str(d) for d in v] for k, v in (data.get("outputs") or {}).items() if isinstance(v, list)}
        return Sidecar(
            reply=data["reply"],
            offset_ms=int(audio.pop("offset_ms", 0) or 0),
            duration_ms=int(audio.pop("duration_ms", 0) or 0),
            media_name=str(media.get("name") or ""),
            media_size=int(media.get("size", -1)),
            media_mtime_ns=int(media.get("mtime_ns", -1)),
            settings=dict(data.get("settings") or {}),
            audio=audio,
            outputs=outputs,
            version=str(data.get("version") or ""),
            created=str(data.get("created") or ""),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise BadInputError(f"{source} is a damaged funasr-subs sidecar ({exc})") from None


def read_sidecar(path: Path) -> Sidecar:
    """Load a sidecar; BadInputError naming the file when it is missing or not ours."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError("no sidecar found: transcribe the media first", path=path) from None
    except (OSError, ValueError) as exc:
        raise BadInputError(f"sidecar cannot be read ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise BadInputError("not a funasr-subs sidecar", path=path)
    return sidecar_from_dict(data, str(path))


def try_read_sidecar(path: Path) -> Sidecar | None:
    try:
        return read_sidecar(path)
    except BadInputError:
        return None

"""The sidecar ``<stem>.funasr.json``: the raw reply plus what rebuilding the subtitles needs, and ownership."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from funasr_subs._version import __version__
from funasr_subs.errors import BadInputError
from funasr_subs.media.activity import Speech, speech_from_json, speech_to_json
from funasr_subs.names import json_text
from funasr_subs.protocol import strict_json
from funasr_subs.recognition.lost import Recovery, recovery_from_json, recovery_to_json
from funasr_subs.safeio import read_regular_text
from funasr_subs.writers import file_digest

log = logging.getLogger(__name__)

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
    speech: Speech | None = None  # where speech was heard in the audio (media timeline); None: not listened
    recovery: Recovery | None = None  # lost stretches sent again and what stays lost (media timeline); None: none
    #: The reply as JSON text when it was read as such (``id(reply)``, text): written again as it was, not encoded
    #: anew (0.1 s for 10 hours). Tied to the very dict: a sidecar given another reply (``replace``) encodes that.
    reply_text: tuple[int, str] | None = field(default=None, compare=False, repr=False)

    def with_reply_text(self, text: str) -> Sidecar:
        """This sidecar, knowing that ``text`` is its reply as JSON (the caller parsed it into ``reply``)."""
        return replace(self, reply_text=(id(self.reply), text))

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
        }
        if self.speech is not None:
            data["speech"] = speech_to_json(self.speech)
        if self.recovery is not None:
            data["recovery"] = recovery_to_json(self.recovery)
        # one line per field for a person reading it; the reply (10 hours: 9 MB) on one line, which json's C encoder
        # writes in 0.08 s where an indented dump (the pure-Python encoder) takes 0.4 s
        head = json.dumps(data, ensure_ascii=False, indent=1)
        known = self.reply_text
        reply = (
            known[1] if known is not None and known[0] == id(self.reply) else json.dumps(self.reply, ensure_ascii=False)
        )
        return json_text(f'{head[: head.rindex("}")].rstrip()},\n "reply": {reply}\n}}') + "\n"  # any name, losslessly

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
        real = os.path.realpath(path)  # not Path.resolve(): a symlink loop must not raise
        digests = [*self.outputs.get(path.name, ()), *self.outputs.get(real, ())]
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


#: A sidecar bigger than this is not ours (a reply is ~0.6 MB per hour of speech).
MAX_SIDECAR_BYTES = 64 * 1024 * 1024


def _whole(value: Any, default: int) -> int:
    """An integer field: an int, or a float holding a whole finite number; ValueError for NaN, 1e400, "x"..."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{value!r} is not a whole finite number")
        return int(value)
    if isinstance(value, int):
        return value
    raise ValueError(f"{value!r} is not a number")


def bare_name(name: str) -> bool:
    """True for a plain file name: no folder part, not ``.``/``..``, no NUL (names from a sidecar must be these)."""
    separators = {"/", os.sep, os.altsep or "/", "\0"}
    return bool(name) and not any(sep in name for sep in separators) and name not in (".", "..")


def parse_json(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and turns runaway nesting into ValueError (see strict_json); a
    ``1e400`` reads as infinity, for the field checks to name (a bad recorded setting is only ignored)."""
    return strict_json(text, overflow=True)


def sidecar_from_dict(data: Mapping[str, Any], source: str) -> Sidecar:
    if "reply" not in data or not isinstance(data["reply"], dict):
        raise BadInputError(f"{source} is not a funasr-subs sidecar (no 'reply')")
    try:  # a hand-edited or damaged file: wrong types anywhere
        media = data.get("media") or {}
        audio = dict(data.get("audio") or {})
        outputs = {
            str(k): [str(d) for d in v]
            for k, v in (data.get("outputs") or {}).items()
            if isinstance(v, list) and (bare_name(str(k)) or os.path.isabs(str(k)))  # never "../x"
        }
        name = str(media.get("name") or "")
        if name and not bare_name(name):
            raise ValueError(f"media name {name!r} is not a file name in the sidecar's folder")
        offset_ms, duration_ms = _whole(audio.pop("offset_ms", 0), 0), _whole(audio.pop("duration_ms", 0), 0)
        # offset_ms may be slightly negative: --send mp4 moves the reply back by the encoder's priming (mp4head)
        if not (-10_000 <= offset_ms <= 86_400_000 and 0 <= duration_ms <= 86_400_000 * 7):
            raise ValueError(f"offset_ms {offset_ms} or duration_ms {duration_ms} is out of range")
        return Sidecar(
            reply=data["reply"],
            offset_ms=offset_ms,
            duration_ms=duration_ms,
            media_name=name,
            media_size=_whole(media.get("size"), -1),
            media_mtime_ns=_whole(media.get("mtime_ns"), -1),
            settings=dict(data.get("settings") or {}),
            audio=audio,
            outputs=outputs,
            version=str(data.get("version") or ""),
            created=str(data.get("created") or ""),
            speech=speech_from_json(data["speech"]) if data.get("speech") is not None else None,
            recovery=recovery_from_json(data["recovery"]) if data.get("recovery") is not None else None,
        )
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise BadInputError(f"{source} is a damaged funasr-subs sidecar ({exc})") from None


#: How the reply starts in a sidecar's text: a top-level key (one space of indent), written last (see to_json).
_REPLY_KEY = '\n "reply": '


def _without_reply(text: str) -> str | None:
    """The sidecar's text with its reply left out, or None when the reply is not where to_json puts it (a file
    written by hand, or cut short): then the whole text is read."""
    at = text.find(_REPLY_KEY)  # a raw line feed is never inside a JSON string: this is the top-level key
    head = text[:at].rstrip()
    if at < 0 or not head.endswith(",") or not text.rstrip().endswith("}"):
        return None
    return head[:-1] + "\n}"


def _reply_text(text: str, data: Mapping[str, Any]) -> str | None:
    """The reply's own JSON text in a sidecar's ``text`` (parsed: ``data``) when it is where to_json puts it, the
    last member and the only top-level one of that name; else None."""
    at = text.find(_REPLY_KEY)
    if at < 0 or list(data)[-1] != "reply" or text.find(_REPLY_KEY, at + 1) >= 0 or _without_reply(text) is None:
        return None
    return text[at + len(_REPLY_KEY) : text.rstrip().rfind("}")].strip()


def read_sidecar(path: Path, *, reply: bool = True) -> Sidecar:
    """Load a sidecar; BadInputError naming the file when it is missing or not ours. ``reply=False``: everything
    but the reply (left empty), for the checks that need only the rest; a 10-hour reply takes 0.1-0.3 s to parse."""
    try:
        text = read_regular_text(path, MAX_SIDECAR_BYTES)
        head = None if reply else _without_reply(text)
        data = parse_json(head if head is not None else text)
        if head is not None and isinstance(data, dict):
            data["reply"] = {}
        elif isinstance(data, dict) and isinstance(data.get("reply"), dict):
            reply_text = _reply_text(text, data)
            if reply_text is not None:
                return sidecar_from_dict(data, str(path)).with_reply_text(reply_text)
    except FileNotFoundError:
        raise BadInputError("no sidecar found: transcribe the media first", path=path) from None
    except OSError as exc:
        raise BadInputError(f"sidecar cannot be read ({exc.strerror or exc})", path=path) from None
    except ValueError as exc:  # UnicodeDecodeError too
        raise BadInputError(f"sidecar is damaged ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise BadInputError("not a funasr-subs sidecar", path=path)
    return sidecar_from_dict(data, str(path))


def try_read_sidecar(path: Path, *, reply: bool = True) -> Sidecar | None:
    """The sidecar, or None when there is none or it is not usable (one warning line says which and why);
    ``reply`` as for :func:`read_sidecar`."""
    try:
        return read_sidecar(path, reply=reply)
    except BadInputError as exc:
        try:
            st = os.lstat(path)
        except OSError:
            return None  # simply absent
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _WARNED:  # one line per damaged file, however often it is looked at
            if len(_WARNED) > 10_000:
                _WARNED.clear()
            _WARNED.add(key)
            log.warning("warning: %s; treated as not ours (it will be replaced)", exc)
        return None


_WARNED: set[tuple[str, int, int]] = set()

"""funasr-subs: subtitles made by a FunASR speech server, as a library (this module) and a command (``funasr-subs``).

The stable Python API::

    from funasr_subs import Settings, generate_subtitles

    result = generate_subtitles("talk.mp4", Settings(server="ws://127.0.0.1:10095"))
    print(result.written)  # (PosixPath('talk.zh.srt'),)

Everything listed in ``__all__`` is public and follows semantic versioning; submodules are internal.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from funasr_subs._version import __version__

if TYPE_CHECKING:  # the names below are imported on first use (see __getattr__): `funasr-subs --help` stays fast
    from funasr_subs.config import Settings, load_settings
    from funasr_subs.cues.settings import CueSettings
    from funasr_subs.errors import (
        BadInputError,
        CancelledError,
        ConfigError,
        CorruptMediaError,
        FunasrSubsError,
        MediaNotFoundError,
        NoAudioError,
        NoSpeechError,
        NoTimestampsError,
        NotMediaError,
        OutputError,
        OutputExistsError,
        ProtocolError,
        RefusedMediaError,
        ServerError,
        ServerTimeoutError,
        ServerUnavailableError,
        TLSMismatchError,
        ToolMissingError,
    )
    from funasr_subs.model import Cue, Result, Timings, Token, Transcript
    from funasr_subs.pipeline import CancelToken, ProgressCallback, generate_subtitles, is_up_to_date

#: Where each public name lives; a name is imported from there when it is first used.
_HOMES = {
    "Settings": "config",
    "load_settings": "config",
    "CueSettings": "cues.settings",
    "Cue": "model",
    "Token": "model",
    "Transcript": "model",
    "CancelToken": "pipeline",
    "ProgressCallback": "pipeline",
    "Result": "model",
    "Timings": "model",
    "generate_subtitles": "pipeline",
    "is_up_to_date": "pipeline",
    "decode_reply": "protocol",  # these three: importable from here as before, though not in __all__
    "parse_reply": "protocol",
    "parse_session": "protocol",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name) or ("errors" if name.endswith("Error") else None)
    if home is None:
        raise AttributeError(f"module 'funasr_subs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"funasr_subs.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def build_cues(
    reply: Mapping[str, Any] | str,
    settings: Settings | None = None,
    *,
    offset_ms: int = 0,
    speech: Mapping[str, Any] | None = None,
) -> list[Cue]:
    """Cues from a raw FunASR reply (the JSON text or the decoded dict), using ``settings.cue_settings()``.

    Re-times a transcript without contacting the server: feed it a reply saved earlier (e.g. a sidecar's ``reply``,
    which may also be a 2pass server's ``session`` of replies) and different cue settings. ``offset_ms`` shifts every
    token first, for audio that started late in its container. ``speech``: the sidecar's ``speech`` (where speech
    was heard, on the media's timeline): cue edges are moved onto it, as ``transcribe`` and ``retime`` do. Raises
    ProtocolError when the reply cannot be understood, NoTimestampsError when it has no times and BadInputError
    when ``speech`` is damaged.
    """
    from funasr_subs.config import Settings
    from funasr_subs.cues import build_cues as _build_cues
    from funasr_subs.errors import BadInputError
    from funasr_subs.media.activity import speech_from_json
    from funasr_subs.protocol import decode_reply, parse_reply, parse_session

    heard: tuple[tuple[int, int], ...] = ()
    if speech is not None:
        try:
            found = speech_from_json(speech)
        except ValueError as exc:
            raise BadInputError(f"speech activity: {exc}") from None
        heard = found.intervals if found is not None else ()

    data = decode_reply(reply) if isinstance(reply, str) else reply
    session = data.get("session")  # a 2pass server's replies, as the sidecar keeps them
    transcript = parse_session(session) if isinstance(session, list) else parse_reply(data)
    transcript = transcript.shifted(offset_ms)
    return list(_build_cues(transcript.tokens, (settings or Settings()).cue_settings(), speech=heard))


__all__ = [
    "BadInputError",
    "CancelToken",
    "CancelledError",
    "ConfigError",
    "CorruptMediaError",
    "Cue",
    "CueSettings",
    "FunasrSubsError",
    "MediaNotFoundError",
    "NoAudioError",
    "NoSpeechError",
    "NoTimestampsError",
    "NotMediaError",
    "OutputError",
    "OutputExistsError",
    "ProgressCallback",
    "ProtocolError",
    "RefusedMediaError",
    "Result",
    "ServerError",
    "ServerTimeoutError",
    "ServerUnavailableError",
    "Settings",
    "TLSMismatchError",
    "Timings",
    "Token",
    "ToolMissingError",
    "Transcript",
    "__version__",
    "build_cues",
    "generate_subtitles",
    "is_up_to_date",
    "load_settings",
]

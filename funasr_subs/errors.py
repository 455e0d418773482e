"""The exception tree: callers decide retry/skip by type, and every message names the file and what to do."""

from __future__ import annotations

from pathlib import Path


class FunasrSubsError(Exception):
    """Base of every error this package raises on purpose."""

    #: True when trying the same thing again later may succeed (server down, timeout, dropped connection).
    retryable: bool = False

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.path}: {self.message}"
        return self.message


# --- bad input: the file itself is the problem; retrying without changing it is pointless ---------------------
class BadInputError(FunasrSubsError):
    """The input file cannot be used (missing, not media, no audio, corrupt)."""


class MediaNotFoundError(BadInputError):
    """The path does not exist."""


class NotMediaError(BadInputError):
    """The file is not something ffmpeg can read as media."""


class RefusedMediaError(NotMediaError):
    """ffmpeg reads the file as a format that opens other files (a playlist, a concat list, an image sequence) or is
    no media container: it is not opened (see media.inputs)."""


class NoAudioError(BadInputError):
    """The media has no (selected) audio stream."""


class CorruptMediaError(BadInputError):
    """ffmpeg failed while decoding; the message carries its last stderr line."""


class NoSpeechError(BadInputError):
    """The server recognised nothing: no subtitle is written."""


# --- configuration / environment: the user must change something -------------------------------------------
class ConfigError(FunasrSubsError):
    """Invalid configuration, flag or hotwords file."""


class ToolMissingError(FunasrSubsError):
    """An external program (ffmpeg/ffprobe) is not installed."""


# --- the server -----------------------------------------------------------------------------------------------
class ServerError(FunasrSubsError):
    """Something went wrong talking to the FunASR server."""


class ServerUnavailableError(ServerError):
    """Connection refused / unreachable / dropped: worth retrying later."""

    retryable = True


class ServerTimeoutError(ServerError):
    """The server did not connect or answer in time."""

    retryable = True


class ReplyTimeoutError(ServerTimeoutError):
    """Connected and uploaded, but no reply in time: not retried within a job (the server may be busy with it)."""


class NotFunasrError(ServerError):
    """An HTTP answer (404, 400...) where a websocket was expected: another program listens there."""


class WrongServerError(NotFunasrError):
    """Another FunASR server answered (funasr-realtime-server, funasr-server's HTTP API, the 2pass server given a
    container): the message names it and what to run instead."""


class TLSMismatchError(ServerError):
    """ws:// against a wss server or the other way round, or an untrusted certificate."""


class ProtocolError(ServerError):
    """The server's reply could not be understood."""


class NoTimestampsError(ServerError):
    """The server's model gives no timestamps, so no subtitle can be timed."""


# --- output ---------------------------------------------------------------------------------------------------
class OutputError(FunasrSubsError):
    """A subtitle or sidecar could not be written."""


class OutputExistsError(OutputError):
    """A subtitle this tool did not write is in the way and --overwrite was not given."""


class DiskFullError(OutputError):
    """The disk (or the quota) is full: the same file may be written once space is freed."""

    retryable = True


class StdoutError(OutputError):
    """Standard output cannot take what a command prints: closed, full, or a pipe whose reader has gone
    (``broken_pipe``: the reader took what it wanted, as ``| head`` does; nothing to say about it)."""

    def __init__(self, message: str, *, broken_pipe: bool) -> None:
        super().__init__(message)
        self.broken_pipe = broken_pipe


# --- the watch daemon's state ---------------------------------------------------------------------------------
class StateError(FunasrSubsError):
    """The watch state database cannot be opened or written (locked, read-only, not a file, its disk full)."""


class CancelledError(FunasrSubsError):
    """The caller cancelled the job; nothing was written."""

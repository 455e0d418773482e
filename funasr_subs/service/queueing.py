"""Admit paths from media servers (map, check roots) and queue them for the watch daemon; shared by hook and HTTP."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from funasr_subs.errors import BadInputError, MediaNotFoundError
from funasr_subs.media.probe import MEDIA_SUFFIXES
from funasr_subs.names import echo
from funasr_subs.service.pathmap import PathMap
from funasr_subs.service.security import PATH_ECHO, PathRefusedError, admit_path

log = logging.getLogger(__name__)

#: ``enqueue(path, source) -> bool`` — StateDB.enqueue (True when newly queued), possibly run on another thread.
Enqueue = Callable[[Path, str], bool]


@dataclass(frozen=True)
class Admission:
    """What happened to one path: queued, already known, or refused with the reason."""

    raw: str  # as the media server sent it
    path: Path | None = None  # ours, after --path-map
    queued: bool = False  # newly queued (False with no error: already queued or done and unchanged)
    error: str = ""
    status: int = 200  # HTTP status of a refusal: 400 unusable name, 403 outside roots, 404 missing, 422 not media

    @property
    def ok(self) -> bool:
        return not self.error


def admit_one(
    raw: str,
    *,
    path_map: PathMap,
    roots: Sequence[Path],
    require_roots: bool,
    enqueue: Enqueue,
    source: str,
    base_dir: Path | None = None,
    known: Callable[[Path], str] | None = None,
) -> Admission:
    """Map and check one path, then queue it; never raises for a bad path (the Admission says why, unlogged).
    ``known(path)``: what to say of a path that was not newly queued ("already queued", "already done"...)."""
    try:
        os.fsencode(raw)
    except (UnicodeError, TypeError):
        return Admission(repr(raw), error=f"path {raw!r} is not a file name this system can hold", status=400)
    try:
        path = admit_path(raw, path_map, roots, require_roots=require_roots, base_dir=base_dir)
    except PathRefusedError as exc:
        return Admission(raw, error=exc.message, status=403)
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name too long for the file system (ENAMETOOLONG): no file can have it
        why = exc.strerror or type(exc).__name__
        return Admission(
            raw, path, error=f"path {echo(raw, PATH_ECHO)} is not a file name this system can hold ({why})", status=400
        )
    if is_file and path.suffix.lower() not in MEDIA_SUFFIXES:
        return Admission(raw, path, error=f"{path} is not a media file (suffix {path.suffix or 'none'})", status=422)
    try:
        queued = enqueue(path, source)
    except MediaNotFoundError:
        if str(path) == raw:
            hint = " (if the media server sees another path, add --path-map FROM=TO)"
        else:
            hint = f" (mapped from {raw}: check the --path-map)"
        return Admission(raw, path, error=f"{path}: no such file{hint}", status=404)
    except BadInputError as exc:
        return Admission(raw, path, error=str(exc), status=422)
    except UnicodeError as exc:  # a name the state database cannot store
        return Admission(raw, path, error=f"path {raw!r} cannot be queued ({exc})", status=400)
    said = "queued" if queued else (known(path) if known is not None else "already queued or done") + ":"
    log.info("%s %s (from %s)", said, path, source)
    return Admission(raw, path, queued=queued)


def admit_all(
    raws: Iterable[str],
    *,
    path_map: PathMap,
    roots: Sequence[Path],
    require_roots: bool,
    enqueue: Enqueue,
    source: str,
    base_dir: Path | None = None,
    known: Callable[[Path], str] | None = None,
) -> list[Admission]:
    return [
        admit_one(
            raw,
            path_map=path_map,
            roots=roots,
            require_roots=require_roots,
            enqueue=enqueue,
            source=source,
            base_dir=base_dir,
            known=known,
        )
        for raw in raws
    ]


def no_daemon_warning(state_dir: Path, paths: Iterable[Path], *, inline_hint: bool = False) -> str:
    """The one line saying queued files wait for a daemon that is not running."""
    names = ", ".join(str(p) for p in paths)
    hint = " (or run the hook with --inline)" if inline_hint else ""
    return (
        f"no watch daemon is running on {state_dir}: {names} will wait in the queue until you start "
        f"`funasr-subs watch --state-dir {state_dir} ...`{hint}"
    )

"""The state database as a file: what makes it damaged (moved aside) or unusable (one line saying what to do).

A damaged file only caches what the sidecars know, so it is kept under another name and a fresh one is started. An
unusable one — locked by another program, read-only, a folder or a FIFO in its place, on a full disk — is a
:class:`~funasr_subs.errors.StateError` naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

from funasr_subs.errors import StateError

log = logging.getLogger(__name__)


def check_regular(path: Path) -> None:
    """StateError at once when something other than a regular file (a folder, a FIFO) has the database's name."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"the state database {path} cannot be read ({exc.strerror or exc}): fix it") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, a device?)"
        raise StateError(f"the state database {path} is {kind}: move it away, or give another --state-dir")


def unusable(exc: sqlite3.Error, path: Path, busy_s: float) -> StateError:
    """SQLite's error on ``path`` as one line saying what to do (``busy_s``: how long a lock was waited for)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name == "SQLITE_FULL" or "full" in text:
        why = "the disk holding it is full: free some space"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        why = (
            f"another program holds it locked (waited {busy_s:g} s): stop it (a sqlite3 shell, a backup, a second "
            "daemon on another machine?) or give another --state-dir"
        )
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in text or "unable to open" in text:
        # WAL needs the folder writable too (the -wal and -shm files): a read-only one is "unable to open"
        read_only = not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))
        what = "is read-only (the file, its folder or the file system)" if read_only else "cannot be opened"
        why = f"it {what}: make them writable, or give another --state-dir"
    else:
        why = f"{text}: check the disk, or give another --state-dir"
    return StateError(f"the state database {path} cannot be used: {why}")


def damaged(exc: sqlite3.DatabaseError) -> bool:
    """True for SQLite's "this file is damaged" errors (not for a busy or read-only database)."""
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def move_aside(path: Path, exc: sqlite3.DatabaseError) -> None:
    """Keep a damaged database (and its -wal and -shm files) for inspection under another name, saying which and why;
    the caller then starts a fresh one (files already subtitled are recognised by their sidecars)."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    log.warning(
        "warning: the state database %s is damaged (%s): moved aside to %s; starting with a fresh one "
        "(files already subtitled are recognised by their sidecars)",
        path,
        exc,
        aside.name,
    )

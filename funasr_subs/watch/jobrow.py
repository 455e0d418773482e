"""The job table's rows as plain data (:class:`Job`, :class:`StatusSnapshot`), each row read with every column checked
(pure): a row damaged inside an intact database (``outputs`` that is not JSON, a number stored as text, a missing path)
is a :class:`DamagedRowError` naming what is wrong, which the state database sets aside instead of failing every
reader."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from funasr_subs.names import from_db

JobState = Literal["queued", "running", "done", "failed"]
JOB_STATES: tuple[JobState, ...] = ("queued", "running", "done", "failed")


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


class DamagedRowError(ValueError):
    """A job row whose values cannot be what this version wrote; the message says which column and why."""


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    path: Path
    state: JobState
    attempts: int
    last_error: str | None
    note: str | None
    outputs: tuple[Path, ...]
    size: int | None
    mtime_ns: int | None
    stat_at: float | None
    source: str
    not_before: float
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``status --json`` and the HTTP ``/status`` share it)."""
        return {
            "path": str(self.path),
            "state": self.state,
            "source": self.source,
            "attempts": self.attempts,
            "error": self.last_error,
            "note": self.note,
            "outputs": [str(p) for p in self.outputs],
            "queued_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "retry_at": self.not_before or None,
        }


@dataclass(frozen=True)
class StatusSnapshot:
    """What ``funasr-subs status`` shows: counts per state, the queue, failures and recent results."""

    counts: dict[str, int]
    queued: tuple[Job, ...] = ()
    running: tuple[Job, ...] = ()
    failures: tuple[Job, ...] = ()
    recent: tuple[Job, ...] = ()
    daemon_alive: bool = False
    daemon_pid: int | None = None
    heartbeat: float | None = None
    waiting: tuple[Job, ...] = ()  # queued jobs held back by a backoff, with the reason

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``status --json`` and the HTTP ``/status`` share it)."""
        return {
            "daemon_alive": self.daemon_alive,
            "daemon_pid": self.daemon_pid,
            "heartbeat": self.heartbeat,
            "counts": self.counts,
            "running": [j.to_dict() for j in self.running],
            "queued": [j.to_dict() for j in self.queued],
            "failures": [j.to_dict() for j in self.failures],
            "recent": [j.to_dict() for j in self.recent],
        }


def _int(row: Row, column: str, *, null: bool = False) -> int | None:
    value = row[column]
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DamagedRowError(f"{column} is {_shown(value)}, not a whole number")
    return value


def _real(row: Row, column: str, *, null: bool = False) -> float | None:
    value = row[column]
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DamagedRowError(f"{column} is {_shown(value)}, not a time")
    return float(value)


def _text(row: Row, column: str, *, null: bool = False) -> str | None:
    value = row[column]
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise DamagedRowError(f"{column} is {_shown(value)}, not text")
    return value


def _outputs(value: Any) -> tuple[Path, ...]:
    if value is None or value == "":
        return ()
    try:
        names = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) and n and "\0" not in n for n in names):
        raise DamagedRowError(f"outputs is {_shown(value)}, not a JSON list of file names")
    return tuple(Path(n) for n in names)


def _path(value: Any) -> Path:
    ok = (isinstance(value, str) and "\0" not in value) or (isinstance(value, bytes) and b"\0" not in value)
    if not ok or not value:
        raise DamagedRowError(f"path is {_shown(value)}, not a file name")
    return from_db(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def parse_job(row: Row) -> Job:
    """The row as a Job; DamagedRowError when a column holds what this version never writes there."""
    path = _path(row["path"])
    state = row["state"]
    if state not in JOB_STATES:
        raise DamagedRowError(f"state is {_shown(state)}, not one of {', '.join(JOB_STATES)}")
    return Job(
        path=path,
        state=cast(JobState, state),
        attempts=cast(int, _int(row, "attempts")),
        last_error=_text(row, "last_error", null=True),
        note=_text(row, "note", null=True),
        outputs=_outputs(row["outputs"]),
        size=_int(row, "size", null=True),
        mtime_ns=_int(row, "mtime_ns", null=True),
        stat_at=_real(row, "stat_at", null=True),
        source=cast(str, _text(row, "source")),
        not_before=cast(float, _real(row, "not_before")),
        created_at=cast(float, _real(row, "created_at")),
        updated_at=cast(float, _real(row, "updated_at")),
        started_at=_real(row, "started_at", null=True),
        finished_at=_real(row, "finished_at", null=True),
    )


def path_shown(value: Any) -> str:
    """A damaged row's path as one showable word (whatever type it holds)."""
    if isinstance(value, bytes):
        return repr(value)[2:-1]
    return str(value) if isinstance(value, str) else _shown(value)

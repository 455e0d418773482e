"""The FunASR servers' state in the watch state database: the daemon writes it, ``status`` reads it.

Counts are cumulative over daemon runs: at start the daemon adds the stored ``done``/``audio_ms``/``work_ms`` to its
pool, so the measured speed (seconds of audio per second of request) carries over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from funasr_subs.recognition.pool import Pool, ServerState, ServerStatus
from funasr_subs.watch.state import StateDB

log = logging.getLogger(__name__)
_STATES: tuple[ServerState, ...] = ("up", "down", "unusable")


def save_servers(db: StateDB, statuses: Iterable[ServerStatus]) -> None:
    """Replace the stored server rows with the pool's current view."""
    now = time.time()
    rows = [
        (s.url, s.slots, s.state, s.busy, s.done, s.failed, s.audio_ms, s.work_ms, s.last_error or None, now)
        for s in statuses
    ]
    with db._write() as conn:
        conn.execute("DELETE FROM servers")
        conn.executemany("INSERT INTO servers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def load_servers(db: StateDB) -> list[ServerStatus]:
    """The stored rows, in URL order; a damaged row (a count stored as text) is left out with one warning line (the
    daemon writes the table anew from its pool)."""
    out = []
    for row in db._conn().execute("SELECT * FROM servers ORDER BY url"):
        state: ServerState = next((st for st in _STATES if st == row["state"]), "down")
        try:
            out.append(
                ServerStatus(
                    url=str(row["url"]),
                    slots=_count(row["slots"]),
                    state=state,
                    busy=_count(row["busy"]),
                    done=_count(row["done"]),
                    failed=_count(row["failed"]),
                    audio_ms=_count(row["audio_ms"]),
                    work_ms=_count(row["work_ms"]),
                    last_error=str(row["last_error"] or ""),
                )
            )
        except ValueError as exc:
            log.warning("warning: the state database %s: server row %r ignored (%s)", db.path, row["url"], exc)
    return out


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def restore_history(db: StateDB, pool: Pool) -> None:
    """Give the pool the done counts and measured time of earlier runs."""
    for row in load_servers(db):
        pool.add_history(row.url, done=row.done, audio_ms=row.audio_ms, work_ms=row.work_ms)


def render_servers(statuses: Iterable[ServerStatus], daemon_alive: bool) -> list[str]:
    """``status`` lines: one per server with its state, slots, done count and measured speed."""
    lines = []
    for s in statuses:
        speed = f"{s.speed:.1f}x" if s.speed is not None else "-"
        state = s.state if daemon_alive else f"{s.state} (when the daemon last ran)"
        # requests, not files: a long file split across servers is several, a file done again is one more
        line = f"  {s.url}  {state}, {s.busy}/{s.slots} slots busy, {s.done} requests answered, speed {speed}"
        if s.state != "up" and s.last_error:
            line += f"\n      {s.last_error}"
        lines.append(line)
    return lines

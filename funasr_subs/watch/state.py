"""The watch daemon's durable job table: a small SQLite database (WAL) shared by the daemon, hooks and commands.

The file is ``<state_dir>/state.sqlite3``. Any number of processes and threads may open it at once: each thread gets
its own connection, writes run in ``BEGIN IMMEDIATE`` transactions, and SQLite's busy timeout serialises them.

Schema (``PRAGMA user_version`` = 1)::

    CREATE TABLE jobs (
        path        TEXT PRIMARY KEY,   -- absolute media path (its folder resolved, the file name kept as given;
                                        --   a name that is not UTF-8 is stored as a BLOB of its bytes)
        state       TEXT NOT NULL,      -- 'queued' | 'running' | 'done' | 'failed'
        attempts    INTEGER NOT NULL,   -- times a worker started this file since it last changed
        last_error  TEXT,               -- the last failure's one-line message (kept while waiting for a retry)
        note        TEXT,               -- for done jobs: why nothing was written (a user's subtitle is there), or
                                        -- beside what was written: speech FunASR lost (recovered, or still lost)
        outputs     TEXT,               -- JSON list of the subtitle files written
        size        INTEGER,            -- st_size when queued (a change re-queues done/failed files)
        mtime_ns    INTEGER,            -- st_mtime_ns when queued
        stat_at     REAL,               -- epoch seconds since which size/mtime were seen unchanged (settling)
        source      TEXT NOT NULL,      -- who queued it: 'scan', 'event', 'hook', 'http', 'retry', ...
        changed     INTEGER NOT NULL,   -- 1 when the file changed while running: queue it again when it ends
        not_before  REAL NOT NULL,      -- epoch seconds before which claim_next() leaves it alone (backoff)
        created_at  REAL NOT NULL,      -- epoch seconds the row was first written
        updated_at  REAL NOT NULL,      -- last change of state
        started_at  REAL,               -- last claim
        finished_at REAL,               -- last done/failed
        worker      TEXT                -- 'pid:thread' of the claimer while running
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);  -- 'daemon_pid', 'heartbeat', 'daemon_started'
    CREATE TABLE damaged_jobs (set_aside_at REAL, reason TEXT, <the columns of jobs, untyped>);  -- rows set aside
    CREATE TABLE servers (...);  -- the FunASR servers' state, slots, done count and speed (watch/servers.py)

Liveness: the daemon holds an exclusive ``flock`` on ``<state_dir>/daemon.lock`` for its whole life
(:meth:`StateDB.acquire_daemon_lock`) and refreshes the ``heartbeat`` row; :meth:`StateDB.daemon_alive` tests the lock
(or, where ``fcntl`` does not exist, the heartbeat's age).

Damage inside an intact file (a row whose ``outputs`` is not JSON, a number stored as text, text that is not UTF-8)
is handled like damage of the file: each reader checks every row (:mod:`funasr_subs.watch.jobrow`), and a damaged
one is moved to ``damaged_jobs`` with one warning line naming it; the rest runs. The file it names is found again by
the next scan, and its sidecar says whether it is done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import stat as stat_module
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, cast

from funasr_subs.errors import MediaNotFoundError, NotMediaError, StateError
from funasr_subs.names import db_key, shown
from funasr_subs.watch import dbfile
from funasr_subs.watch.jobrow import (
    JOB_STATES,
    DamagedRowError,
    Job,
    JobState,
    StatusSnapshot,
    parse_job,
    path_shown,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

__all__ = ["DB_NAME", "JOB_STATES", "Job", "JobState", "StateDB", "StatusSnapshot", "media_key", "stat_media"]
DB_NAME = "state.sqlite3"
LOCK_NAME = "daemon.lock"
SCHEMA_VERSION = 1
HEARTBEAT_STALE_S = 30.0
#: Seconds a write waits for a lock another program holds: while the database is opened, afterwards (by default),
#: and in a command a person waits for (retry).
OPEN_BUSY_S = 2.0
BUSY_S = 30.0
INTERACTIVE_BUSY_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    path        TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    note        TEXT,
    outputs     TEXT,
    size        INTEGER,
    mtime_ns    INTEGER,
    stat_at     REAL,
    source      TEXT NOT NULL,
    changed     INTEGER NOT NULL DEFAULT 0,
    not_before  REAL NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    worker      TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, not_before, created_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS damaged_jobs (
    set_aside_at, reason, path, state, attempts, last_error, note, outputs, size, mtime_ns, stat_at, source, changed,
    not_before, created_at, updated_at, started_at, finished_at, worker
);
CREATE TABLE IF NOT EXISTS servers (
    url        TEXT PRIMARY KEY,
    slots      INTEGER NOT NULL,
    state      TEXT NOT NULL,
    busy       INTEGER NOT NULL DEFAULT 0,
    done       INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    audio_ms   INTEGER NOT NULL DEFAULT 0,
    work_ms    INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL
);
"""


def media_key(path: Path | str) -> Path:
    """The path jobs are keyed by: absolute, its folder resolved (symlinks followed) but the file name kept."""
    p = Path(path).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    return p.parent.resolve() / p.name


class StateDB:
    """The job table in ``state_dir/state.sqlite3``; safe to share between threads and processes."""

    def __init__(self, state_dir: Path, *, busy_s: float = BUSY_S) -> None:
        """Open (or make) the database; StateError with one line saying what to do when it cannot be used.

        ``busy_s``: how long a write waits for another writer's lock (the daemon's and the hooks' writers take
        milliseconds; a lock held longer is another program's). Opening waits OPEN_BUSY_S at most.
        """
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._lock_fh: IO[str] | None = None
        self._closed = False
        self._busy_ms = int(OPEN_BUSY_S * 1000)  # at open, a lock held by another program is said at once
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot make the state folder {self.state_dir} ({exc.strerror or exc}): fix it or give another "
                "--state-dir"
            ) from None
        dbfile.check_regular(self.path)
        try:
            try:
                self._open_schema()
            except sqlite3.DatabaseError as exc:
                if not dbfile.damaged(exc):
                    raise
                self.close_thread()
                dbfile.move_aside(self.path, exc)
                self._open_schema()
        except (sqlite3.Error, StateError) as exc:
            self.close()
            raise exc if isinstance(exc, StateError) else self._unusable(exc) from None
        self._busy_ms = int(busy_s * 1000)
        self._conn().execute(f"PRAGMA busy_timeout={self._busy_ms}")

    def _open_schema(self) -> None:
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:  # a write: only when needed, so
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")  # status can read while another program writes
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({check[0] if check else 'no answer'})")

    # --- connections ------------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"state database {self.path} is closed")
        conn = cast("sqlite3.Connection | None", getattr(self._local, "conn", None))
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False
                )
                conn.row_factory = sqlite3.Row
                conn.text_factory = _decode  # text that is not UTF-8 (damage) is read, not an error for the whole query
                conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
                conn.execute("PRAGMA synchronous=FULL")  # a power cut loses no queued work
            except sqlite3.OperationalError as exc:
                raise self._unusable(exc) from None
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self, busy_s: float | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction; StateError when the database cannot take it (locked too long, read-only, disk full).

        ``busy_s``: how long to wait for another program's lock this time (default: the connection's BUSY_S).
        """
        conn = self._conn()
        try:
            if busy_s is not None:
                conn.execute(f"PRAGMA busy_timeout={int(busy_s * 1000)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                if busy_s is not None:
                    conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        except sqlite3.OperationalError as exc:
            raise self._unusable(exc, busy_s) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise self._unusable(exc) from None
            raise

    def _unusable(self, exc: sqlite3.Error, busy_s: float | None = None) -> StateError:
        return dbfile.unusable(exc, self.path, busy_s or self._busy_ms / 1000)

    def close_thread(self) -> None:
        """Close the calling thread's connection (worker threads call this when they end)."""
        conn = cast("sqlite3.Connection | None", getattr(self._local, "conn", None))
        if conn is None:
            return
        self._local.conn = None
        with self._conns_lock:
            if conn in self._conns:
                self._conns.remove(conn)
        conn.close()

    def close(self) -> None:
        """Close every connection and release the daemon lock if held."""
        self.release_daemon_lock()
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._closed = True

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- queueing ---------------------------------------------------------------------------------------------
    def enqueue(
        self,
        path: Path | str,
        *,
        source: str = "scan",
        force: bool = False,
        st: os.stat_result | None = None,
        stable_since: float | None = None,
    ) -> bool:
        """Queue a media file. True when newly queued, or re-queued because its size/mtime changed (or ``force``).

        Idempotent: a file already queued/running, or done/failed with the same size and mtime, is left alone.
        A file that changes while running is queued again when the run ends. ``st`` is the stat the caller already
        has; ``stable_since`` when it has already watched that stat stay unchanged (else: now). Raises
        MediaNotFoundError when the path does not exist and NotMediaError when it is not a regular file.
        """
        key = media_key(path)
        if st is None:
            st = stat_media(key)
        if not stat_module.S_ISREG(st.st_mode):
            raise NotMediaError("is not a regular file: give a media file", path=key)
        now = time.time()
        since = now if stable_since is None else stable_since
        k = db_key(key)
        with self._write() as conn:
            row = conn.execute("SELECT state, size, mtime_ns FROM jobs WHERE path = ?", (k,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO jobs (path, state, size, mtime_ns, stat_at, source, created_at, updated_at)"
                    " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                    (k, st.st_size, st.st_mtime_ns, since, source, now, now),
                )
                return True
            same = row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns
            if row["state"] == "queued":
                if not same:  # a file waiting to be tried again (e.g. not readable yet) is tried now it changed
                    conn.execute(
                        "UPDATE jobs SET size = ?, mtime_ns = ?, stat_at = ?, not_before = 0, updated_at = ?"
                        " WHERE path = ?",
                        (st.st_size, st.st_mtime_ns, since, now, k),
                    )
                return False
            if same and not force:
                return False
            if row["state"] == "running":
                conn.execute(
                    "UPDATE jobs SET size = ?, mtime_ns = ?, stat_at = ?, changed = 1, updated_at = ? WHERE path = ?",
                    (st.st_size, st.st_mtime_ns, since, now, k),
                )
                return True
            conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, last_error = NULL, note = NULL, outputs = NULL,"
                " size = ?, mtime_ns = ?, stat_at = ?, source = ?, changed = 0, not_before = 0, updated_at = ?,"
                " worker = NULL WHERE path = ?",
                (st.st_size, st.st_mtime_ns, since, source, now, k),
            )
            return True

    def claim_next(self) -> Job | None:
        """Atomically take the oldest queued job whose backoff has passed and mark it running, or None."""
        while (row := self._claim_row()) is not None:
            job = self._checked(row)
            if job is not None:
                return job  # else a damaged row was set aside: the next one
        return None

    def _claim_row(self) -> sqlite3.Row | None:
        now = time.time()
        worker = f"{os.getpid()}:{threading.get_ident()}"
        probe = "SELECT 1 FROM jobs WHERE state = 'queued' AND not_before <= ? LIMIT 1"
        if self._conn().execute(probe, (now,)).fetchone() is None:
            return None  # the common idle case: no write lock taken
        with self._write() as conn:
            row = conn.execute(
                "SELECT rowid FROM jobs WHERE state = 'queued' AND not_before <= ?"
                " ORDER BY not_before, created_at LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?, updated_at = ?,"
                " worker = ?, changed = 0 WHERE rowid = ?",
                (now, now, worker, row["rowid"]),
            )
            got: sqlite3.Row = conn.execute(f"SELECT {_ROW} FROM jobs WHERE rowid = ?", (row["rowid"],)).fetchone()
        return got

    def _finish(self, path: Path | str, sets: str, params: Sequence[object]) -> None:
        key = db_key(media_key(path))
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT changed FROM jobs WHERE path = ?", (key,)).fetchone()
            if row is not None and row["changed"]:
                conn.execute(
                    "UPDATE jobs SET state = 'queued', attempts = 0, changed = 0, last_error = NULL, not_before = 0,"
                    " updated_at = ?, worker = NULL WHERE path = ?",
                    (now, key),
                )
                return
            conn.execute(
                f"UPDATE jobs SET {sets}, updated_at = ?, worker = NULL WHERE path = ?",
                (*params, now, key),
            )

    def mark_done(self, path: Path | str, *, written: Sequence[Path] = (), note: str = "") -> None:
        """Record success (``written`` subtitle paths; ``note``: lost speech, recovered or not), or a deliberate skip
        explained by ``note``."""
        outputs = json.dumps([str(p) for p in written])  # ASCII JSON: undecodable names survive as escapes
        self._finish(
            path,
            "state = 'done', last_error = NULL, note = ?, outputs = ?, finished_at = ?",
            (shown(note) if note else None, outputs, time.time()),
        )

    def mark_failed(self, path: Path | str, error: str, *, retryable: bool, retry_at: float | None = None) -> None:
        """Record a failure. Retryable ones stay queued (claimable from ``retry_at``); others wait for a change."""
        error = shown(error)
        if retryable:
            self._finish(path, "state = 'queued', last_error = ?, not_before = ?", (error, retry_at or time.time()))
        else:
            self._finish(path, "state = 'failed', last_error = ?, finished_at = ?", (error, time.time()))

    def requeue(self, path: Path | str, *, delay: float = 0.0, st: os.stat_result | None = None) -> None:
        """Put a running job back in the queue without counting the attempt, claimable after ``delay`` seconds.

        Used on shutdown/cancel, and with ``st`` when the file turned out to be still changing (settling).
        """
        now = time.time()
        k = db_key(media_key(path))
        with self._write() as conn:
            if st is not None:
                conn.execute(
                    "UPDATE jobs SET size = ?, mtime_ns = ?, stat_at = ? WHERE path = ?"
                    " AND (size IS NOT ? OR mtime_ns IS NOT ?)",
                    (st.st_size, st.st_mtime_ns, now, k, st.st_size, st.st_mtime_ns),
                )
            conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), changed = 0, not_before = ?,"
                " updated_at = ?, worker = NULL WHERE path = ?",
                (now + delay, now, k),
            )

    def requeue_running(self) -> int:
        """Queue again every job left 'running' (by a crash or power cut), and end the backoff waits of queued jobs
        (a new start tries the server at once). Call once when the daemon starts. Returns how many were running."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = 'queued', changed = 0, not_before = 0, worker = NULL, updated_at = ?"
                " WHERE state = 'running'",
                (time.time(),),
            )
            conn.execute("UPDATE jobs SET not_before = 0 WHERE state = 'queued' AND not_before > 0")
            return cur.rowcount

    def retry_failed(self) -> int:
        """Queue every failed job again (after the user fixed the cause). Returns how many."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, not_before = 0, source = 'retry',"
                " last_error = NULL, updated_at = ? WHERE state = 'failed'",
                (time.time(),),
            )
            return cur.rowcount

    def forget_gone_failures(self) -> list[Path]:
        """Drop the failed jobs whose file no longer exists (deleted or moved away: nothing left to retry)."""
        gone = [job.path for job in self.jobs("failed") if not os.path.lexists(job.path)]
        if gone:
            with self._write() as conn:
                conn.executemany("DELETE FROM jobs WHERE path = ? AND state = 'failed'", [(str(p),) for p in gone])
        return gone

    def forget(self, path: Path | str) -> None:
        """Drop a file's row (it was deleted)."""
        with self._write() as conn:
            conn.execute("DELETE FROM jobs WHERE path = ?", (db_key(media_key(path)),))

    # --- damaged rows -----------------------------------------------------------------------------------------
    def _checked(self, row: sqlite3.Row) -> Job | None:
        """The row as a Job, or None when it is damaged (then it is set aside, with one line naming it)."""
        try:
            return parse_job(row)
        except DamagedRowError as exc:
            self._set_aside(row, str(exc))
            return None

    def _all_checked(self, rows: list[sqlite3.Row]) -> list[Job]:
        return [job for job in map(self._checked, rows) if job is not None]

    def _set_aside(self, row: sqlite3.Row, reason: str) -> None:
        """Move a damaged row to ``damaged_jobs`` (kept for inspection, as a damaged file is kept), saying so once."""
        with self._write() as conn:
            moved = conn.execute(
                f"INSERT INTO damaged_jobs SELECT ?, ?, {_JOB_COLUMNS} FROM jobs WHERE rowid = ?",
                (time.time(), reason, row["row_id"]),
            ).rowcount
            conn.execute("DELETE FROM jobs WHERE rowid = ?", (row["row_id"],))
        if moved:
            log.warning(
                "warning: the state database %s has a damaged job row for %s (%s): set aside in its table "
                "damaged_jobs; the file is looked at again by the next scan",
                self.path,
                shown(path_shown(row["path"])),
                reason,
            )

    # --- reading ----------------------------------------------------------------------------------------------
    def get(self, path: Path | str) -> Job | None:
        row = self._conn().execute(f"SELECT {_ROW} FROM jobs WHERE path = ?", (db_key(media_key(path)),)).fetchone()
        return None if row is None else self._checked(row)

    def jobs(self, state: JobState | None = None) -> list[Job]:
        if state is None:
            rows = self._conn().execute(f"SELECT {_ROW} FROM jobs ORDER BY created_at").fetchall()
        else:
            sql = f"SELECT {_ROW} FROM jobs WHERE state = ? ORDER BY created_at"
            rows = self._conn().execute(sql, (state,)).fetchall()
        return self._all_checked(rows)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
        for row in self._conn().execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
            out[row["state"]] = int(row["n"])
        return out

    def status(self, *, limit: int = 20) -> StatusSnapshot:
        """Counts, the head of the queue, running jobs, failures and the most recent results."""
        conn = self._conn()

        def rows(where: str, *args: object) -> tuple[Job, ...]:
            return tuple(self._all_checked(conn.execute(f"SELECT {_ROW} FROM jobs WHERE {where}", args).fetchall()))

        now = time.time()
        pid = _number(self._meta("daemon_pid"))
        beat = _number(self._meta("heartbeat"))
        # the rows before the counts: a damaged row is set aside while they are read
        queued = rows("state = 'queued' ORDER BY not_before, created_at LIMIT ?", limit)
        running = rows("state = 'running' ORDER BY started_at")
        failures = rows("state = 'failed' ORDER BY finished_at DESC LIMIT ?", limit)
        recent = rows("state = 'done' ORDER BY finished_at DESC LIMIT ?", limit)
        waiting = rows(
            "state = 'queued' AND last_error IS NOT NULL AND not_before > ? ORDER BY not_before LIMIT ?", now, limit
        )
        return StatusSnapshot(
            counts=self.counts(),
            queued=queued,
            running=running,
            failures=failures,
            recent=recent,
            waiting=waiting,
            daemon_alive=self.daemon_alive(),
            daemon_pid=int(pid) if pid is not None and pid.is_integer() and pid > 0 else None,
            heartbeat=beat,
        )

    # --- daemon liveness --------------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def _set_meta(self, *, busy_s: float | None = None, **values: object) -> None:
        with self._write(busy_s) as conn:
            for key, value in values.items():
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    def acquire_daemon_lock(self) -> bool:
        """Take the daemon lock for this object's life. False when another daemon holds it."""
        if self._lock_fh is not None:
            return True
        try:
            fh = open(self.state_dir / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        except OSError as exc:
            raise StateError(
                f"cannot open the daemon lock {self.state_dir / LOCK_NAME} ({exc.strerror or exc}): make the state "
                "folder writable, or give another --state-dir"
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                return False
        elif self.daemon_alive():  # pragma: no cover - Windows: heartbeat only
            fh.close()
            return False
        self._lock_fh = fh
        now = time.time()
        try:  # the daemon's first write: a lock another program holds is said at once, not after BUSY_S
            self._set_meta(busy_s=OPEN_BUSY_S, daemon_pid=os.getpid(), heartbeat=now, daemon_started=now)
        except StateError:
            self._lock_fh = None
            fh.close()  # releases the flock
            raise
        return True

    def lock_is_current(self) -> bool:
        """False when the daemon lock held is no longer the state folder's (the folder was deleted or replaced
        under the running daemon: another daemon could start there). True when no lock is held."""
        fh = self._lock_fh
        if fh is None:
            return True
        try:
            held, there = os.fstat(fh.fileno()), os.stat(self.state_dir / LOCK_NAME)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)

    def release_daemon_lock(self) -> None:
        fh, self._lock_fh = self._lock_fh, None
        if fh is None:
            return
        with contextlib.suppress(sqlite3.Error, RuntimeError, StateError), self._write(OPEN_BUSY_S) as conn:
            conn.execute("DELETE FROM meta WHERE key IN ('daemon_pid', 'heartbeat')")
        fh.close()  # closing releases the flock

    def heartbeat(self) -> None:
        """Refresh the heartbeat row (the daemon calls this every few seconds)."""
        self._set_meta(heartbeat=time.time())

    def daemon_alive(self) -> bool:
        """True when a watch daemon is running on this state folder."""
        if self._lock_fh is not None:
            return True
        if fcntl is not None:
            try:
                with open(self.state_dir / LOCK_NAME, "a+", encoding="utf-8") as fh:
                    try:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                    except OSError:
                        return True
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                    return False
            except OSError:
                pass
        beat = _number(self._meta("heartbeat"))
        return beat is not None and time.time() - beat < HEARTBEAT_STALE_S


def stat_media(path: Path) -> os.stat_result:
    """``os.stat`` with the package's errors: MediaNotFoundError naming the file and what to check."""
    try:
        return path.stat()
    except FileNotFoundError:
        raise MediaNotFoundError("no such file: check the path", path=path) from None
    except OSError as exc:
        raise MediaNotFoundError(f"cannot read it ({exc.strerror}): check permissions", path=path) from None


#: What a job read selects: its rowid (to set a damaged row aside whatever its path holds) and every column.
_ROW = "rowid AS row_id, *"
_JOB_COLUMNS = (
    "path, state, attempts, last_error, note, outputs, size, mtime_ns, stat_at, source, changed, not_before,"
    " created_at, updated_at, started_at, finished_at, worker"
)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _number(text: str | None) -> float | None:
    """A meta value as a finite number; None when absent or damaged."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None

"""The pool of FunASR servers: slots, health, backoff and probing, shared by every job of a run.

Jobs run in several threads, each with its own event loop (``transcribe -j``, the watch workers, the HTTP
service), so the pool's state sits behind a ``threading.Lock`` and a waiting job is woken through its own loop
(``call_soon_threadsafe``). Dispatch: a job takes a free slot on the least-loaded healthy server. A server that
refuses, drops, times out or answers garbage is marked down with exponential backoff (its next jobs go elsewhere at
once); when its wait is over, one waiting job probes it (a websocket opened, the server named, closed: identify.py)
before work goes there again. An answer that cannot change (HTTP 404, TLS mismatch, no timestamp model, another
kind of server) marks a server unusable for the
rest of the run when ``permanent`` is set (``transcribe``), or down with backoff otherwise (the watch daemon, where
a server still starting behind docker's proxy looks like a TLS mismatch).

A pool made with ``waits=False`` (the HTTP service's) never makes a job wait for, or probe, a down server: with no
server up the job fails at once (its caller answers 503), and :func:`keep_probing`, run beside the service, probes
the down servers when their waits are over, so the backoff grows with the outage, not with the requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from funasr_subs.errors import (
    ConfigError,
    FunasrSubsError,
    NotFunasrError,
    NoTimestampsError,
    ServerUnavailableError,
    TLSMismatchError,
)
from funasr_subs.recognition.endpoint import Endpoint, parse_endpoints

if TYPE_CHECKING:
    from funasr_subs.config import Settings

log = logging.getLogger(__name__)

ServerState = Literal["up", "down", "unusable"]
ProbeFn = Callable[[str], Awaitable[None]]
#: Answers that are the same however often they are asked for.
PERMANENT_ERRORS: tuple[type[FunasrSubsError], ...] = (TLSMismatchError, NotFunasrError, NoTimestampsError, ConfigError)


@dataclass(frozen=True)
class ServerStatus:
    """One server as ``status`` shows it. ``speed``: seconds of audio per second of request time (per slot)."""

    url: str
    slots: int
    state: ServerState
    busy: int = 0
    done: int = 0
    failed: int = 0
    audio_ms: int = 0
    work_ms: int = 0
    last_error: str = ""
    retry_in_s: float = 0.0

    @property
    def speed(self) -> float | None:
        return self.audio_ms / self.work_ms if self.work_ms > 0 else None

    def to_dict(self) -> dict[str, Any]:
        speed = self.speed
        return {
            "url": self.url,
            "slots": self.slots,
            "state": self.state,
            "busy": self.busy,
            "done": self.done,
            "failed": self.failed,
            "audio_s": round(self.audio_ms / 1000, 1),
            "speed": round(speed, 2) if speed is not None else None,
            "last_error": self.last_error,
        }


class Server:
    """A server's live state (changed only under the pool's lock)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.state: ServerState = "up"  # until told otherwise
        self.busy = 0
        self.done = 0
        self.failed = 0
        self.audio_ms = 0
        self.work_ms = 0
        self.delay = 0.0
        self.retry_at = 0.0  # monotonic
        self.probing = False
        self.error: FunasrSubsError | None = None
        self.error_at = 0.0
        self.checked = True  # False: named by a probe before its first job (see Pool's ``check_first``)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def slots(self) -> int:
        return self.endpoint.slots


class Exhausted(Exception):
    """No server can take the job: every one is unusable, excluded, or down past the job's patience."""

    def __init__(self, error: FunasrSubsError) -> None:
        super().__init__(error.message)
        self.error = error


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Pool:
    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        probe: ProbeFn,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        permanent: bool = True,
        waits: bool = True,
        check_first: bool = False,
    ) -> None:
        self.servers = [Server(ep) for ep in endpoints]
        for server in self.servers:
            server.checked = not check_first
        if not self.servers:
            raise ConfigError("no FunASR server given: use --server ws://host:port")
        self.probe_fn = probe
        self.backoff_base = max(0.01, backoff_base)
        self.backoff_cap = max(self.backoff_base, backoff_cap)
        self.permanent = permanent
        self.waits = waits
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified with every wake-up (threads that wait)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        permanent: bool = True,
        backoff_cap: float = 60.0,
        waits: bool = True,
        check_first: bool = False,
    ) -> Pool:
        from funasr_subs.recognition.client import probe_server

        async def probe(url: str) -> None:
            if urlsplit(url).scheme in ("http", "https"):  # funasr-server: its /health (and the model to ask for)
                from funasr_subs.recognition.httpapi import check_server  # (aiohttp: only where it is used)

                await check_server(url, settings)
            else:
                await probe_server(url, settings.insecure, settings.ca_file, settings.connect_timeout)

        endpoints = parse_endpoints(settings.server_list)
        if len(endpoints) == 1 and "#" not in settings.server_list[0]:
            # one server and no #slots: --jobs N sends N files at once, as it always did
            endpoints = (Endpoint(endpoints[0].url, max(1, settings.jobs)),)
        return cls(
            endpoints,
            probe,
            backoff_base=settings.retry_backoff,
            backoff_cap=backoff_cap,
            permanent=permanent,
            waits=waits,
            check_first=check_first,
        )

    # --- what is known ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.servers)

    @property
    def capacity(self) -> int:
        """Slots of the servers that may still be used."""
        with self._lock:
            return sum(s.slots for s in self.servers if s.state != "unusable") or 1

    def workers(self, jobs: int) -> int:
        """Files to work on at once: ``jobs``, and with several servers at least one per slot (else a slot idles)."""
        return max(1, jobs, self.capacity if len(self.servers) > 1 else 1)

    @property
    def exhausted(self) -> bool:
        """True when no server may be used again in this run."""
        with self._lock:
            return all(s.state == "unusable" for s in self.servers)

    def all_down(self) -> bool:
        with self._lock:
            return all(s.state != "up" for s in self.servers)

    def all_wrong(self) -> bool:
        """True when every server answered as a service funasr-subs cannot use (not FunASR, or another FunASR
        server): a setup to change, not an outage to wait out."""
        with self._lock:
            return all(isinstance(s.error, NotFunasrError) and s.state != "up" for s in self.servers)

    def status(self) -> list[ServerStatus]:
        now = time.monotonic()
        with self._lock:
            return [
                ServerStatus(
                    url=s.url,
                    slots=s.slots,
                    state=s.state,
                    busy=s.busy,
                    done=s.done,
                    failed=s.failed,
                    audio_ms=s.audio_ms,
                    work_ms=s.work_ms,
                    last_error=s.error.message if s.error is not None else "",
                    retry_in_s=max(0.0, s.retry_at - now) if s.state == "down" else 0.0,
                )
                for s in self.servers
            ]

    def add_history(self, url: str, *, done: int, audio_ms: int, work_ms: int) -> None:
        """Counts from earlier runs (the watch state), so measured speed and done counts carry over."""
        with self._lock:
            for s in self.servers:
                if s.url == url:
                    s.done += done
                    s.audio_ms += audio_ms
                    s.work_ms += work_ms

    def last_error(self) -> FunasrSubsError:
        """The most recent error of any server (what to tell the user when none can be used)."""
        with self._lock:
            return self._last_error(self.servers)

    def _last_error(self, servers: Iterable[Server]) -> FunasrSubsError:
        failed = [s for s in servers if s.error is not None]
        if not failed:
            return ServerUnavailableError("no FunASR server is available")
        latest = max(failed, key=lambda s: s.error_at)
        assert latest.error is not None
        return latest.error

    # --- dispatch -----------------------------------------------------------------------------------------------
    async def acquire(self, *, exclude: frozenset[str] = frozenset(), patience: int = 0) -> Server:
        """A slot on the least-loaded healthy server (release it with succeeded/failed/release).

        Waits while every usable server is busy (as long as it takes) or down (through at most ``patience``
        probe rounds; never when the pool does not ``wait``); raises :class:`Exhausted` when no server is left to
        try."""
        loop = asyncio.get_running_loop()
        rounds = 0
        while True:
            probe: Server | None = None
            timeout: float | None = None
            with self._lock:
                usable = [s for s in self.servers if s.state != "unusable" and s.url not in exclude]
                if not usable:
                    raise Exhausted(self._last_error(self.servers))
                free = [s for s in usable if s.state == "up" and s.busy < s.slots and s.checked]
                if free:
                    best = min(free, key=lambda s: (s.busy / s.slots, -(s.slots - s.busy)))
                    best.busy += 1
                    return best
                unchecked = [s for s in usable if s.state == "up" and not s.checked]
                fut: asyncio.Future[None]
                if any(not s.probing for s in unchecked):
                    # its first job: the server is named before any audio goes there (a realtime server on the same
                    # port would take the upload and never answer; said in one line instead)
                    probe = next(s for s in unchecked if not s.probing)
                    probe.probing = True
                elif unchecked:
                    fut = loop.create_future()  # another job is naming it: wait for that
                    self._waiters.append((loop, fut))
                    timeout = None
                elif probe is None:
                    if not self.waits and not any(s.state == "up" for s in usable):
                        raise Exhausted(self._last_error(usable))  # down: keep_probing finds out when it is back
                    now = time.monotonic()
                    due = [s for s in usable if s.state == "down" and not s.probing and now >= s.retry_at]
                    if due and self.waits:
                        probe = min(due, key=lambda s: s.retry_at)
                        probe.probing = True
                    else:
                        down = [s for s in usable if s.state == "down"]
                        if len(down) == len(usable) and not any(s.probing for s in down):
                            if rounds >= patience:
                                raise Exhausted(self._last_error(usable))
                            rounds += 1
                        waiting = [s.retry_at - now for s in down if not s.probing]
                        timeout = max(0.01, min(waiting)) if waiting else None
                        fut = loop.create_future()
                        self._waiters.append((loop, fut))
            if probe is not None:
                await self._probe(probe)
                continue
            await self._until_woken(loop, fut, timeout)

    async def _until_woken(
        self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None], timeout: float | None
    ) -> None:
        """Wait until a change wakes ``fut`` (already among the waiters) or ``timeout`` seconds pass; then forget it.
        (asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as the future completes.)"""
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if (loop, fut) in self._waiters:
                    self._waiters.remove((loop, fut))

    async def _probe(self, server: Server, *, quiet: bool = False) -> None:
        try:
            await self.probe_fn(server.url)
        except FunasrSubsError as exc:
            with self._lock:
                server.probing = False
                server.checked = True
                self._mark_failed(server, exc, quiet=quiet)
        except BaseException:
            with self._lock:
                server.probing = False
                self._notify()
            raise
        else:
            with self._lock:
                server.probing, server.checked = False, True
                if server.state == "down":
                    log.info("%s answers again", server.url)
                server.state, server.delay = "up", 0.0
                self._notify()

    async def check(self) -> list[ServerStatus]:
        """Probe every server once, at the same time (before a batch): each ends up up, down or unusable."""

        async def one(server: Server) -> None:
            with self._lock:
                if server.state == "unusable" or server.probing:
                    return
                server.probing = True
            await self._probe(server, quiet=True)  # the caller sums up

        await asyncio.gather(*(one(s) for s in self.servers))
        return self.status()

    def next_probe_in(self) -> float | None:
        """Seconds until a down server may be probed (0: now); None when none is down."""
        now = time.monotonic()
        with self._lock:
            waits = [max(0.0, s.retry_at - now) for s in self.servers if s.state == "down"]
        return min(waits) if waits else None

    def wait_up(self, timeout: float) -> bool:
        """Block this thread until some server is up (True) or ``timeout`` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: any(s.state == "up" for s in self.servers), timeout)

    async def until_probe_due(self) -> None:
        """Return when a down server's wait is over and nobody probes it (waits through every change meanwhile)."""
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:  # the state is read and the waiter added at once: no change can slip between them
                now = time.monotonic()
                waits = [s.retry_at - now for s in self.servers if s.state == "down" and not s.probing]
                if waits and min(waits) <= 0:
                    return
                self._waiters.append((loop, fut))
            await self._until_woken(loop, fut, max(0.01, min(waits)) if waits else None)

    def has_due(self) -> bool:
        """True when a down server's wait is over and nobody is probing it."""
        now = time.monotonic()
        with self._lock:
            return any(s.state == "down" and not s.probing and now >= s.retry_at for s in self.servers)

    async def probe_due(self) -> None:
        """Probe every down server whose wait is over (a long-running daemon calls this while the queue idles, so a
        server that came back shows as up before work needs it)."""
        now = time.monotonic()
        with self._lock:
            due = [s for s in self.servers if s.state == "down" and not s.probing and now >= s.retry_at]
            for server in due:
                server.probing = True
        await asyncio.gather(*(self._probe(s) for s in due))

    def succeeded(self, server: Server, *, audio_ms: int, seconds: float) -> None:
        with self._lock:
            server.busy -= 1
            server.done += 1
            server.audio_ms += max(0, audio_ms)
            server.work_ms += max(0, round(seconds * 1000))
            server.checked = True
            if server.state == "down":
                log.info("%s answers again", server.url)
            if server.state != "unusable":
                server.state, server.delay = "up", 0.0
            self._notify()

    def failed(self, server: Server, error: FunasrSubsError) -> None:
        """The request failed because of the server: mark it down (or unusable) and let waiting jobs move on."""
        with self._lock:
            server.busy -= 1
            server.failed += 1
            self._mark_failed(server, error)

    def blame(self, server: Server, error: FunasrSubsError) -> None:
        """A request that ``server`` finished (and released) turned out wrong: it fails like a request just did."""
        with self._lock:
            server.failed += 1
            server.done = max(0, server.done - 1)
            self._mark_failed(server, error)

    def release(self, server: Server) -> None:
        """The request ended for a reason that says nothing about the server (cancelled, a damaged file)."""
        with self._lock:
            server.busy -= 1
            self._notify()

    def _mark_failed(self, server: Server, error: FunasrSubsError, *, quiet: bool = False) -> None:
        now = time.monotonic()
        server.error, server.error_at = error, now
        if self.permanent and isinstance(error, PERMANENT_ERRORS):
            if server.state != "unusable" and not quiet:
                log.warning("%s is not used again in this run: %s", server.url, error.message)
            server.state = "unusable"
        elif server.state == "down" and now < server.retry_at:
            pass  # already waiting: a second failure from the same outage does not lengthen the wait
        elif server.state != "unusable":
            server.delay = self.backoff_base if server.delay == 0 else min(server.delay * 2, self.backoff_cap)
            server.retry_at = now + server.delay
            if len(self.servers) > 1 and not quiet:
                log.warning("%s is down (%s); trying it again in %.1f s", server.url, error.message, server.delay)
            server.state = "down"
        self._notify()

    def _notify(self) -> None:
        """Wake every waiting job (called under the lock)."""
        self._changed.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # that job's loop has ended
                loop.call_soon_threadsafe(_wake, fut)


def describe(statuses: Iterable[ServerStatus]) -> str:
    """``ws://a: refused; ws://b: HTTP 404`` — why each server cannot be used."""
    return "; ".join(f"{s.url}: {s.last_error or s.state}" for s in statuses)


_SHARED: dict[tuple[Any, ...], Pool] = {}
_SHARED_LOCK = threading.Lock()


#: The longest wait between two probes of a down server in the HTTP service (probes run in the background).
SERVICE_BACKOFF_CAP = 10.0


def shared_pool(settings: Settings) -> Pool:
    """One pool per set of servers for the life of the process (the HTTP service: its requests share the slots,
    health and speed of the servers). Answers that cannot change mark a server down, not unusable: a service
    runs for months, and the server may be fixed meanwhile. A request never waits for a down server
    (``waits=False``): :func:`keep_probing` brings it back."""
    key = (
        settings.server_list,
        settings.insecure,
        settings.ca_file,
        settings.connect_timeout,
        settings.jobs,
        settings.retry_backoff,
    )
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = _SHARED[key] = Pool.from_settings(
                settings, permanent=False, backoff_cap=SERVICE_BACKOFF_CAP, waits=False, check_first=True
            )
        return pool


async def keep_probing(pool: Pool) -> None:
    """Probe the pool's down servers whenever their waits are over, until cancelled (beside the HTTP service)."""
    while True:
        await pool.until_probe_due()
        await pool.probe_due()

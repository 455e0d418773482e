"""Bounds on the connections the service holds: how long a request's headers may take, and how many may be open.

aiohttp reads request headers without a deadline of its own before the first request on a connection (older
versions hold a connection that never completes its headers forever), and accepts any number of connections. The
guard is the protocol factory of the listening socket: each new connection gets ``header_timeout`` seconds to start
its first request (later requests are bounded by aiohttp's ``keepalive_timeout``, set to the same value), and at
``max_connections`` the longest-idle connection — one with no request running — is closed to make room; when every
connection is busy with a request, the newcomer is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

_BUSY_BODY = b'{"error": "too many open connections: try again shortly", "status": 503}'
#: What a connection over the limit reads before it is closed.
BUSY_REPLY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 5\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)
#: Seconds a connection accepted but not yet handed to aiohttp still counts (it is handed over within a loop turn).
PENDING_S = 1.0
#: Seconds between two log lines about closed or refused connections (an attack is one line, not thousands).
LOG_EVERY_S = 60.0


class _Busy(asyncio.Protocol):
    """A connection over the limit while every other one is busy: one 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(BUSY_REPLY)
        transport.close()


class ConnectionGuard:
    """The app's middleware (:meth:`track`) and, once the runner is set up, the listening socket's protocol factory
    around aiohttp's ``Server`` (:meth:`factory`)."""

    def __init__(self, *, header_timeout: float, max_connections: int) -> None:
        self.server: web.Server | None = None
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        # aiohttp's handlers take no weak references: entries are dropped once the connection is no longer open
        self._started: set[RequestHandler] = set()  # sent at least one request
        self._running: dict[RequestHandler, int] = {}  # requests running on it
        self._pending: dict[RequestHandler, float] = {}  # made by the factory, not connected yet: since when
        self._closed = self._refused = 0
        self._said_at = 0.0

    def factory(self, server: web.Server) -> Callable[[], asyncio.BaseProtocol]:
        """The protocol factory for ``loop.create_server``: aiohttp's ``server`` within the bounds."""
        self.server = server
        return self._accept

    def _accept(self) -> asyncio.BaseProtocol:
        assert self.server is not None
        now = time.monotonic()
        connected = self.server.connections  # in the order they came; a new one joins when its connection is made
        joined = set(connected)
        self._started &= joined
        # made but not connected yet (a burst of connects calls the factory many times before the first is connected)
        self._pending = {h: t for h, t in self._pending.items() if h not in joined and now - t < PENDING_S}
        open_now = [h for h in connected if h.transport is not None]
        if len(open_now) + len(self._pending) >= self.max_connections:
            idle = [h for h in open_now if h not in self._running]
            if not idle:
                self._refused += 1
                self._say()
                return _Busy()
            idle[0].force_close()  # the longest-open idle one
            self._closed += 1
            self._say()
        handler = self.server()
        self._pending[handler] = now
        asyncio.get_running_loop().call_later(self.header_timeout, self._expire, handler)
        return handler

    def _expire(self, handler: RequestHandler) -> None:
        if handler in self._started or handler.transport is None:
            return
        log.debug("closed a connection that sent no complete request within %g s", self.header_timeout)
        self._closed += 1
        handler.force_close()
        self._say()

    def _say(self) -> None:
        now = time.monotonic()
        if now - self._said_at < LOG_EVERY_S:
            return
        self._said_at = now
        log.warning(
            "connections: %d closed (idle, or no request within %g s) and %d refused (all %d busy) so far; "
            "a client holding connections open without sending requests?",
            self._closed,
            self.header_timeout,
            self._refused,
            self.max_connections,
        )

    @web.middleware
    async def track(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Marks the connection as started and busy while its request runs (a busy one is never closed as idle)."""
        protocol = request.protocol
        if not isinstance(protocol, RequestHandler):  # pragma: no cover - aiohttp always hands its own
            return await handler(request)
        self._started.add(protocol)
        self._running[protocol] = self._running.get(protocol, 0) + 1
        try:
            return await handler(request)
        finally:
            self._running[protocol] -= 1
            if not self._running[protocol]:
                del self._running[protocol]

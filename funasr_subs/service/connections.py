"""Bounds on the connections the service holds: how long a request's headers may take, and how many may be open.

aiohttp reads request headers without a deadline of its own before the first request on a connection (older
versions hold a connection that never completes its headers forever), and accepts any number of connections. The
guard is the protocol factory of the listening socket: each new connection gets ``header_timeout`` seconds to start
its first request (later requests are bounded by aiohttp's ``keepalive_timeout``, set to the same value), and once
it is made, connections over ``max_connections`` are closed, the longest-open idle ones (no request running) first;
when every other connection is running a request, the newcomer is answered 503 and closed.
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
#: Seconds between two log lines about closed or refused connections (an attack is one line, not thousands).
LOG_EVERY_S = 60.0


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
        self._closed = self._refused = 0
        self._said_at = 0.0

    def factory(self, server: web.Server) -> Callable[[], asyncio.BaseProtocol]:
        """The protocol factory for ``loop.create_server``: aiohttp's ``server`` within the bounds."""
        self.server = server
        return self._accept

    def _accept(self) -> RequestHandler:
        assert self.server is not None
        handler = self.server()
        loop = asyncio.get_running_loop()
        loop.call_later(self.header_timeout, self._expire, handler)
        # asyncio queues the new connection's connection_made() right after this factory returns: a callback queued
        # from a callback queued now runs after it, when aiohttp lists the connection (a burst of connects calls the
        # factory many times before the first of them is made)
        loop.call_soon(loop.call_soon, self._enforce, handler)
        return handler

    def _enforce(self, newcomer: RequestHandler) -> None:
        assert self.server is not None
        connected = self.server.connections  # in the order they came
        open_now = [h for h in connected if h.transport is not None]
        self._started &= set(open_now)
        excess = len(open_now) - self.max_connections
        if excess <= 0:
            return
        for handler in [h for h in open_now if h not in self._running][:excess]:  # oldest idle first
            if handler is newcomer and handler.transport is not None:  # every older one is busy: say why
                handler.transport.write(BUSY_REPLY)
                self._refused += 1
            else:
                self._closed += 1
            handler.force_close()
        self._say()

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
            "connections: %d closed (idle over the limit of %d, or no request within %g s) and %d refused (all "
            "busy) so far; a client holding connections open without sending requests?",
            self._closed,
            self.max_connections,
            self.header_timeout,
            self._refused,
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

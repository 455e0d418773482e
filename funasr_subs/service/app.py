"""The HTTP service as an aiohttp application: shared state under typed keys, middlewares, start and stop.

Every request is checked before its body is read: route (404/405), token (401), then Content-Length against the
route's limit (411/413), in :func:`gate` — run by a middleware and by the ``Expect: 100-continue`` handler, so a
1 GB upload is refused after its headers. aiohttp's strict parser refuses malformed framing (``Content-Length: 1_0``,
``+2``, duplicates) with 400 before any of our code runs; :mod:`funasr_subs.service.connections` bounds how long
headers may take and how many connections are held. The app runs on its own event loop in a thread, so the
synchronous ``serve`` and ``watch --http`` commands start and stop it like any other resource.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from funasr_subs.errors import ConfigError
from funasr_subs.recognition.pool import keep_probing, shared_pool
from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.connections import ConnectionGuard
from funasr_subs.service.gate import CLIENT, STATE, ServiceState, errors_and_log, gatekeeper
from funasr_subs.service.httpclient import USER_AGENT
from funasr_subs.service.routes import routes
from funasr_subs.service.security import check_token_setting, resolve_roots

log = logging.getLogger(__name__)

#: Seconds a refused upload's remaining body is read and dropped, so the client reads our reply, not a reset.
LINGER_SECONDS = 1.0
#: Seconds running requests get at shutdown before they are cancelled (an /asr job sees the stop at once).
SHUTDOWN_SECONDS = 2.0
BACKLOG = 1024
#: Characters of aiohttp's reason for refusing a malformed request that the log repeats.
PARSE_ERROR_CHARS = 300


async def _client(app: web.Application) -> AsyncIterator[None]:
    """One client session for every Jellyfin/Emby/Plex lookup, closed with the app."""
    async with aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        app[CLIENT] = session
        yield


async def _prober(app: web.Application) -> AsyncIterator[None]:
    """Probe down FunASR servers in the background while the service runs: requests never wait for them."""
    try:
        pool = shared_pool(app[STATE].config.settings)
    except ConfigError as exc:  # a bad --server: every /asr request says so
        log.warning("FunASR servers not probed: %s", exc.message)
        yield
        return
    task = asyncio.ensure_future(keep_probing(pool))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _QuietParseErrors(logging.Filter):
    """A request aiohttp's parser refused (bad framing, bad headers) is one line, not a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            reason = " ".join(str(exc).split())  # aiohttp's reason may quote the whole request line
            record.msg, record.args = "refused a malformed request (400): %s", (reason[:PARSE_ERROR_CHARS],)
        return True


logging.getLogger("aiohttp.server").addFilter(_QuietParseErrors())


def build_app(state: ServiceState, guard: ConnectionGuard) -> web.Application:
    app = web.Application(middlewares=[guard.track, errors_and_log, gatekeeper], client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app.cleanup_ctx.append(_client)
    app.cleanup_ctx.append(_prober)
    app.add_routes(routes)
    return app


# --- running it -----------------------------------------------------------------------------------------------
@dataclass
class ServiceHandle:
    """A running service: ``url``, ``port``, and ``shutdown()`` (idempotent; cancels running /asr jobs)."""

    state: ServiceState
    loop: asyncio.AbstractEventLoop
    runner: web.AppRunner
    listener: asyncio.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def shutdown(self) -> None:
        if self.state.stopping.is_set():
            return
        self.state.stopping.set()
        future = asyncio.run_coroutine_threadsafe(_stop(self.listener, self.runner), self.loop)
        try:
            future.result(SHUTDOWN_SECONDS + 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()
            self.state.close()
        log.info("HTTP service on %s stopped", self.url)

    def __enter__(self) -> ServiceHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _check_upload_dir(folder: Path | None) -> None:
    where = folder or Path(tempfile.gettempdir())
    if not where.is_dir():
        raise ConfigError(f"upload folder {where} does not exist: create it or fix --upload-dir")
    if not os.access(where, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write in the upload folder {where}: fix its permissions or --upload-dir")


async def _start(state: ServiceState) -> tuple[web.AppRunner, asyncio.Server, str, int]:
    config = state.config
    guard = ConnectionGuard(header_timeout=config.header_timeout, max_connections=config.max_connections)
    runner = web.AppRunner(
        build_app(state, guard),
        access_log=None,
        shutdown_timeout=SHUTDOWN_SECONDS,
        lingering_time=LINGER_SECONDS,
        keepalive_timeout=config.header_timeout,  # idle between requests, and a later request's headers
    )
    await runner.setup()
    assert runner.server is not None
    try:  # our own listening socket, not a TCPSite: its protocol factory is the guard's
        listener = await asyncio.get_running_loop().create_server(
            guard.factory(runner.server), config.host, config.port, backlog=BACKLOG, reuse_address=True
        )
    except OSError:
        await runner.cleanup()
        raise
    address = listener.sockets[0].getsockname()
    return runner, listener, str(address[0]), int(address[1])


async def _stop(listener: asyncio.Server, runner: web.AppRunner) -> None:
    listener.close()  # no new connections; the runner then ends the open ones
    await runner.cleanup()


def start_service(config: ServiceConfig, state_db: Any | None = None) -> ServiceHandle:
    """Bind and serve on a background thread; returns at once. Raises ConfigError (bind rules, roots, folders).

    ``state_db`` is a ``funasr_subs.watch.state.StateDB`` (webhooks queue into it, ``/status`` reads it); without one
    those endpoints answer 503.
    """
    check_token_setting(config.host, config.token)
    roots = resolve_roots(config.roots)
    _check_upload_dir(config.upload_dir)
    state = ServiceState(config=config, roots=roots, state_db=state_db)
    loop = asyncio.new_event_loop()
    try:
        runner, listener, host, port = loop.run_until_complete(_start(state))
    except OSError as exc:
        loop.close()
        state.close()
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=loop.run_forever, name="funasr-subs-http", daemon=True)
    thread.start()
    handle = ServiceHandle(
        state=state, loop=loop, runner=runner, listener=listener, thread=thread, host=host, port=port
    )
    where = ", ".join(map(str, roots)) or "none (webhooks refuse every path)"
    log.info("HTTP service listening on %s (token %s; roots: %s)", handle.url, "on" if config.token else "off", where)
    return handle

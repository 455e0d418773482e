"""Shared state under typed keys, the per-route policies, and the checks every request passes before its body.

:func:`gate` decides route (404/405), token (401) and body size (411/413) from the headers alone; it runs in a
middleware and in the ``Expect: 100-continue`` handler, so a 1 GB upload is refused before it is sent or read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from funasr_subs._version import __version__
from funasr_subs.errors import StateError
from funasr_subs.names import ECHO_CHARS, echo
from funasr_subs.service.asrcache import ResultCache
from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.responses import OPENAI_PREFIX, RequestError, error_response, json_response, openai_error
from funasr_subs.service.security import TOKEN_PARAM, presented_tokens, token_matches

log = logging.getLogger(__name__)

T = TypeVar("T")
AUTHENTICATED = web.RequestKey("authenticated", bool)
SERVER = f"funasr-subs/{__version__}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Policy:
    """What a route admits before its body is read."""

    body_limit: Callable[[ServiceConfig], int] | None = None  # None: no body expected
    limit_name: str = ""  # the setting (or fixed limit) a 413 names
    public: bool = False  # reachable without the token (the handler may still say less)


#: Each endpoint's policy, keyed by its handler (filled by :func:`endpoint` as routes.py is imported).
POLICIES: dict[Callable[..., Any], Policy] = {}


def endpoint(policy: Policy) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        POLICIES[handler] = policy
        return handler

    return register


@dataclass
class ServiceState:
    """What handlers share: the config, resolved roots, the state DB, the /asr slots and cache, a stop signal."""

    config: ServiceConfig
    roots: tuple[Path, ...]
    state_db: Any | None  # funasr_subs.watch.state.StateDB (duck-typed: enqueue/status/daemon_alive)
    stopping: threading.Event = field(default_factory=threading.Event)
    cache: ResultCache = field(default_factory=ResultCache)
    _db_pool: ThreadPoolExecutor = field(init=False)
    _asr_slots: asyncio.Semaphore | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # One thread owns every state-DB call: SQLite connections belong to the thread that made them.
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="funasr-subs-http-db")

    @property
    def asr_slots(self) -> asyncio.Semaphore:
        if self._asr_slots is None:  # made on the service's loop, on first use
            self._asr_slots = asyncio.Semaphore(self.config.asr_jobs)
        return self._asr_slots

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the state-DB thread; a database that takes no writes (disk full, locked) is a 503."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._db_pool, lambda: fn(*args, **kwargs))
        except StateError as exc:
            log.error("error: %s", exc)
            raise RequestError(503, exc.message, headers=[("Retry-After", "30")]) from None

    def close(self) -> None:
        self._db_pool.shutdown(wait=True)


STATE = web.AppKey("state", ServiceState)
CLIENT = web.AppKey("client", aiohttp.ClientSession)


# --- the gate: everything decidable before the body is read ---------------------------------------------------
def _policy(request: web.Request) -> Policy | None:
    if request.match_info.http_exception is not None:
        return None
    return POLICIES.get(request.match_info.handler)


def _known(app: web.Application) -> str:
    found = {
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    return ", ".join(sorted(found))


def gate(request: web.Request) -> Policy:
    """Route (404/405), token (401) and body-size (411/413) checks; marks the request authenticated or not."""
    problem = request.match_info.http_exception
    if isinstance(problem, web.HTTPMethodNotAllowed):
        allow = ", ".join(sorted(problem.allowed_methods))
        raise RequestError(
            405, f"{request.method} is not allowed on {request.path}: use {allow}", headers=[("Allow", allow)]
        )
    policy = _policy(request)
    if policy is None:
        raise RequestError(404, f"no such endpoint {echo(request.path)}; known: {_known(request.app)}")
    state = request.app[STATE]
    tokens = request.query.getall(TOKEN_PARAM, [])
    if len(tokens) > 1:
        raise RequestError(400, f"?{TOKEN_PARAM}= is given {len(tokens)} times: give it once")
    token = state.config.token
    presented = presented_tokens(request.headers, request.query)
    authenticated = bool(token) and token_matches(token or "", presented)
    request[AUTHENTICATED] = authenticated
    if token and not authenticated and (presented or not policy.public):  # a wrong token is refused everywhere
        log.warning("refused %s %s from %s: missing or wrong token", request.method, request.path, request.remote)
        raise RequestError(
            401,
            "missing or wrong token: send X-Api-Key, Authorization: Bearer, user:TOKEN@ in the URL, or ?token=",
            headers=[("WWW-Authenticate", 'Bearer realm="funasr-subs"')],
        )
    if policy.body_limit is not None:
        length = request.content_length
        if length is None or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "send a Content-Length (chunked request bodies are not supported)")
        limit = policy.body_limit(state.config)
        if length > limit:
            raise RequestError(
                413, f"the body is {length} bytes, over this endpoint's limit of {limit} bytes ({policy.limit_name})"
            )
    return policy


def _log_path(request: web.Request) -> str:
    query = "&".join(f"{k[:ECHO_CHARS]}={'***' if k == TOKEN_PARAM else echo(v)}" for k, v in request.query.items())
    return request.path + ("?" + query if query else "")


def _refusal(request: web.Request, exc: RequestError, *, unread: bool = False) -> web.Response:
    response = error_response(exc)
    if request.path.startswith(OPENAI_PREFIX):  # OpenAI's shape, unknown /v1 paths included: its SDKs read it
        response = json_response(exc.status, openai_error(exc.message, exc.status), *exc.headers)
    if request.body_exists and (unread or not request.content.is_eof()):
        response.force_close()  # the body was not read: this connection cannot carry another request
    return response


@web.middleware
async def errors_and_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """One JSON reply for every refusal, a 500 for a bug (logged with its traceback), one log line per request."""
    started = time.monotonic()
    try:
        response = await handler(request)
    except RequestError as exc:
        response = _refusal(request, exc)
    except web.HTTPException as exc:  # aiohttp's own (e.g. a bad Expect header)
        response = _refusal(request, RequestError(exc.status, exc.reason))
    except Exception:
        log.exception("internal error on %s %s", request.method, _log_path(request))
        response = _refusal(request, RequestError(500, "internal error: see the service log"))
    response.headers["Server"] = SERVER
    level = logging.INFO if response.status < 500 else logging.WARNING
    ms = (time.monotonic() - started) * 1000
    log.log(level, "%s %s %s -> %d (%.0f ms)", request.remote, request.method, _log_path(request), response.status, ms)
    return response


@web.middleware
async def gatekeeper(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        gate(request)
    except RequestError as exc:
        return _refusal(request, exc, unread=True)
    return await handler(request)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: refuse before the client sends the body, else invite it."""
    try:
        gate(request)
    except RequestError as exc:
        return _refusal(request, exc, unread=True)
    if request.headers.get("Expect", "").lower() != "100-continue":
        return _refusal(request, RequestError(417, f"unknown Expect: {request.headers.get('Expect')}"))
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None

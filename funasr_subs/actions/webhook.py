"""Built-in ``on_done`` action: after every job (done, failed, skipped) POST a JSON summary to a URL.

subgen's ``WEBHOOK_URL_COMPLETED``, for notifications (ntfy, Gotify, Home Assistant) and chaining. Deliveries go to
one background thread through a bounded queue, so a slow or absent receiver never delays the next job; each is
retried ``retries`` times on a connection failure, a timeout or an HTTP 5xx/408/429, waiting ``retry_backoff``
seconds doubled each time (the settings that also govern the FunASR connection). TLS is verified unless
``insecure`` (``ca_file`` trusts a private CA). The URL is never logged whole: it may carry a token.

Not an entry-point plugin: it needs the job's settings, and a URL the user configured must never depend on whether
the installed package metadata lists a plugin. :func:`funasr_subs.pipeline.generate_subtitles` calls
:func:`job_finished`; ``funasr_subs.cli.main`` calls :func:`drain` before the process exits (and so does an exit
handler, for a Python program that uses the API).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import queue
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from funasr_subs import __version__
from funasr_subs.recognition.lost import Recovery, recovery_to_json

if TYPE_CHECKING:
    from funasr_subs.config import Settings

log = logging.getLogger(__name__)

Status = Literal["done", "failed", "skipped"]
#: Deliveries waiting at most; one more is dropped (and said so) rather than wait.
MAX_PENDING = 100
#: Seconds for one POST, connection to last byte of the answer.
POST_TIMEOUT_S = 10.0
#: Seconds a command waits at exit for deliveries still queued or being retried (short: ``docker stop`` gives 10 s).
DRAIN_TIMEOUT_S = 5.0
#: Answers worth another try (the receiver is busy or broken for now); other 4xx mean the request itself is refused.
RETRY_STATUSES = frozenset({408, 425, 429})
MAX_ANSWER_BYTES = 64 * 1024


def shown_url(url: str) -> str:
    """The URL for logs: scheme, host, port and path; a user, password or query (which may be a token) hidden."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unusable URL)"
    if ":" in host:
        host = f"[{host}]"
    user = "***@" if parts.username or parts.password else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "***" if parts.query else "", ""))


def payload(
    media: Path,
    status: Status,
    *,
    outputs: Sequence[Path] = (),
    sidecar: Path | None = None,
    cues: int = 0,
    reason: str = "",
    error: str = "",
    seconds: float = 0.0,
    recovery: Recovery | None = None,
) -> dict[str, Any]:
    """The JSON body of one notification (paths absolute, as this machine sees them). ``recovery``: speech FunASR
    lost, sent again (as the sidecar keeps it; null when there was none)."""
    return {
        "event": "job.finished",
        "status": status,
        "file": str(Path(media).absolute()),
        "outputs": [str(Path(p).absolute()) for p in outputs],
        "sidecar": str(Path(sidecar).absolute()) if sidecar is not None else None,
        "cues": cues,
        "reason": reason,
        "error": error,
        "seconds": round(seconds, 3),
        "recovery": recovery_to_json(recovery) if recovery else None,
        "source": "funasr-subs",
        "version": __version__,
    }


@dataclass(frozen=True)
class Delivery:
    """One POST to make, with the retry and TLS settings of the job it reports."""

    url: str
    body: bytes
    media: str
    retries: int = 3
    backoff_s: float = 1.0
    insecure: bool = False
    ca_file: Path | None = None


class _Outcome(Exception):
    """Why one attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, why: str, *, retry: bool) -> None:
        super().__init__(why)
        self.retry = retry


class Sender:
    """One daemon thread that makes the deliveries in order; :meth:`submit` never blocks."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=max_pending)
        self._changed = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, delivery: Delivery) -> bool:
        """Queue ``delivery``; False (and a warning) when the queue is full."""
        with self._changed:
            try:
                self._queue.put_nowait(delivery)
            except queue.Full:
                log.warning(
                    "on-done: %d notifications are already waiting for %s; the one for %s is dropped",
                    self._queue.qsize(),
                    shown_url(delivery.url),
                    delivery.media,
                )
                return False
            self._pending += 1
            self._stop.clear()  # a notification after an abandoned run (the Python API, tests) goes out again
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="funasr-subs-on-done", daemon=True)
                self._thread.start()
        return True

    def abandon(self) -> None:
        """Drop what is queued, stop waiting between retries (the user interrupted the program); until the next
        :meth:`submit`."""
        self._stop.set()

    @property
    def abandoned(self) -> bool:
        return self._stop.is_set()

    @property
    def pending(self) -> int:
        with self._changed:
            return self._pending

    def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> int:
        """Wait up to ``timeout`` seconds for every queued delivery to be made (or given up); how many are left."""
        with self._changed:
            if self._pending:
                log.debug("on-done: waiting up to %g s for %d notification(s)", timeout, self._pending)
            self._changed.wait_for(lambda: self._pending == 0, timeout)
            left = self._pending
        if left:
            log.warning("on-done: %d notification(s) not delivered before exit", left)
        return left

    def _loop(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if not self._stop.is_set():
                    self._deliver(delivery)
            except Exception:  # a bug here must not end the thread: the next job's notification still goes
                log.warning("on-done: delivery for %s failed unexpectedly", delivery.media, exc_info=True)
            finally:
                with self._changed:
                    self._pending -= 1
                    self._changed.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        attempts = 1 + max(0, delivery.retries)
        target = shown_url(delivery.url)
        for attempt in range(attempts):
            try:
                status = asyncio.run(_post(delivery))
            except _Outcome as outcome:
                last_try = attempt == attempts - 1 or not outcome.retry
                if last_try:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    log.warning("on-done: POST %s for %s failed%s: %s", target, delivery.media, tries, outcome)
                    return
                wait = delivery.backoff_s * (2**attempt)
                log.info("on-done: POST %s for %s: %s; retrying in %g s", target, delivery.media, outcome, wait)
                if self._stop.wait(wait):
                    return
                continue
            log.debug("on-done: POST %s for %s: HTTP %d", target, delivery.media, status)
            return


def _ssl_context(delivery: Delivery) -> ssl.SSLContext | bool:
    if delivery.insecure:
        return False
    if delivery.ca_file is not None:
        return ssl.create_default_context(cafile=str(delivery.ca_file))
    return True


async def _post(delivery: Delivery) -> int:
    """One POST; the status when it is 2xx/3xx, else _Outcome saying whether to retry."""
    import aiohttp  # here: loading an HTTP client costs ~0.1 s, paid only when a notification is sent

    headers = {"Content-Type": "application/json", "User-Agent": f"funasr-subs/{__version__}"}
    try:
        ssl_arg = _ssl_context(delivery)
    except (OSError, ssl.SSLError) as exc:
        raise _Outcome(f"the CA file cannot be used: {exc}", retry=False) from None
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_arg), cookie_jar=aiohttp.DummyCookieJar())
    request = session.post(
        delivery.url,
        data=delivery.body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
        allow_redirects=False,
    )
    try:
        async with session, request as answer:
            await answer.content.read(MAX_ANSWER_BYTES)
            status = answer.status
    except TimeoutError:
        raise _Outcome(f"no answer within {POST_TIMEOUT_S:g} s", retry=True) from None
    except aiohttp.ClientSSLError as exc:
        why = f"TLS failed ({_first_line(exc)}): fix the certificate, or use --ca-file / --insecure"
        raise _Outcome(why, retry=False) from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise _Outcome(_first_line(exc) or type(exc).__name__, retry=True) from None
    if status >= 500 or status in RETRY_STATUSES:
        raise _Outcome(f"HTTP {status}", retry=True)
    if status >= 400:
        raise _Outcome(f"HTTP {status} (the receiver refused the notification)", retry=False)
    return status


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


_sender = Sender()


@atexit.register
def _drain_at_exit() -> None:
    """A Python program that ends right after its last job still delivers (bounded, as :func:`drain`)."""
    if _sender.pending and not _sender.abandoned:
        _sender.drain()


def job_finished(settings: Settings, body: Mapping[str, Any]) -> None:
    """Queue the notification of one finished job (its :func:`payload`) when ``settings.on_done`` is set. Never
    raises, never blocks."""
    if not settings.on_done:
        return
    _sender.submit(
        Delivery(
            url=settings.on_done,
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            media=str(body.get("file", "")),
            retries=settings.retries,
            backoff_s=settings.retry_backoff,
            insecure=settings.insecure,
            ca_file=settings.ca_file,
        )
    )


def drain(timeout: float = DRAIN_TIMEOUT_S) -> int:
    """Wait (bounded) for the notifications still queued; how many were left undelivered."""
    return _sender.drain(timeout)


def abandon() -> None:
    """Send nothing more and wait for nothing at exit (after Ctrl-C or a cancelled run)."""
    _sender.abandon()

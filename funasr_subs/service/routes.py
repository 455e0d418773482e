"""The endpoints: ``/health``, ``/status``, ``/asr``, ``/detect-language``, ``/webhook/{jellyfin,emby,plex}``."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funasr_subs._version import __version__
from funasr_subs.errors import (
    BadInputError,
    CancelledError,
    ConfigError,
    FunasrSubsError,
    NoSpeechError,
    ServerTimeoutError,
    ServerUnavailableError,
    ToolMissingError,
)
from funasr_subs.model import Cue
from funasr_subs.service import asr, webhooks
from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.httpclient import UpstreamError
from funasr_subs.service.multipart import Form, MultipartError, parse_form
from funasr_subs.service.queueing import admit_all, no_daemon_warning
from funasr_subs.service.responses import (
    JSON_BODY_LIMIT,
    WEBHOOK_BODY_LIMIT,
    Query,
    RequestError,
    Response,
    Route,
    json_response,
)

if TYPE_CHECKING:
    from funasr_subs.service.app import RequestHandler

log = logging.getLogger(__name__)


# --- helpers ---------------------------------------------------------------------------------------------------
def _form(h: RequestHandler, *, file_fields: tuple[str, ...] = (), keep_fields: tuple[str, ...] = ()) -> Form:
    try:
        return parse_form(
            h.body,
            h.headers.get("Content-Type"),
            h.body.left,
            file_fields=file_fields,
            keep_fields=keep_fields,
            tmp_dir=h.state.config.upload_dir,
        )
    except MultipartError as exc:
        raise RequestError(exc.status, str(exc)) from None
    except OSError as exc:
        log.error("cannot spool an upload to %s: %s", h.state.config.upload_dir or "the temp folder", exc)
        raise RequestError(507, f"cannot store the upload on the service host ({exc.strerror})") from None


def _raw_body(h: RequestHandler) -> bytes:
    data = h.body.read(h.body.left)
    if h.body.left:
        raise RequestError(400, "the body ended early")
    return data


def _db(h: RequestHandler) -> Any:
    if h.state.state_db is None:
        raise RequestError(503, "this service has no state database: start it with funasr-subs serve or watch --http")
    return h.state.state_db


def _is_multipart(h: RequestHandler) -> bool:
    return (h.headers.get("Content-Type") or "").lower().startswith("multipart/")


# --- health and status -----------------------------------------------------------------------------------------
def health(h: RequestHandler, query: Query) -> Response:
    return json_response(200, {"status": "ok", "service": "funasr-subs", "version": __version__})


def status(h: RequestHandler, query: Query) -> Response:
    db = _db(h)
    snap = h.state.db(db.status)
    return json_response(200, snap.to_dict())  # the same shape as ``funasr-subs status --json``


# --- whisper-asr-webservice ------------------------------------------------------------------------------------
_FIELDS = ("task", "language", "output", "encode", "video_file")


def _asr_error(exc: FunasrSubsError, spool: Path, name: str) -> RequestError:
    """HTTP status for a pipeline error; the message names the upload, never the spool file."""
    message = exc.message.replace(str(spool), name)
    if isinstance(exc, ServerUnavailableError | ServerTimeoutError):
        return RequestError(503, f"the FunASR server is unavailable: {message}", headers=[("Retry-After", "30")])
    if isinstance(exc, CancelledError):
        return RequestError(503, "the service is shutting down", headers=[("Retry-After", "30")])
    if isinstance(exc, BadInputError):
        return RequestError(422, f"the upload cannot be used: {message}")
    if isinstance(exc, ToolMissingError | ConfigError):
        return RequestError(500, f"the service is misconfigured: {message}")
    return RequestError(502, f"the FunASR server's answer could not be used: {message}")


def _slot(state_stopping: threading.Event, slots: threading.BoundedSemaphore) -> None:
    while not slots.acquire(timeout=0.5):
        if state_stopping.is_set():
            raise RequestError(503, "the service is shutting down", headers=[("Retry-After", "30")])


def _safe_name(name: str) -> str:
    stem = Path(name.replace("\\", "/")).name or "audio"
    return re.sub(r"[^\w.\- ]", "_", stem)[:100] or "audio"


def asr_endpoint(h: RequestHandler, query: Query) -> Response:
    try:
        request = asr.parse_request(query)  # fail fast on bad parameters, before storing the upload
    except asr.AsrRequestError as exc:
        raise RequestError(400, str(exc)) from None
    with _form(h, file_fields=("audio_file",), keep_fields=_FIELDS) as form:
        try:
            request = asr.parse_request(query, form.fields)
        except asr.AsrRequestError as exc:
            raise RequestError(400, str(exc)) from None
        upload = form.files.get("audio_file")
        if upload is None:
            raise RequestError(400, "no audio_file part in the form: upload the audio as multipart field audio_file")
        if upload.size == 0:
            raise RequestError(400, "audio_file is empty")
        settings = h.state.config.settings
        code, _ = asr.model_language(settings)
        if request.video_file:
            log.info("/asr: video_file=%r noted but not read (the upload is transcribed)", request.video_file)
        if request.language and request.language.split("-")[0].lower() != code:
            log.info("/asr: language=%s requested; the FunASR model's language is %s", request.language, code)
        _slot(h.state.stopping, h.state.asr_slots)
        try:
            cues: list[Cue] = asr.transcribe_upload(
                upload.path, settings, raw_pcm=not request.encode, cancel=h.state.stopping
            )
        except NoSpeechError:
            cues = []
        except FunasrSubsError as exc:
            raise _asr_error(exc, upload.path, upload.filename or "the upload") from None
        finally:
            h.state.asr_slots.release()
        body, content_type = asr.render_output(cues, request.output, settings)
        filename = f"{_safe_name(upload.filename)}.{request.output}"
        log.info("/asr: %d bytes (encode=%s) -> %d cues as %s", upload.size, request.encode, len(cues), request.output)
        return Response(
            200,
            body,
            content_type,
            headers=(("Asr-Engine", "funasr"), ("Content-Disposition", f'attachment; filename="{filename}"')),
        )


def detect_language_endpoint(h: RequestHandler, query: Query) -> Response:
    """FunASR does not detect languages: this answers with the configured model language (``--lang``)."""
    try:
        asr.parse_request({k: v for k, v in query.items() if k == "encode"})
    except asr.AsrRequestError as exc:
        raise RequestError(400, str(exc)) from None
    with _form(h):  # the audio is read and dropped: there is nothing to detect it with
        pass
    return json_response(200, asr.detect_language_reply(h.state.config.settings))


# --- webhooks --------------------------------------------------------------------------------------------------
def _queue_event(h: RequestHandler, event: webhooks.Event) -> Response:
    if not event.wanted:
        log.info("%s webhook %s ignored: %s", event.source, event.name or "(no event)", event.reason)
        return json_response(200, {"status": "ignored", "event": event.name, "reason": event.reason})
    db = _db(h)
    config: ServiceConfig = h.state.config
    try:
        raws = webhooks.unique(webhooks.event_paths(config, event))
    except UpstreamError as exc:
        log.warning("%s webhook for %r: %s", event.source, event.title or event.item_id, exc.message)
        raise RequestError(502, exc.message) from None
    admissions = admit_all(
        raws,
        path_map=config.path_map,
        roots=h.state.roots,
        require_roots=True,
        enqueue=lambda path, source: bool(h.state.db(db.enqueue, path, source=source)),
        source=event.source,
    )
    for refused in (a for a in admissions if not a.ok):
        log.warning("%s webhook: refused %r: %s", event.source, refused.raw, refused.error)
    accepted = [a for a in admissions if a.ok]
    result: dict[str, Any] = {
        "status": "queued" if any(a.queued for a in accepted) else "already" if accepted else "refused",
        "event": event.name,
        "queued": [str(a.path) for a in accepted if a.queued],
        "already": [str(a.path) for a in accepted if not a.queued],
        "refused": [{"path": a.raw, "reason": a.error} for a in admissions if not a.ok],
    }
    if accepted and not h.state.db(db.daemon_alive):
        result["warning"] = no_daemon_warning(config.effective_state_dir, [a.path for a in accepted if a.path])
        log.warning("%s", result["warning"])
    if not accepted:
        return json_response(admissions[0].status if admissions else 422, result)
    return json_response(202 if result["queued"] else 200, result)


def _payload(h: RequestHandler, field: str) -> dict[str, Any]:
    """A JSON object from multipart field ``field`` (or a JSON body, for senders configured that way)."""
    if _is_multipart(h):
        with _form(h, keep_fields=(field,)) as form:
            if field not in form.fields:
                raise RequestError(400, f"the form has no {field!r} field")
            text = form.fields[field]
    else:
        text = _raw_body(h).decode("utf-8", "replace")
    try:
        return webhooks.json_object(text, field)
    except webhooks.WebhookError as exc:
        raise RequestError(400, str(exc)) from None


def _webhook(h: RequestHandler, parse: Callable[[Any], webhooks.Event], body: Callable[[], Any]) -> Response:
    """Parse one media server's payload into an event (400 with the reason when malformed) and queue it."""
    try:
        event = parse(body())
    except webhooks.WebhookError as exc:
        raise RequestError(400, str(exc)) from None
    return _queue_event(h, event)


def jellyfin_endpoint(h: RequestHandler, query: Query) -> Response:
    return _webhook(h, webhooks.jellyfin_event, lambda: webhooks.json_object(_raw_body(h), "the Jellyfin payload"))


def emby_endpoint(h: RequestHandler, query: Query) -> Response:
    return _webhook(h, webhooks.emby_event, lambda: _payload(h, "data"))


def plex_endpoint(h: RequestHandler, query: Query) -> Response:
    return _webhook(h, webhooks.plex_event, lambda: _payload(h, "payload"))


def _upload_limit(config: ServiceConfig) -> int:
    return config.max_upload_bytes


def _json_limit(config: ServiceConfig) -> int:
    return JSON_BODY_LIMIT


def _webhook_limit(config: ServiceConfig) -> int:
    return WEBHOOK_BODY_LIMIT


ROUTES: dict[str, dict[str, Route]] = {
    "/health": {"GET": Route(health, public=True)},
    "/status": {"GET": Route(status)},
    "/asr": {"POST": Route(asr_endpoint, _upload_limit)},
    "/detect-language": {"POST": Route(detect_language_endpoint, _upload_limit)},
    "/webhook/jellyfin": {"POST": Route(jellyfin_endpoint, _json_limit)},
    "/webhook/emby": {"POST": Route(emby_endpoint, _webhook_limit)},
    "/webhook/plex": {"POST": Route(plex_endpoint, _webhook_limit)},
}

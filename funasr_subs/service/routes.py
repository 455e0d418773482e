"""The endpoints: ``/health``, ``/status``, ``/asr``, ``/detect-language``, ``/v1/audio/transcriptions`` and the
Jellyfin/Emby/Plex webhooks. Handlers stay short: read the request, call the engine, shape the reply."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from funasr_subs._version import __version__
from funasr_subs.config import Settings
from funasr_subs.errors import (
    BadInputError,
    CancelledError,
    ConfigError,
    FunasrSubsError,
    ServerTimeoutError,
    ServerUnavailableError,
    ToolMissingError,
)
from funasr_subs.names import echo
from funasr_subs.recognition.pool import shared_pool
from funasr_subs.service import asr, openai, webhooks
from funasr_subs.service.asrcache import cache_key
from funasr_subs.service.config import ServiceConfig
from funasr_subs.service.gate import (
    AUTHENTICATED,
    CLIENT,
    STATE,
    Policy,
    ServiceState,
    endpoint,
    expect_continue,
)
from funasr_subs.service.httpclient import UpstreamError
from funasr_subs.service.queueing import Admission, admit_all, no_daemon_warning
from funasr_subs.service.responses import JSON_BODY_LIMIT, WEBHOOK_BODY_LIMIT, RequestError, json_response
from funasr_subs.service.security import PATH_ECHO
from funasr_subs.service.uploads import Form, UploadedFile, is_multipart, read_body, read_form

log = logging.getLogger(__name__)
T = TypeVar("T")
routes = web.RouteTableDef()

UPLOAD = Policy(lambda c: c.max_upload_bytes, "max_upload_mb")
OPENAI = Policy(lambda c: c.max_upload_bytes, "max_upload_mb")
JSON_HOOK = Policy(lambda c: JSON_BODY_LIMIT, "a fixed limit for JSON webhooks")
FORM_HOOK = Policy(lambda c: WEBHOOK_BODY_LIMIT, "a fixed limit for form webhooks")
#: What an unauthenticated caller learns about a refused path: the same words whether it exists or not.
REFUSED = "refused: not a media file inside the library roots (the service log says why)"
SSE = "text/event-stream"
RETRY_AFTER_MAX = 30
_SHUTTING_DOWN = RequestError(503, "the service is shutting down", headers=[("Retry-After", "30")])


class ClientGone(Exception):
    """The client closed its connection while its /asr job waited or ran."""


def _state(request: web.Request) -> ServiceState:
    return request.app[STATE]


def _query(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}


def _db(state: ServiceState) -> Any:
    if state.state_db is None:
        raise RequestError(503, "this service has no state database: start it with funasr-subs serve or watch --http")
    return state.state_db


# --- health and status -----------------------------------------------------------------------------------------
@routes.get("/health", expect_handler=expect_continue)
@endpoint(Policy(public=True))
async def health(request: web.Request) -> web.StreamResponse:
    return json_response(200, {"status": "ok", "service": "funasr-subs", "version": __version__})


@routes.get("/status", expect_handler=expect_continue)
@endpoint(Policy(public=True))
async def status(request: web.Request) -> web.StreamResponse:
    """Bazarr's "Test Connection" asks this without credentials: the version for anyone, the queue only to a caller
    that presents the token (none configured: nobody; ``funasr-subs status`` reads the queue on the machine)."""
    state = _state(request)
    if not request[AUTHENTICATED]:
        return json_response(200, {"version": __version__, "service": "funasr-subs"})
    snap = await state.db(_db(state).status)
    return json_response(200, {"version": __version__, **snap.to_dict()})  # the shape of `funasr-subs status --json`


# --- speech to text: the whisper-asr-webservice contract and OpenAI's ----------------------------------------------
def _retry_after(settings: Settings) -> str:
    """Seconds until the FunASR server is probed again (1-30): when a retry may find it back."""
    wait = shared_pool(settings).next_probe_in()
    return str(max(1, min(RETRY_AFTER_MAX, math.ceil(wait if wait is not None else 1))))


def _asr_error(exc: FunasrSubsError, spool: Path, name: str, settings: Settings) -> RequestError:
    """HTTP status for a pipeline error; the message names the upload, never the spool file."""
    message = exc.message.replace(str(spool), name)
    if isinstance(exc, ServerUnavailableError | ServerTimeoutError):
        retry = [("Retry-After", _retry_after(settings))]
        return RequestError(503, f"the FunASR server is unavailable: {message}", headers=retry)
    if isinstance(exc, CancelledError):
        return _SHUTTING_DOWN
    if isinstance(exc, BadInputError):
        return RequestError(422, f"the upload cannot be used: {message}")
    if isinstance(exc, ToolMissingError | ConfigError):
        return RequestError(500, f"the service is misconfigured: {message}")
    return RequestError(502, f"the FunASR server's answer could not be used: {message}")


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _watch(request: web.Request, state: ServiceState, cancel: threading.Event) -> None:
    """Set ``cancel`` when the service stops or the client hangs up (Bazarr's read timeout ended the request)."""
    while not (state.stopping.is_set() or _gone(request)):
        await asyncio.sleep(0.2)
    cancel.set()


async def _slot(request: web.Request, state: ServiceState) -> None:
    """Wait for one of the ``asr_jobs`` slots; give up when the service stops or the client hangs up."""
    acquire = asyncio.ensure_future(state.asr_slots.acquire())
    try:
        while True:
            done, _ = await asyncio.wait({acquire}, timeout=0.2)
            if done:
                return
            if state.stopping.is_set():
                raise _SHUTTING_DOWN
            if _gone(request):
                raise ClientGone
    except BaseException:
        if not acquire.cancel() and not acquire.cancelled() and acquire.exception() is None:
            state.asr_slots.release()  # acquired in the same instant it was given up
        raise


async def _recognise(
    request: web.Request, upload: UploadedFile, settings: Settings, *, raw_pcm: bool
) -> asr.Recognised:
    """The upload's recognition: from the cache when the same audio was done with the same settings, else FunASR."""
    state = _state(request)
    key = cache_key(upload.sha256, settings, raw_pcm=raw_pcm)
    cached = state.cache.get(key)
    if cached is not None:
        log.info("%s: the same audio was transcribed before: answered from the cache", request.path)
        return cached
    result = await _in_slot(request, upload, settings, asr.recognise_upload, raw_pcm=raw_pcm)
    state.cache.put(key, result)
    return result


async def _in_slot(
    request: web.Request,
    upload: UploadedFile,
    settings: Settings,
    job: Callable[..., T],
    *,
    raw_pcm: bool,
) -> T:
    """``job(upload.path, settings, raw_pcm=, cancel=)`` in a thread once one of the ``asr_jobs`` slots is free;
    cancelled when the service stops or the client hangs up (ClientGone); its errors as HTTP statuses."""
    state = _state(request)
    cancel = threading.Event()
    watcher = asyncio.ensure_future(_watch(request, state, cancel))
    try:
        await _slot(request, state)
        try:
            return await asyncio.to_thread(job, upload.path, settings, raw_pcm=raw_pcm, cancel=cancel)
        except CancelledError:
            if not state.stopping.is_set() and _gone(request):
                raise ClientGone from None
            raise
        finally:
            state.asr_slots.release()
    except FunasrSubsError as exc:
        raise _asr_error(exc, upload.path, upload.filename or "the upload", settings) from None
    finally:
        watcher.cancel()


async def _spool(request: web.Request, file_field: str, **kwargs: Any) -> Form:
    return await read_form(request, file_fields=(file_field,), tmp_dir=_state(request).config.upload_dir, **kwargs)


def _upload(form: Form, name: str, hint: str) -> UploadedFile:
    upload = form.files.get(name)
    if upload is None:
        raise RequestError(400, f"no {name} part in the form: {hint}")
    if upload.size == 0:
        raise RequestError(400, f"{name} is empty")
    return upload


def _check_language(language: str | None, state: ServiceState) -> Settings:
    """The settings for a request asking for ``language`` (SenseVoice is told it); 422 when it cannot be done."""
    settings = asr.request_settings(state.config.settings, language)
    if settings is None:
        raise RequestError(422, asr.refusal(state.config.settings, language or ""))
    return settings


def content_disposition(upload_name: str, suffix: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the real name as RFC 5987 ``filename*`` (RFC 6266)."""
    stem = Path(upload_name.replace("\\", "/")).name or "audio"
    stem = "".join(ch for ch in stem if ch.isprintable())[:100] or "audio"
    fallback = re.sub(r"[^A-Za-z0-9._\- ]", "_", stem) or "audio"
    quoted = urllib.parse.quote(f"{stem}.{suffix}", safe="")
    return f"attachment; filename=\"{fallback}.{suffix}\"; filename*=UTF-8''{quoted}"


def _parse_asr(query: dict[str, list[str]], fields: dict[str, str] | None = None) -> asr.AsrRequest:
    try:
        return asr.parse_request(query, fields)
    except asr.AsrRequestError as exc:
        raise RequestError(400, str(exc)) from None


@routes.post("/asr", expect_handler=expect_continue)
@endpoint(UPLOAD)
async def asr_endpoint(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    query = _query(request)
    _check_language(_parse_asr(query).language, state)  # fail fast, before storing the upload
    with await _spool(request, "audio_file", keep_fields=asr.FIELDS) as form:
        parsed = _parse_asr(query, form.fields)
        settings = _check_language(parsed.language, state)
        upload = _upload(form, "audio_file", "upload the audio as multipart field audio_file")
        if parsed.video_file:
            log.info("/asr: video_file=%r noted but not read (the upload is transcribed)", parsed.video_file)
        try:
            result = await _recognise(request, upload, settings, raw_pcm=not parsed.encode)
        except ClientGone:
            log.warning("/asr: the client closed the connection (its read timeout?): the job was stopped")
            raise RequestError(499, "the client closed the connection") from None
        cues = asr.cues_of(result, settings)
        body, content_type = asr.render_output(cues, parsed.output, settings)
        log.info("/asr: %d bytes (encode=%s) -> %d cues as %s", upload.size, parsed.encode, len(cues), parsed.output)
        disposition = content_disposition(upload.filename or "audio", parsed.output)
    response = web.Response(status=200, body=body, headers={"Asr-Engine": "funasr", "Content-Disposition": disposition})
    response.content_type, _, charset = content_type.partition("; charset=")
    response.charset = charset or None
    return response


@routes.post("/detect-language", expect_handler=expect_continue)
@endpoint(UPLOAD)
async def detect_language_endpoint(request: web.Request) -> web.StreamResponse:
    """SenseVoice (``--language auto``) is asked which language the first 30 s of the upload speak; a server of one
    language (Paraformer) is asked nothing: the answer is its language (``--lang``)."""
    parsed = _parse_asr({k: v for k, v in _query(request).items() if k == "encode"})
    settings = _state(request).config.settings
    if settings.language != "auto":
        with await read_form(request):  # the audio is read and dropped: the server speaks one language
            pass
        return json_response(200, asr.detect_language_reply(settings))
    with await _spool(request, "audio_file") as form:
        upload = _upload(form, "audio_file", "upload the audio as multipart field audio_file")
        try:
            spoken = await _in_slot(request, upload, settings, asr.detect_upload, raw_pcm=not parsed.encode)
        except ClientGone:
            log.warning("/detect-language: the client closed the connection: the request was stopped")
            raise RequestError(499, "the client closed the connection") from None
    return json_response(200, asr.detected_reply(spoken, settings))


@routes.post("/v1/audio/transcriptions", expect_handler=expect_continue)
@endpoint(OPENAI)
async def openai_transcriptions(request: web.Request) -> web.StreamResponse:
    """OpenAI's transcription API, backed by the same FunASR path and result cache as ``/asr``."""
    state = _state(request)
    with await _spool(request, "file", keep_fields=openai.FIELDS, list_fields=openai.LIST_FIELDS) as form:
        try:
            parsed = openai.parse_request(form.fields, form.lists)
        except openai.OpenAIRequestError as exc:
            return json_response(400, openai.error_body(str(exc), exc.param))
        settings = asr.request_settings(state.config.settings, parsed.language)
        if settings is None:
            message = asr.refusal(state.config.settings, parsed.language or "")
            return json_response(400, openai.error_body(message, "language"))
        upload = _upload(form, "file", "upload the audio as multipart field file")
        try:
            result = await _recognise(request, upload, settings, raw_pcm=False)
        except ClientGone:
            raise RequestError(499, "the client closed the connection") from None
    cues = asr.cues_of(result, settings)
    if parsed.stream:  # the whole transcript is known at once: every event goes in one body
        headers = {"Cache-Control": "no-cache"}
        body = openai.render_stream(cues, settings)  # UTF-8, said in the header for clients that are not SSE-aware
        return web.Response(status=200, body=body, headers=headers, content_type=SSE, charset="utf-8")
    body, content_type = openai.render_transcription(parsed, result.tokens, cues, settings, result.duration_ms / 1000)
    response = web.Response(status=200, body=body)
    response.content_type, _, charset = content_type.partition("; charset=")
    response.charset = charset or None
    return response


@routes.get("/v1/models", expect_handler=expect_continue)
@endpoint(Policy())
async def openai_models(request: web.Request) -> web.StreamResponse:
    """OpenAI's model list (clients ask before they transcribe): the model names the endpoint accepts."""
    return json_response(200, openai.models_body())


@routes.get("/v1/models/{model}", expect_handler=expect_continue)
@endpoint(Policy())
async def openai_model(request: web.Request) -> web.StreamResponse:
    name = request.match_info["model"]
    if name not in openai.MODELS:
        raise RequestError(404, f"the model {echo(name)} does not exist here: use one of {', '.join(openai.MODELS)}")
    return json_response(200, openai.model_body(name))


# --- webhooks --------------------------------------------------------------------------------------------------
def _as_given(raw: str) -> str:
    """A refused path as the sender gave it; a "path" longer than any file system allows is named by its start."""
    return raw if len(raw) <= PATH_ECHO else echo(raw, PATH_ECHO)


def _refusal_reason(admission: Admission, detailed: bool) -> str:
    return admission.error if detailed or admission.status == 400 else REFUSED


async def _queue_event(request: web.Request, event: webhooks.Event) -> web.StreamResponse:
    if not event.wanted:
        level = logging.WARNING if event.reason == webhooks.JELLYFIN_TEMPLATE else logging.INFO  # a setup mistake
        log.log(level, "%s webhook %s ignored: %s", event.source, event.name or "(no event)", event.reason)
        return json_response(200, {"status": "ignored", "event": event.name, "reason": event.reason})
    state = _state(request)
    db = _db(state)
    config: ServiceConfig = state.config
    try:
        raws = webhooks.unique(await webhooks.event_paths(request.app[CLIENT], config, event))
    except UpstreamError as exc:
        log.warning("%s webhook for %r: %s", event.source, event.title or event.item_id, exc.message)
        raise RequestError(502, exc.message) from None

    def enqueue(path: Path, source: str) -> bool:  # called on the DB thread by admit_all
        return bool(db.enqueue(path, source=source))

    admissions = await state.db(
        admit_all,
        raws,
        path_map=config.server_map(event.source),
        roots=state.roots,
        require_roots=True,
        enqueue=enqueue,
        source=event.source,
    )
    for refused in (a for a in admissions if not a.ok):
        log.warning("%s webhook: refused %s: %s", event.source, echo(refused.raw, PATH_ECHO), refused.error)
    detailed = bool(request[AUTHENTICATED])
    accepted = [a for a in admissions if a.ok]
    result: dict[str, Any] = {
        "status": "queued" if any(a.queued for a in accepted) else "already" if accepted else "refused",
        "event": event.name,
        "queued": [str(a.path) for a in accepted if a.queued],
        "already": [str(a.path) for a in accepted if not a.queued],
        "refused": [{"path": _as_given(a.raw), "reason": _refusal_reason(a, detailed)} for a in admissions if not a.ok],
    }
    if accepted and not await state.db(db.daemon_alive):
        result["warning"] = no_daemon_warning(config.effective_state_dir, [a.path for a in accepted if a.path])
        log.warning("%s", result["warning"])
    if not accepted:
        first = admissions[0].status if admissions else 422
        return json_response(first if detailed or first == 400 else 403, result)
    return json_response(202 if result["queued"] else 200, result)


async def _payload(request: web.Request, field: str) -> dict[str, Any]:
    """A JSON object from multipart field ``field`` (or a JSON body, for senders configured that way)."""
    if is_multipart(request):
        with await read_form(request, keep_fields=(field,)) as form:
            if field not in form.fields:
                raise RequestError(400, f"the form has no {field!r} field")
            text: str | bytes = form.fields[field]
    else:
        text = await read_body(request)
    return _json(text, field)


def _json(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        return webhooks.json_object(data, what)
    except webhooks.WebhookError as exc:
        raise RequestError(400, str(exc)) from None


async def _webhook(
    request: web.Request, parse: Callable[[Any], webhooks.Event], body: Callable[[], Awaitable[Any]]
) -> web.StreamResponse:
    """Parse one media server's payload into an event (400 with the reason when malformed) and queue it."""
    payload = await body()
    try:
        event = parse(payload)
    except webhooks.WebhookError as exc:
        raise RequestError(400, str(exc)) from None
    return await _queue_event(request, event)


@routes.post("/webhook/jellyfin", expect_handler=expect_continue)
@endpoint(JSON_HOOK)
async def jellyfin_endpoint(request: web.Request) -> web.StreamResponse:
    """jellyfin-plugin-webhook's Generic destination: the JSON body, whatever Content-Type it declares."""

    async def body() -> dict[str, Any]:
        return _json(await read_body(request), "the Jellyfin payload")

    return await _webhook(request, webhooks.jellyfin_event, body)


@routes.post("/webhook/emby", expect_handler=expect_continue)
@endpoint(FORM_HOOK)
async def emby_endpoint(request: web.Request) -> web.StreamResponse:
    return await _webhook(request, webhooks.emby_event, lambda: _payload(request, "data"))


@routes.post("/webhook/plex", expect_handler=expect_continue)
@endpoint(FORM_HOOK)
async def plex_endpoint(request: web.Request) -> web.StreamResponse:
    return await _webhook(request, webhooks.plex_event, lambda: _payload(request, "payload"))

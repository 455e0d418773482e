"""Replies and request errors shared by the service's middlewares and routes: every refusal is one JSON body."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from funasr_subs.names import json_text

#: Fixed body limits of the JSON and form webhooks (not settings: no real payload comes near them).
JSON_BODY_LIMIT = 1024 * 1024
WEBHOOK_BODY_LIMIT = 16 * 1024 * 1024


class RequestError(Exception):
    """Answer the request with ``status`` and ``message`` (a JSON body ``{"error": message, "status": status}``)."""

    def __init__(self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


def json_response(status: int, data: Any, *headers: tuple[str, str]) -> web.Response:
    body = json_text(json.dumps(data, ensure_ascii=False, default=str)).encode("utf-8")  # non-UTF-8 names: escapes
    return web.Response(status=status, body=body, content_type="application/json", headers=dict(headers))


#: Paths that answer in OpenAI's shape (its SDKs read ``error.message``), also for 404/405/401 and internal errors.
OPENAI_PREFIX = "/v1/"


def openai_error(message: str, status: int, param: str | None = None) -> dict[str, object]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    code = "invalid_api_key" if status == 401 else "unknown_url" if status == 404 else None
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: RequestError) -> web.Response:
    return json_response(exc.status, {"error": exc.message, "status": exc.status}, *exc.headers)

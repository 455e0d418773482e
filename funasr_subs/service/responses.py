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


def error_response(exc: RequestError) -> web.Response:
    return json_response(exc.status, {"error": exc.message, "status": exc.status}, *exc.headers)

"""Plain types shared by the server and its routes: responses, request errors, the route table's entries."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from funasr_subs.names import json_text
from funasr_subs.service.config import ServiceConfig

if TYPE_CHECKING:
    from funasr_subs.service.app import RequestHandler

Query = Mapping[str, Sequence[str]]
JSON_BODY_LIMIT = 1024 * 1024
WEBHOOK_BODY_LIMIT = 16 * 1024 * 1024


class RequestError(Exception):
    """Answer the request with ``status`` and ``message`` (a JSON body ``{"error": message, "status": status}``)."""

    def __init__(self, status: int, message: str, *, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, data: Any, *headers: tuple[str, str]) -> Response:
    text = json_text(json.dumps(data, ensure_ascii=False, default=str))  # a non-UTF-8 file name: a JSON escape
    return Response(status, text.encode("utf-8"), headers=headers)


def error_response(exc: RequestError) -> Response:
    return json_response(exc.status, {"error": exc.message, "status": exc.status}, *exc.headers)


Handler = Callable[["RequestHandler", Query], Response]


@dataclass(frozen=True)
class Route:
    handler: Handler
    body_limit: Callable[[ServiceConfig], int] | None = None  # None: no body expected
    public: bool = False  # reachable without the token (health checks)

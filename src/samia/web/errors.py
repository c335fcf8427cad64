"""Errors on pages render a friendly page in the user's language with the request id (never
a trace); the JSON API keeps its RFC 9457 problem documents. The API's handlers stay as they
are: these wrap them and answer HTML only for page requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from samia.core.problems import AppError, from_db_error
from samia.web.render import render
from samia.web.session import end

log = structlog.get_logger("samia.web")
Handler = Callable[[Request, Any], Awaitable[Response]]
SIGN_IN_AGAIN = ("unauthenticated", "session_revoked", "invalid_token")


def is_page(request: Request) -> bool:
    if getattr(request.state, "page", False):
        return True
    # a path no route matched, asked for by a browser
    return request.scope.get("route") is None and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, code: str) -> Response:
    if status == 401 and code in SIGN_IN_AGAIN:
        if code != "unauthenticated":
            end(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    key = code if code in ("not_found", "forbidden", "csrf_failed", "rate_limited") else (
        "server" if status >= 500 else "generic")
    return render(request, "error.html", status=status, code=key, status_code=status)


def _wrap(original: Handler, status_code: Callable[[Any], tuple[int, str]]) -> Handler:
    async def handler(request: Request, exc: Any) -> Response:
        if not is_page(request):
            return await original(request, exc)
        status, code = status_code(exc)
        if status >= 500:
            log.error("page_error", error_class=type(exc).__name__, path=request.url.path)
        return error_page(request, status, code)
    return handler


def _http(exc: StarletteHTTPException) -> tuple[int, str]:
    return exc.status_code, {404: "not_found", 403: "forbidden", 401: "unauthenticated"}.get(exc.status_code, "error")


def _db(exc: psycopg.Error) -> tuple[int, str]:
    err = from_db_error(exc)
    return err.status, err.code


def install(app: FastAPI) -> None:
    handlers = app.exception_handlers
    mapping: list[tuple[Any, Callable[[Any], tuple[int, str]]]] = [
        (AppError, lambda e: (e.status, e.code)),
        (psycopg.Error, _db),
        (RequestValidationError, lambda e: (404, "not_found")),  # a malformed id in a page's path
        (StarletteHTTPException, _http),
        (Exception, lambda e: (500, "internal_error")),
    ]
    for exc_type, status_code in mapping:
        app.add_exception_handler(exc_type, _wrap(handlers[exc_type], status_code))  # type: ignore[arg-type]

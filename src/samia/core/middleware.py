"""Pure ASGI middleware: request id, body size cap, access log (ids only, no query strings)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from samia.core.logging import access_line

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class BodyTooLarge(Exception):
    pass


# routes that take a file as their body get the upload cap instead of the JSON one
UPLOAD_PATHS = re.compile(r"^/(payments/\d+/proof|orders/\d+/(output|photos)|my/orders/new/coffee"
                          r"|monitor/horoscopes/upload|admin/console/decks/[a-z_]+/art)$")


class RequestContext:
    def __init__(self, app: Any, max_body: int, max_upload: int, metrics: Any = None) -> None:
        self.app, self.max_json, self.max_upload, self.metrics = app, max_body, max_upload, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cap = self.max_upload if UPLOAD_PATHS.match(scope["path"]) else self.max_json
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > cap:
                raise BodyTooLarge
            await self.app(scope, self._capped(scope, receive, cap), send_wrapped)
        except BodyTooLarge:
            if status["sent"]:
                raise
            await self._too_large(scope, rid, send_wrapped, cap)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            access_line(scope["method"], route, status["code"], round(elapsed * 1000, 2), rid,
                        scope["state"].get("user_id"))
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], route, status["code"], elapsed)

    def _capped(self, scope: dict[str, Any], receive: Any, cap: int) -> Any:
        seen = 0

        async def wrapped() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    # the framework may wrap this in its own 400; the flag lets the
                    # problem handler answer 413 all the same
                    scope["state"]["body_too_large"] = True
                    raise BodyTooLarge
            return message
        return wrapped

    async def _too_large(self, scope: dict[str, Any], rid: str, send: Any, cap: int) -> None:
        body = json.dumps({"type": "/problems/body_too_large", "title": "The request body is too large",
                           "status": 413, "code": "body_too_large", "instance": scope["path"],
                           "detail": f"at most {cap} bytes", "request_id": rid}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

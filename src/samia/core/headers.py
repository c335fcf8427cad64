"""Edge security (seeds 004 "Network & Edge Security"), in one place: the CORS allowlist from
settings, the security headers on every response, and the redirect to HTTPS.

* CORS: only the origins in CORS_ORIGINS get a grant, each with credentials; "*" (dev and test
  only, refused in production by the settings) grants any origin and never credentials. An
  origin not listed gets no Access-Control-Allow-Origin at all.
* Every response: X-Content-Type-Options, Referrer-Policy, X-Frame-Options and a
  Content-Security-Policy with frame-ancestors 'none' — set only where the route has not set its
  own, so server-rendered pages keep the policy they bring. Strict-Transport-Security when the
  request came over HTTPS (X-Forwarded-Proto counts behind a trusted proxy).
* HTTPS_REDIRECT: plain-HTTP requests get 308 to the same URL over HTTPS (the health probes of a
  load balancer excepted).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samia.config import Settings

# The API serves JSON and files: nothing on it runs scripts, loads resources or may be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The OpenAPI explorer pages load FastAPI's pinned Swagger UI / ReDoc bundle and run its inline bootstrap.
DOCS_CSP = ("default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: https:; "
            "font-src https://cdn.jsdelivr.net https://fonts.gstatic.com; connect-src 'self'; worker-src blob:; "
            "frame-ancestors 'none'; base-uri 'none'")
DOCS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
PROBES = frozenset({"/api/ops/live", "/api/ops/ready"})
METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, Accept-Language, X-Request-Id"
EXPOSED = ("X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, "
           "Idempotent-Replayed, Content-Disposition")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class EdgeHeaders:
    def __init__(self, app: ASGIApp, *, origins: list[str], hsts_max_age: int, https_redirect: bool,
                 trust_proxy: bool, public_host: str = "") -> None:
        self.app, self.hsts_max_age = app, hsts_max_age
        self.public_host = public_host  # where a redirect goes: never the request's own Host header
        self.https_redirect, self.trust_proxy = https_redirect, trust_proxy
        self.anyone = "*" in origins
        self.origins = frozenset(o for o in origins if o != "*")

    def _https(self, scope: Scope) -> bool:
        if self.trust_proxy:
            forwarded = _header(scope, b"x-forwarded-proto").split(",")[0].strip().lower()
            if forwarded:
                return forwarded == "https"
        return scope.get("scheme") == "https"

    def _grant(self, origin: str) -> list[tuple[bytes, bytes]]:
        """CORS headers for this origin: none unless it is listed; credentials only when listed."""
        if not origin:
            return []
        if origin in self.origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-credentials", b"true"), (b"vary", b"Origin")]
        if self.anyone:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"vary", b"Origin")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self._https(scope)
        if self.https_redirect and not https and scope["path"] not in PROBES:
            await self._redirect(scope, send)
            return
        origin = _header(scope, b"origin")
        cors = self._grant(origin)
        defaults = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", (DOCS_CSP if scope["path"] in DOCS else API_CSP).encode())]
        if https and self.hsts_max_age:
            defaults.append((b"strict-transport-security", f"max-age={self.hsts_max_age}; includeSubDomains".encode()))
        if scope["method"] == "OPTIONS" and origin and _header(scope, b"access-control-request-method"):
            await self._preflight(cors, defaults, send)
            return
        if any(k == b"access-control-allow-origin" for k, _ in cors):
            cors.append((b"access-control-expose-headers", EXPOSED.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in defaults if k not in present] + cors
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _preflight(self, cors: list[tuple[bytes, bytes]], defaults: list[tuple[bytes, bytes]],
                         send: Send) -> None:
        granted = any(k == b"access-control-allow-origin" for k, _ in cors)
        headers = [*defaults, *cors, (b"content-length", b"0")]
        if granted:
            headers += [(b"access-control-allow-methods", METHODS.encode()),
                        (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                        (b"access-control-max-age", b"600")]
        await send({"type": "http.response.start", "status": 204 if granted else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _redirect(self, scope: Scope, send: Send) -> None:
        host = self.public_host or "localhost"
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{host}{scope.get('raw_path', scope['path'].encode()).decode('latin-1')}"
        location += f"?{query}" if query else ""
        await send({"type": "http.response.start", "status": 308,
                    "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def edge(app: ASGIApp, settings: Settings) -> EdgeHeaders:
    """The edge around an ASGI app: the application wraps its finished middleware stack in it
    (samia.app.App), so that nothing it answers, a raw 500 included, leaves without it."""
    return EdgeHeaders(app, origins=settings.cors_origin_list, hsts_max_age=settings.hsts_max_age,
                       https_redirect=settings.https_redirect, trust_proxy=settings.trust_proxy_headers,
                       public_host=urlsplit(settings.public_base_url).netloc)

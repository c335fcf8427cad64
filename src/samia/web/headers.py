"""What pages add to the edge's headers (core.headers): their own Content-Security-Policy
(scripts, styles, images and media from this origin only; no inline script), a referrer policy
that keeps same-origin navigation working, and permissions and opener isolation. The edge sets
its defaults only where a response has not set its own, so these win on pages.

`PageCookies` writes the Set-Cookie headers a page queued on `request.state.set_cookies` (the
session, CSRF and language cookies), whatever response the request ends in: a page, a redirect
or an error page."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "strict-origin-when-cross-origin",
                "Cross-Origin-Opener-Policy": "same-origin",
                "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()"}


class PageCookies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                queued = scope.get("state", {}).get("set_cookies", [])
                if queued:
                    message["headers"] = [*(message.get("headers") or []),
                                          *((b"set-cookie", c.encode("latin-1")) for c in queued)]
            await send(message)

        await self.app(scope, receive, send_with_cookies)

"""Cookie sessions and CSRF for the web pages.

The session cookie carries the same tokens the API issues (access + refresh), HttpOnly,
SameSite=Lax, Secure outside dev/test. Only routes declared with `allow(..., cookie=True)`
read it, so the JSON API never accepts a cookie (it cannot be CSRF'd through one). Every
unsafe request to a page carries a CSRF token: an HMAC (key derived from SECRET_KEY) of a
random per-browser value kept in its own HttpOnly cookie and of the session id; a missing or
wrong token answers 403 before the request transaction opens, so nothing changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request

from samia.auth import service as auth
from samia.auth.service import Tokens
from samia.core.problems import AppError
from samia.core.tokens import decode_access

if TYPE_CHECKING:
    from samia.core.platform import Platform

SESSION_COOKIE = "samia_session"
CSRF_COOKIE = "samia_csrf"
CSRF_FIELD = "_csrf"
SAFE = ("GET", "HEAD", "OPTIONS")
_refreshing: dict[str, tuple[float, Tokens | None]] = {}   # refresh-token hash → outcome, for 30 s
_locks: dict[str, asyncio.Lock] = {}
# Another worker process may rotate the same cookie at the same moment (a page and its htmx
# request landing on two workers): the database takes the token back within this window of
# its first use and gives the second worker a token of its own (app_auth.rotate_refresh).
REFRESH_GRACE = dt.timedelta(seconds=10)


def _secure(platform: Platform) -> bool:
    return platform.settings.env not in ("dev", "test")


def set_cookie(request: Request, name: str, value: str, *, max_age: int | None, http_only: bool = True) -> None:
    """Queue a Set-Cookie for the response (headers.PageCookies writes it)."""
    platform: Platform = request.app.state.platform
    morsel = SimpleCookie()
    morsel[name] = value
    m = morsel[name]
    m["path"], m["samesite"] = "/", "Lax"
    if http_only:
        m["httponly"] = True
    if _secure(platform):
        m["secure"] = True
    if max_age is not None:
        m["max-age"] = max_age
    request.state.set_cookies = [*getattr(request.state, "set_cookies", []), m.OutputString()]


def start(request: Request, tokens: Tokens) -> None:
    platform: Platform = request.app.state.platform
    set_cookie(request, SESSION_COOKIE, f"{tokens.access_token}~{tokens.refresh_token}",
               max_age=platform.settings.refresh_token_ttl)
    request.state.session_access = tokens.access_token


def end(request: Request) -> None:
    set_cookie(request, SESSION_COOKIE, "", max_age=0)
    request.state.session_access = None


def signed_in(request: Request) -> bool:
    return bool(getattr(request.state, "session_access", None))


def _csrf_key(request: Request) -> bytes:
    platform: Platform = request.app.state.platform
    return platform.settings.subkey("web-csrf-v1")


def csrf_token(request: Request) -> str:
    seed = getattr(request.state, "csrf_seed", None) or request.cookies.get(CSRF_COOKIE, "")
    sid = getattr(request.state, "session_id", None) or ""
    return hmac.new(_csrf_key(request), f"{seed}:{sid}".encode(), hashlib.sha256).hexdigest()


async def page_session(request: Request) -> AsyncIterator[None]:
    """The dependency every page router runs first: mark the request as a page (errors render
    as HTML), load (and if needed refresh) the session, and check CSRF on unsafe methods.
    Afterwards it closes a posted form's uploaded files."""
    request.state.page = True
    platform: Platform = request.app.state.platform
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed:
        seed = secrets.token_urlsafe(24)
        set_cookie(request, CSRF_COOKIE, seed, max_age=None)
    request.state.csrf_seed = seed
    await _load(request, platform)
    if request.method not in SAFE:
        given = ""
        if request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded",
                                                                "multipart/form-data")):
            given = str((await request.form()).get(CSRF_FIELD) or "")
        given = given or request.headers.get("x-csrf-token", "")
        if not (request.cookies.get(CSRF_COOKIE) and hmac.compare_digest(given, csrf_token(request))):
            await request.close()
            raise AppError(403, "csrf_failed", "the form's security token is missing or wrong; reload the page")
    try:
        yield
    finally:
        await request.close()  # the spooled files of a multipart form


async def _load(request: Request, platform: Platform) -> None:
    access, _, refresh_token = request.cookies.get(SESSION_COOKIE, "").partition("~")
    request.state.session_access = None
    if not access:
        return
    try:
        claims = decode_access(platform.settings, access)
    except AppError:
        tokens = await _refresh(platform, refresh_token) if refresh_token else None
        if tokens is None:
            end(request)
            return
        start(request, tokens)
        claims = decode_access(platform.settings, tokens.access_token)
    request.state.session_access = request.state.session_access or access
    request.state.session_id = claims.session_id


async def _refresh(platform: Platform, refresh_token: str) -> Tokens | None:
    """Rotate the refresh token as the API's /auth/refresh does (as `samia_auth`, in its own
    transaction). Concurrent page requests carrying the same expired cookie share one rotation
    in this process, and the database's grace window covers those served by other processes,
    so a page and its htmx request do not look like a stolen token."""
    key = hashlib.sha256(refresh_token.encode()).hexdigest()
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        now = time.monotonic()
        for k, (at, _) in list(_refreshing.items()):
            if now - at > 30:
                _refreshing.pop(k, None)
                _locks.pop(k, None)
        if key in _refreshing:
            return _refreshing[key][1]
        tokens: Tokens | None = None
        async with platform.pool.connection() as conn:
            await conn.execute("select set_config('role', 'samia_auth', true), "
                               "set_config('request.jwt.claims', %s, true)", (json.dumps({"role": "anon"}),))
            try:
                tokens = await auth.refresh(conn, platform.settings, refresh_token, REFRESH_GRACE)
                await conn.commit()
            except AppError as err:
                await (conn.commit() if err.keep else conn.rollback())
        _refreshing[key] = (now, tokens)
        return tokens


def pages(*tags: str) -> APIRouter:
    """A router of pages: out of the OpenAPI document, and every route runs `page_session` first."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(page_session, scope="function")],
                     tags=list(tags))

"""Who may call a route, and the one database transaction each request runs in.

Every route declares the app roles it admits with `allow(...)`. The dependency:
  1. verifies the bearer token (no database needed);
  2. applies the route's rate limit in its own committed transaction, so a request that
     later fails still counts;
  3. opens the request transaction and, in one round trip, switches to `anon` /
     `authenticated` with transaction-local claims and reads the caller's app role
     from the database (so blocks, logouts and demotions apply at once);
  4. refuses callers outside the declared roles, then commits or rolls back.
A registry of these declarations feeds `samia parity`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from psycopg import AsyncConnection
from pydantic import SecretStr

from samia.core.platform import Platform
from samia.core.problems import AppError, from_db_error
from samia.core.tokens import Claims, decode_access

if TYPE_CHECKING:
    from fastapi import FastAPI

log = structlog.get_logger("samia.access")

PUBLIC = "public"                 # anyone, signed in or not
AUTHENTICATED = "authenticated"   # any signed-in, active user
APP_ROLES = ("superadmin", "admin", "reader", "monitor", "client")
ADMINS = ("admin", "superadmin")
STAFF = ("monitor", *ADMINS)

PRELUDE = ("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true), "
           "set_config('request.id', %s, true), app.request_identity()")
ANON_CLAIMS = json.dumps({"role": "anon"})


@dataclass(frozen=True)
class Probe:
    """What a route needs from the database, run under each app role by `samia parity`.

    The role is permitted when the statement raises nothing and touches at least one
    row. `:other` in the SQL stands for another client's profile id, `:reader` for a reader
    who offers tarot around the clock, `:booking` for a confirmed booking of the client
    with that reader; `:order_new`, `:order_assigned`, `:order_wip` (in progress, audio
    uploaded), `:order_review`, `:order_approved`, `:order_delivered` for the client's tarot
    orders with that reader at each step, `:reading` for the new one's tarot reading,
    `:call` for the booking's live call, `:window` for the reader's requested instant window,
    `:review` for the client's review of another delivered order (the reader has a public
    profile), and `:data_request` for the other client's pending export request.
    """
    sql: str
    note: str = ""


# Probes that routes of several features share (one owner, so they cannot drift apart).
STAFF_PROBE = Probe("select 1 from moderation_actions", "staff read moderation records")
ADMIN_PROBE = Probe("update provider_toggles set enabled = enabled where provider = 'stripe'")


@dataclass(frozen=True)
class Guard:
    roles: tuple[str, ...]
    probe: Probe | None = None
    db_role: str | None = None      # e.g. samia_auth for the credential routes
    rate: str | None = None         # a name in public.rate_limits
    readonly: bool | None = None    # default: GET/HEAD are read-only transactions
    db: bool = True                 # False: the handler manages its own connection (health)
    bearer: bool = True             # False: Authorization carries a machine token the handler checks
    cookie: bool = False            # web pages: the session cookie's token counts too (never JSON API routes)

    @property
    def open(self) -> bool:
        return self.roles in ((PUBLIC,), (AUTHENTICATED,))


@dataclass
class Ctx:
    """The request's database connection (inside its transaction) and caller."""
    conn: AsyncConnection
    request: Request
    claims: Claims | None
    role: str | None
    platform: Platform
    db_role: str = "authenticated"
    after_commit: list[Any] = field(default_factory=list)
    on_rollback: list[Any] = field(default_factory=list)   # undo outside effects (a stored file)
    response: Response | None = None                        # headers the guard set (RateLimit-*)

    @property
    def user_id(self) -> str | None:
        return self.claims.sub if self.claims else None


@contextlib.asynccontextmanager
async def acting_as(ctx: Ctx, role: str) -> AsyncIterator[None]:
    """Switch the request transaction into a narrow role (e.g. samia_payments) for one step,
    with the caller's claims unchanged. No reset on error: the transaction rolls back."""
    await ctx.conn.execute("select set_config('role', %s, true)", (role,))
    yield
    await ctx.conn.execute("select set_config('role', %s, true)", (ctx.db_role,))


def machine_token(authorization: str | None, secret: SecretStr | None, setting: str) -> None:
    """A machine caller's bearer token (Prometheus, Alertmanager), compared in constant time:
    503 naming the setting while it is unset, 401 when the token is wrong."""
    if secret is None:
        raise AppError(503, "provider_not_configured", f"{setting} is not set", extra={"setting": setting})
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise AppError(401, "unauthenticated", f"Bearer {setting} required", headers={"WWW-Authenticate": "Bearer"})


def client_ip(request: Request, trust_proxy: bool) -> str:
    if trust_proxy:
        fwd = request.headers.get("x-forwarded-for")
        if fwd:
            return fwd.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def bearer_claims(request: Request, platform: Platform) -> Claims | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AppError(401, "invalid_token", "expected 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    return decode_access(platform.settings, token.strip())


def session_claims(request: Request, platform: Platform) -> Claims | None:
    """A page's caller: the access token the web session layer took from the session cookie
    (after its CSRF check on unsafe methods). Only routes declared with cookie=True read it."""
    token = getattr(request.state, "session_access", None)
    return decode_access(platform.settings, token) if token else None


async def apply_rate_limit(conn: AsyncConnection, name: str, subject: str, response: Response,
                           idempotency: tuple[str, str] | None = None) -> None:
    """Count one hit (a replay of, or a duplicate in flight with, a known Idempotency-Key of the
    caller's does not count) and set the RateLimit-* headers; 429 over the limit.

    The hit is one statement in autocommit mode: its own transaction in one round trip, kept
    even when the request fails later. Its commit does not wait for the disk (synchronous_commit
    off for that transaction alone): a server crash may forget the last instant's hits, which
    costs a counter nothing, while waiting for the WAL flush cost every limited request ~10 %."""
    user, key = idempotency or (None, None)
    await conn.set_autocommit(True)
    try:
        cur = await conn.execute("select h.*, set_config('synchronous_commit', 'off', true) "
                                 "from app.rate_limit_hit(%s, %s, %s, %s) h", (name, subject, user, key))
        allowed, limit, remaining, reset, retry_after, window, _ = await cur.fetchone()  # type: ignore[misc]
    finally:
        await conn.set_autocommit(False)
    if limit is None:
        return
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining),
               "RateLimit-Reset": str(reset), "RateLimit-Policy": f"{limit};w={window}"}
    if not allowed:
        headers["Retry-After"] = str(retry_after)
        raise AppError(429, "rate_limited", f"limit of {limit} per {window} s reached; retry in {retry_after} s",
                       headers=headers)
    response.headers.update(headers)


async def audit_refusal(conn: AsyncConnection, db_role: str, claims_json: str, rid: str,
                        err: AppError, request: Request) -> None:
    """After the rollback: record who was refused what, in a transaction of its own."""
    await conn.set_read_only(False)
    meta = {"reason": err.code, "method": request.method,
            "route": getattr(request.scope.get("route"), "path", request.url.path)}
    meta.update({k: v for k, v in (err.audit or {}).items() if k not in ("event",)})
    try:
        await conn.execute(PRELUDE, (db_role, claims_json, rid))
        await conn.execute("select app.audit(%s, 'route', %s, %s)",
                           ((err.audit or {}).get("event", "access.denied"), meta["route"], json.dumps(meta)))
        await conn.commit()
    except psycopg.Error:
        await conn.rollback()
        log.error("audit_refusal_failed", code=err.code)


def allow(*roles: str, probe: Probe | None = None, db_role: str | None = None, rate: str | None = None,
          readonly: bool | None = None, db: bool = True, bearer: bool = True, cookie: bool = False) -> Any:
    """Declare the app roles a route admits (or PUBLIC / AUTHENTICATED) and get its Ctx."""
    unknown = set(roles) - {PUBLIC, AUTHENTICATED, *APP_ROLES}
    if not roles or unknown:
        raise ValueError(f"bad role declaration {roles}")
    if (not db or not bearer) and roles != (PUBLIC,):
        raise ValueError("only public routes may run without the request transaction or a user's token")
    guard = Guard(tuple(roles), probe, db_role, rate, readonly, db, bearer, cookie)

    async def dependency(request: Request, response: Response) -> AsyncIterator[Ctx]:
        platform: Platform = request.app.state.platform
        if not guard.db:
            yield Ctx(conn=None, request=request, claims=None, role=None, platform=platform)  # type: ignore[arg-type]
            return
        claims = bearer_claims(request, platform) if guard.bearer else None
        if claims is None and guard.cookie:
            claims = session_claims(request, platform)
        if claims is None and roles != (PUBLIC,):
            raise AppError(401, "unauthenticated", headers={"WWW-Authenticate": "Bearer"})
        rid = request.state.request_id
        db = guard.db_role or ("authenticated" if claims else "anon")
        claims_json = claims.json if claims else ANON_CLAIMS
        ctx: Ctx | None = None
        async with platform.pool.connection() as conn:
            try:
                if guard.rate:
                    per_user = await _rate_scope(conn, guard.rate, platform)
                    subject = claims.sub if (per_user and claims) else client_ip(
                        request, platform.settings.trust_proxy_headers)
                    key = request.headers.get("idempotency-key")
                    await apply_rate_limit(conn, guard.rate, subject, response,
                                           (claims.sub, key) if claims and key else None)
                ro = guard.readonly if guard.readonly is not None else request.method in ("GET", "HEAD")
                await conn.set_read_only(ro)
                cur = await conn.execute(PRELUDE, (db, claims_json, rid))
                row = await cur.fetchone()
                role = row[3] if row else None
                if claims is not None and role is None:
                    raise AppError(401, "session_revoked", "the session was ended or the account is not active",
                                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
                if not guard.open and role not in roles:
                    raise AppError(403, "forbidden", audit={"event": "access.denied"})
                ctx = Ctx(conn=conn, request=request, claims=claims, role=role, platform=platform, db_role=db,
                          response=response)
                request.state.user_id = ctx.user_id
                opened = time.perf_counter()
                yield ctx
                await conn.commit()
                platform.metrics.db_tx.observe(time.perf_counter() - opened)
            except AppError as err:
                await _finish_failed(conn, err, db, claims_json, rid, request)
                if not err.keep:
                    await _undo(ctx)
                raise
            except psycopg.Error as exc:
                await conn.rollback()
                await _undo(ctx)
                mapped = from_db_error(exc)
                if mapped.status >= 500:
                    log.error("database_error", sqlstate=exc.diag.sqlstate, error_class=type(exc).__name__)
                if mapped.audit and claims is not None:
                    await audit_refusal(conn, db, claims_json, rid, mapped, request)
                raise mapped from exc
            except BaseException:
                await conn.rollback()
                await _undo(ctx)
                raise
        for hook in ctx.after_commit:
            await hook()

    dependency.__samia_guard__ = guard  # type: ignore[attr-defined]
    return Depends(dependency, scope="function")


async def _undo(ctx: Ctx | None) -> None:
    for hook in reversed(ctx.on_rollback if ctx is not None else []):
        try:
            await hook()
        except Exception:  # the rollback already happened; an orphan file is logged, not raised
            log.error("undo_failed")


async def _finish_failed(conn: AsyncConnection, err: AppError, db: str, claims_json: str, rid: str,
                         request: Request) -> None:
    if err.keep:
        await conn.commit()
        return
    await conn.rollback()
    if err.audit and claims_json != ANON_CLAIMS:
        await audit_refusal(conn, db, claims_json, rid, err, request)


async def _rate_scope(conn: AsyncConnection, name: str, platform: Platform) -> bool:
    """Whether a limit counts per user (else per client address). Cached per process."""
    cached = platform.rate_scopes.get(name)
    if cached is None:
        await conn.set_read_only(False)
        cur = await conn.execute("select app.rate_limit_scope(%s)", (name,))
        row = await cur.fetchone()
        await conn.commit()
        cached = platform.rate_scopes[name] = (row[0] if row else "ip") == "user"
    return cached


def guard_of(route: APIRoute) -> Guard | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        guard: Guard | None = getattr(dep.call, "__samia_guard__", None)
        if guard is not None:
            return guard
        stack.extend(dep.dependencies)
    return None


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, looking inside included routers (we mount them without prefixes)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(api_routes(route.original_router.routes))
    return out


def registry(app: FastAPI) -> list[tuple[str, str, Guard | None]]:
    """(method, path, guard) for every API route; a route without a guard is a finding."""
    rows = [(method, route.path, guard_of(route))
            for route in api_routes(app.routes) for method in sorted((route.methods or set()) - {"HEAD"})]
    return sorted(rows, key=lambda r: (r[1], r[0]))


"""The FastAPI application: one Platform object holds what every request shares."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from samia import db
from samia.auth.tokens import Passwords
from samia.config import Settings
from samia.core import logging as app_logging
from samia.core import problems
from samia.core.breaker import Breaker
from samia.core.middleware import RequestContext
from samia.core.problems import AppError
from samia.ops.metrics import Metrics
from samia.payments.processors import CardProcessor, make_processor
from samia.providers.email import MailboxMailer, Mailer
from samia.providers.phone import DeviceFileSink, PhoneVerifier, SmsSink, make_verifier
from samia.providers.storage import Storage, make_storage

T = TypeVar("T")
log = structlog.get_logger("samia.app")


@dataclass
class Platform:
    settings: Settings
    dsns: db.Dsns
    pool: AsyncConnectionPool
    passwords: Passwords
    mailer: Mailer
    sms_sink: SmsSink
    storage: Storage
    rate_scopes: dict[str, bool] = field(default_factory=dict)
    env_set: frozenset[str] = frozenset()       # settings the environment gave (they beat the store)
    breakers: dict[str, Breaker] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], float] = time.monotonic
    _verifier: PhoneVerifier | None = None
    _processors: dict[str, CardProcessor] = field(default_factory=dict)

    async def guarded(self, conn: AsyncConnection, provider: str, make: Callable[[], Awaitable[T]]) -> T:
        """Call an outside provider: refused while an admin has switched it off or its monthly
        budget is spent (degraded mode), and through its circuit breaker (503 without calling it
        while open); every call is counted against the budget."""
        cur = await conn.execute("select app.provider_enabled(%s), app.provider_within_budget(%s)",
                                 (provider, provider))
        enabled, within_budget = await cur.fetchone()  # type: ignore[misc]
        if enabled is False:
            raise AppError(503, "provider_disabled", f"{provider} is switched off by an admin",
                           extra={"provider": provider})
        if within_budget is False:
            raise AppError(503, "budget_exhausted", f"{provider} has used its monthly budget (degraded mode)",
                           extra={"provider": provider}, headers={"Retry-After": "3600"})
        breaker = self.breakers.setdefault(provider, Breaker(provider, clock=self.clock))
        failed = True
        try:
            result = await breaker.call(make)
            failed = False
            return result
        finally:
            await self._count_use(provider, failed)

    async def _count_use(self, provider: str, failed: bool) -> None:
        """Usage counts in a transaction of its own, so a failed request's call still counts."""
        try:
            async with self.pool.connection() as c:
                await c.execute("select set_config('role', 'service_role', true), "
                                "set_config('request.jwt.claims', '{\"actor\": \"system:usage\"}', true)")
                await c.execute("select app.provider_use(%s, %s)", (provider, failed))
                await c.commit()
        except Exception:  # counting never breaks the call it counts
            log.warning("provider_usage_not_counted", provider=provider, exc_info=True)

    def card(self) -> CardProcessor:
        """The configured card processor (built on first use: an unconfigured one answers 503)."""
        return self.processor(self.settings.card_provider)

    def square(self) -> CardProcessor:
        return self.processor("square")

    def processor(self, provider: str) -> CardProcessor:
        """The processor that handles `provider`'s money, built once per process."""
        if provider not in self._processors:
            self._processors[provider] = make_processor(self.settings, provider)
        return self._processors[provider]

    def verifier(self) -> PhoneVerifier:
        """Built on first use, so an unconfigured provider answers 503 on its own routes only."""
        if self._verifier is None:
            self._verifier = make_verifier(self.settings, self.sms_sink)
        return self._verifier


async def _reset(conn: AsyncConnection) -> None:
    """A connection goes back to the pool read-write; each borrower sets what it needs."""
    await conn.set_read_only(False)


def make_pool(settings: Settings, dsn: str) -> AsyncConnectionPool:
    kwargs = {"autocommit": False, "prepare_threshold": None if settings.db_transaction_pooler else 5}
    return AsyncConnectionPool(dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                               kwargs=kwargs, open=False, timeout=10, name="app", reset=_reset)


def create_app(settings: Settings, *, dsns: db.Dsns | None = None, mailer: Mailer | None = None,
               sms_sink: SmsSink | None = None) -> FastAPI:
    app_logging.configure(settings.log_level)
    dsns = dsns or db.resolve(settings)
    platform = Platform(
        settings=settings, dsns=dsns, pool=make_pool(settings, dsns.app),
        passwords=Passwords(settings),
        mailer=mailer or MailboxMailer(settings.data_dir / "mail"),
        sms_sink=sms_sink or DeviceFileSink(settings.data_dir / "dev-phone"),
        storage=make_storage(settings),
        env_set=frozenset(f.alias for n, f in type(settings).model_fields.items()
                          if f.alias and getattr(settings, n) is not None),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.pool.open(wait=True)
        try:
            from samia.ops.secrets import apply_stored

            applied = await apply_stored(platform)
            if applied:
                log.info("settings_from_secret_store", names=applied)
        except Exception:  # a store that cannot be read leaves the environment's settings as they are
            log.warning("secret_store_unreadable", exc_info=True)
        try:
            yield
        finally:
            await platform.pool.close()
            if platform._verifier is not None:
                platform._verifier.close()

    app = FastAPI(title="Samia Tarot API", version="0.1.0", lifespan=lifespan, responses=problems.RESPONSES,
                  description="Back end of the Samia Tarot readings marketplace. Errors are RFC 9457 "
                              "problem+json; bearer tokens in Authorization.")
    app.state.platform = platform
    problems.install(app)

    from samia.audit.api import router as audit_router
    from samia.auth.api import router as auth_router
    from samia.bookings.api import router as bookings_router
    from samia.calls.api import router as calls_router
    from samia.finance.api import router as finance_router
    from samia.jobs.api import router as jobs_router
    from samia.media.api import router as media_router
    from samia.moderation.api import router as moderation_router
    from samia.ops.api import router as ops_router
    from samia.ops.flags import router as flags_router
    from samia.ops.incidents import router as incidents_router
    from samia.ops.metrics import router as metrics_router
    from samia.ops.providers import router as providers_router
    from samia.ops.runbooks import router as runbooks_router
    from samia.ops.secrets import router as secrets_router
    from samia.orders.api import router as orders_router
    from samia.payments.api import router as payments_router
    from samia.payments.webhooks import router as webhooks_router
    from samia.profiles.api import router as profiles_router
    from samia.readings.api import router as readings_router
    from samia.users.api import router as users_router

    for router in (auth_router, profiles_router, users_router, ops_router, jobs_router, bookings_router,
                   payments_router, webhooks_router, finance_router, flags_router,
                   providers_router, metrics_router, runbooks_router, orders_router, readings_router, media_router,
                   moderation_router, audit_router, calls_router, incidents_router, secrets_router):
        app.include_router(router)
    from samia.web import install as install_web

    install_web(app)  # the client's pages, static files, page-aware errors, security headers
    app.add_middleware(RequestContext, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes,
                       metrics=platform.metrics)
    return app


def from_env() -> FastAPI:
    """uvicorn factory (`samia serve`, workers): settings and DSNs from the environment."""
    from samia.cli import load_settings

    return create_app(load_settings())

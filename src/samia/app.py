"""The FastAPI application: the Platform (core.platform) built with this deployment's providers,
and every feature's routes mounted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp

from samia import db
from samia.config import Settings, load_settings
from samia.core import headers, problems
from samia.core import logging as app_logging
from samia.core.middleware import RequestContext
from samia.core.platform import Platform
from samia.core.ports import Mailer, SmsSink
from samia.core.routing import index_routers
from samia.core.tokens import Passwords
from samia.payments.processors import make_processor
from samia.providers.email import MailboxMailer
from samia.providers.phone import DeviceFileSink, make_verifier
from samia.providers.storage import make_storage
from samia.web.headers import PageCookies

log = structlog.get_logger("samia.app")


class App(FastAPI):
    """FastAPI whose edge (core.headers: CORS, security headers, HTTPS redirect) wraps the whole
    stack, Starlette's ServerErrorMiddleware included: a raw 500 and the 413 that RequestContext
    answers before any route runs carry the headers too (a middleware added with add_middleware
    sits inside ServerErrorMiddleware). Inside it, the cookies pages queued are written."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.platform.settings
        return headers.edge(PageCookies(super().build_middleware_stack()), settings)


async def _reset(conn: AsyncConnection) -> None:
    """A connection goes back to the pool read-write; each borrower sets what it needs."""
    await conn.set_read_only(False)


def make_pool(settings: Settings, dsn: str) -> AsyncConnectionPool:
    return AsyncConnectionPool(dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                               kwargs=db.pool_kwargs(settings), open=False, timeout=10, name="app", reset=_reset)


def create_app(settings: Settings, *, dsns: db.Dsns | None = None, mailer: Mailer | None = None,
               sms_sink: SmsSink | None = None) -> FastAPI:
    app_logging.configure(settings.log_level)
    dsns = dsns or db.resolve(settings)
    platform = Platform(
        settings=settings, dsns=dsns, pool=make_pool(settings, dsns.app),
        passwords=Passwords(settings),
        mailer=mailer or MailboxMailer(settings.data_dir / "mail"),
        sms_sink=sms_sink or DeviceFileSink(settings.data_dir / "dev-phone"),
        storage=make_storage(settings), make_processor=make_processor, make_verifier=make_verifier,
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

    app = App(title="Samia Tarot API", version="0.1.0", lifespan=lifespan, responses=problems.RESPONSES,
                  description="Back end of the Samia Tarot readings marketplace. Errors are RFC 9457 "
                              "problem+json; bearer tokens in Authorization.")
    app.state.platform = platform
    problems.install(app)

    from samia.analytics.api import router as analytics_router
    from samia.audit.api import router as audit_router
    from samia.auth.api import router as auth_router
    from samia.bookings.api import router as bookings_router
    from samia.calls.api import router as calls_router
    from samia.calls.availability import router as availability_router
    from samia.calls.emergency import router as emergency_router
    from samia.calls.monitor import router as call_monitor_router
    from samia.calls.safety import router as call_safety_router
    from samia.calls.webhooks import router as voice_webhooks_router
    from samia.catalogue.api import router as catalogue_router
    from samia.finance.api import router as finance_router
    from samia.horoscopes.api import router as horoscopes_router
    from samia.jobs.api import router as jobs_router
    from samia.media.api import router as media_router
    from samia.moderation.api import router as moderation_router
    from samia.notifications.api import router as notifications_router
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
    from samia.privacy.api import router as privacy_router
    from samia.profiles.api import router as profiles_router
    from samia.readings.api import router as readings_router
    from samia.users.api import router as users_router

    for router in (auth_router, profiles_router, users_router, ops_router, jobs_router, bookings_router,
                   payments_router, webhooks_router, finance_router, flags_router,
                   providers_router, metrics_router, runbooks_router, orders_router, readings_router, media_router,
                   moderation_router, audit_router, calls_router, voice_webhooks_router, availability_router,
                   emergency_router, call_monitor_router, call_safety_router, incidents_router, secrets_router,
                   catalogue_router, privacy_router, analytics_router, notifications_router, horoscopes_router):
        app.include_router(router)
    from samia.web import install as install_web

    install_web(app)  # the client's pages, static files and page-aware errors
    index_routers(app)  # skip feature routers that cannot match the path (core/routing.py)
    app.add_middleware(RequestContext, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes,
                       metrics=platform.metrics)
    return app


def from_env() -> FastAPI:
    """uvicorn factory (`samia serve`, workers): settings and DSNs from the environment."""
    return create_app(load_settings())

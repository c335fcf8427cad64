"""The Platform: what every request and task of one process shares (settings, the pool,
providers, breakers, metrics), and the one way to call an outside provider (`guarded`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from samia import db
from samia.config import Settings
from samia.core.breaker import Breaker
from samia.core.metrics import Metrics
from samia.core.ports import CardProcessor, Mailer, PhoneVerifier, SmsSink, Storage
from samia.core.problems import AppError
from samia.core.tokens import Passwords

T = TypeVar("T")
log = structlog.get_logger("samia.platform")


@dataclass
class Platform:
    settings: Settings
    dsns: db.Dsns
    pool: AsyncConnectionPool
    passwords: Passwords
    mailer: Mailer
    sms_sink: SmsSink
    storage: Storage
    # how providers are built on first use (app.create_app passes the real factories)
    make_processor: Callable[[Settings, str], CardProcessor]
    make_verifier: Callable[[Settings, SmsSink], PhoneVerifier]
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
            self._processors[provider] = self.make_processor(self.settings, provider)
        return self._processors[provider]

    def verifier(self) -> PhoneVerifier:
        """Built on first use, so an unconfigured provider answers 503 on its own routes only."""
        if self._verifier is None:
            self._verifier = self.make_verifier(self.settings, self.sms_sink)
        return self._verifier

    def use_settings(self, settings: Settings) -> None:
        """New settings (the secret store filled some in): providers built from the old ones
        are dropped, so the next call builds them again."""
        self.settings = settings
        self._processors.clear()
        self._verifier = None

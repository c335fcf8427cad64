"""Circuit breakers, one per outside provider (seeds 001 M28): closed → open after N provider
failures in a row → half-open after a cool-down, when one trial call decides. While open,
calls answer 503 without reaching the provider. Only provider failures count (a declined
card is an answer, not a failure). State is per process, like any client-side breaker; the
admin on/off switch lives in the database (provider_toggles)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from samia.core.problems import AppError

T = TypeVar("T")


@dataclass
class Breaker:
    name: str
    threshold: int = 5
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = field(default=False, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.cooldown else "open"

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        state = self.state
        if state == "open" or (state == "half_open" and self.trial_running):
            retry = max(1, int(self.cooldown - (self.clock() - (self.opened_at or 0))))
            raise AppError(503, "provider_unavailable", f"{self.name} is failing; calls are paused (circuit open)",
                           headers={"Retry-After": str(retry)}, extra={"provider": self.name})
        self.trial_running = state == "half_open"
        try:
            result = await make()
        except AppError as e:
            if e.status == 503:
                self._failed()
            raise
        except Exception:
            self._failed()
            raise
        finally:
            self.trial_running = False
        self.failures, self.opened_at = 0, None
        return result

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()

"""Card processors behind one interface. The local default is a test processor that
answers like Stripe's test tokens (no network); the Stripe adapter uses the official SDK."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar, Protocol

from samia.config import Settings
from samia.core.problems import AppError


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    ref: str | None
    reason: str = ""


class CardProcessor(Protocol):
    name: str

    async def charge(self, *, amount_minor: int, currency: str, token: str, idempotency_key: str) -> ChargeResult: ...


class TestCardProcessor:
    """Stripe's test tokens: tok_visa / tok_mastercard succeed, tok_chargeDeclined and
    tok_insufficientFunds fail. The same idempotency key returns the same result."""
    name = "testcard"
    DECLINES: ClassVar[dict[str, str]] = {"tok_chargeDeclined": "card declined",
                                          "tok_insufficientFunds": "insufficient funds on the card"}

    def __init__(self) -> None:
        self.charges: dict[str, ChargeResult] = {}

    async def charge(self, *, amount_minor: int, currency: str, token: str, idempotency_key: str) -> ChargeResult:
        if idempotency_key in self.charges:
            return self.charges[idempotency_key]
        if token in self.DECLINES:
            result = ChargeResult(False, None, self.DECLINES[token])
        elif token in ("tok_visa", "tok_mastercard"):
            result = ChargeResult(True, f"tc_{uuid.uuid4().hex}")  # unique across processes, like a real one
        else:
            raise AppError(422, "validation_error", "unknown card token",
                           extra={"errors": [{"loc": ["body", "card_token"], "msg": "unknown token",
                                              "type": "value_error"}]})
        self.charges[idempotency_key] = result
        return result


def make_card_processor(settings: Settings) -> CardProcessor:
    if settings.env == "prod":
        raise AppError(503, "provider_not_configured", "card payments need STRIPE_API_KEY",
                       extra={"setting": "STRIPE_API_KEY"})
    return TestCardProcessor()

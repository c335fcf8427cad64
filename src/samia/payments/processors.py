"""Card processors behind one interface. The local default is a test processor that
answers like Stripe's test tokens (no network); the Stripe adapter uses the official SDK."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import ClassVar, TypeVar

import stripe
from anyio import to_thread

from samia.config import Settings
from samia.core.ports import CardProcessor, ChargeResult
from samia.core.problems import AppError, invalid

T = TypeVar("T")


class TestCardProcessor:
    """Stripe's documented test tokens and PaymentMethods, answered as Stripe answers them
    (https://docs.stripe.com/testing): the ones in APPROVED succeed, the ones in DECLINES fail
    with that reason; anything else is refused as unknown. The same idempotency key returns the
    same result."""
    name = "testcard"
    APPROVED: ClassVar[frozenset[str]] = frozenset({
        "tok_visa", "tok_visa_debit", "tok_mastercard", "tok_mastercard_debit", "tok_amex", "tok_discover",
        "pm_card_visa", "pm_card_visa_debit", "pm_card_mastercard", "pm_card_mastercard_debit", "pm_card_amex",
        "pm_card_discover"})
    DECLINES: ClassVar[dict[str, str]] = {
        "tok_chargeDeclined": "card declined", "pm_card_chargeDeclined": "card declined",
        "tok_insufficientFunds": "insufficient funds on the card",
        "tok_chargeDeclinedInsufficientFunds": "insufficient funds on the card",
        "pm_card_chargeDeclinedInsufficientFunds": "insufficient funds on the card",
        "tok_chargeDeclinedExpiredCard": "the card has expired",
        "pm_card_chargeDeclinedExpiredCard": "the card has expired",
        "tok_chargeDeclinedIncorrectCvc": "incorrect CVC", "pm_card_chargeDeclinedIncorrectCvc": "incorrect CVC"}

    def __init__(self) -> None:
        self.charges: dict[str, ChargeResult] = {}
        self.refunds: dict[str, str] = {}

    async def charge(self, *, amount_minor: int, currency: str, token: str, idempotency_key: str) -> ChargeResult:
        if idempotency_key in self.charges:
            return self.charges[idempotency_key]
        if token in self.DECLINES:
            result = ChargeResult(False, None, self.DECLINES[token])
        elif token in self.APPROVED:
            result = ChargeResult(True, f"tc_{uuid.uuid4().hex}")  # unique across processes, like a real one
        else:
            raise invalid(["body", "card_token"], "unknown card token", detail=(
                "the local test processor takes Stripe's test cards: " + ", ".join(sorted(self.APPROVED))
                + "; declines: " + ", ".join(sorted(self.DECLINES))))
        self.charges[idempotency_key] = result
        return result

    async def refund(self, *, charge_ref: str, amount_minor: int, idempotency_key: str) -> str:
        if idempotency_key not in self.refunds:
            self.refunds[idempotency_key] = f"rf_{uuid.uuid4().hex}"
        return self.refunds[idempotency_key]


class StripeProcessor:
    """PaymentIntents through the official SDK. The client's Idempotency-Key is passed to
    Stripe, so a retried request can never create a second charge there either."""
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        if settings.stripe_api_key is None:
            raise AppError(503, "provider_not_configured", "card payments need STRIPE_API_KEY",
                           extra={"setting": "STRIPE_API_KEY"})
        self._client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(), max_network_retries=settings.stripe_max_retries,
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None)

    async def charge(self, *, amount_minor: int, currency: str, token: str, idempotency_key: str) -> ChargeResult:
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": amount_minor, "currency": currency.lower(), "payment_method": token, "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}}

        def create() -> ChargeResult:
            try:
                intent = self._client.v1.payment_intents.create(
                    params=params, options={"idempotency_key": idempotency_key})
            except stripe.CardError as e:
                return ChargeResult(False, None, e.user_message or "card declined")
            if intent.status == "succeeded":
                return ChargeResult(True, intent.id)
            if intent.status in ("requires_action", "processing", "requires_confirmation"):
                return ChargeResult(None, intent.id, "", intent.client_secret)
            return ChargeResult(False, intent.id, f"payment {intent.status}")

        return await self._call(create)

    async def refund(self, *, charge_ref: str, amount_minor: int, idempotency_key: str) -> str:
        def create() -> str:
            refund = self._client.v1.refunds.create(params={"payment_intent": charge_ref, "amount": amount_minor},
                                                    options={"idempotency_key": idempotency_key})
            return str(refund.id)
        return await self._call(create)

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await to_thread.run_sync(fn)
        except stripe.StripeError as e:
            raise AppError(503, "provider_unavailable", "the card processor did not answer",
                           headers={"Retry-After": "30"}) from e


def make_processor(settings: Settings, provider: str) -> CardProcessor:
    """The processor that handles `provider`'s money: Square, or the configured card processor."""
    if provider == "square":
        from samia.payments.square import SquareProcessor

        return SquareProcessor(settings)
    processor = make_card_processor(settings)
    if processor.name != provider:
        raise AppError(503, "provider_not_configured",
                       f"this charge was made through {provider}, which is not the configured card processor",
                       extra={"setting": "CARD_PROVIDER"})
    return processor


def make_card_processor(settings: Settings) -> CardProcessor:
    if settings.card_provider == "stripe":
        return StripeProcessor(settings)
    if settings.env == "prod":
        raise AppError(503, "provider_not_configured", "card payments need CARD_PROVIDER=stripe and STRIPE_API_KEY",
                       extra={"setting": "STRIPE_API_KEY"})
    return TestCardProcessor()

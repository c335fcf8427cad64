"""Square through its official SDK: card payments from a Web Payments SDK nonce, refunds,
and webhook signatures checked with the SDK's own helper."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from anyio import to_thread
from square import Square
from square.core.api_error import ApiError
from square.utils.webhooks_helper import verify_signature

from samia.config import Settings
from samia.core.ports import ChargeResult
from samia.core.problems import AppError

T = TypeVar("T")


def _key(idempotency_key: str) -> str:
    """Square accepts at most 45 characters; a digest keeps retries of one request identical."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:45]


class SquareProcessor:
    name = "square"

    def __init__(self, settings: Settings) -> None:
        for setting, value in (("SQUARE_ACCESS_TOKEN", settings.square_access_token),
                               ("SQUARE_LOCATION_ID", settings.square_location_id)):
            if value is None:
                raise AppError(503, "provider_not_configured", f"Square payments need {setting}",
                               extra={"setting": setting})
        assert settings.square_access_token is not None
        self._client = Square(token=settings.square_access_token.get_secret_value(), timeout=15,
                              base_url=settings.square_base_url or None)
        self._location = settings.square_location_id

    async def charge(self, *, amount_minor: int, currency: str, token: str, idempotency_key: str) -> ChargeResult:
        def create() -> ChargeResult:
            try:
                res = self._client.payments.create(
                    source_id=token, idempotency_key=_key(idempotency_key), location_id=self._location,
                    amount_money={"amount": amount_minor, "currency": currency.upper()}, autocomplete=True)
            except ApiError as e:
                if e.status_code in (400, 402):
                    errors = (e.body or {}).get("errors") or [{}]
                    return ChargeResult(False, None, errors[0].get("detail") or "card declined")
                raise
            payment = res.payment
            if payment is not None and payment.status == "COMPLETED":
                return ChargeResult(True, payment.id)
            return ChargeResult(False, payment.id if payment else None, f"payment {payment.status if payment else '?'}")
        return await self._call(create)

    async def refund(self, *, charge_ref: str, amount_minor: int, idempotency_key: str) -> str:
        def create() -> str:
            res = self._client.refunds.refund_payment(idempotency_key=_key(idempotency_key), payment_id=charge_ref,
                                                      amount_money={"amount": amount_minor, "currency": "USD"})
            return str(res.refund.id)
        return await self._call(create)

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await to_thread.run_sync(fn)
        except (ApiError, OSError) as e:
            raise AppError(503, "provider_unavailable", "Square did not answer", headers={"Retry-After": "30"}) from e


def verify(settings: Settings, body: bytes, signature: str | None) -> None:
    if settings.square_webhook_signature_key is None:
        raise AppError(503, "provider_not_configured", "Square webhooks need SQUARE_WEBHOOK_SIGNATURE_KEY",
                       extra={"setting": "SQUARE_WEBHOOK_SIGNATURE_KEY"})
    url = settings.square_webhook_url or f"{settings.public_base_url}/webhooks/square"
    try:
        ok = bool(signature) and verify_signature(request_body=body.decode(), signature_header=signature or "",
                                                  signature_key=settings.square_webhook_signature_key.get_secret_value(),
                                                  notification_url=url)
    except (UnicodeDecodeError, ValueError):
        ok = False
    if not ok:
        raise AppError(400, "invalid_signature", "x-square-hmacsha256-signature does not match this body")

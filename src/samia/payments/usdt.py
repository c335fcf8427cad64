"""USDT through a crypto payment processor (NOWPayments-compatible HTTP API): an invoice the
client pays from their wallet, then a signed IPN callback settles or fails the charge.

The callback's `x-nowpayments-sig` is an HMAC-SHA512, keyed with the IPN secret, of the JSON
body with its keys sorted; it is compared in constant time before anything is written."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import httpx

from samia.config import Settings
from samia.core.problems import AppError

SETTLED = {"finished", "confirmed"}
FAILED = {"failed", "expired", "refunded"}


@dataclass(frozen=True)
class Invoice:
    id: str
    url: str


def _require(settings: Settings, name: str, value: object) -> None:
    if value is None:
        raise AppError(503, "provider_not_configured", f"USDT payments need {name}", extra={"setting": name})


async def create_invoice(settings: Settings, *, txn_id: int, amount_minor: int, currency: str,
                         idempotency_key: str) -> Invoice:
    _require(settings, "USDT_API_KEY", settings.usdt_api_key)
    assert settings.usdt_api_key is not None
    body = {"price_amount": f"{amount_minor / 100:.2f}", "price_currency": currency.lower(),
            "pay_currency": settings.usdt_pay_currency, "order_id": str(txn_id),
            "ipn_callback_url": f"{settings.public_base_url}/webhooks/usdt"}
    try:
        async with httpx.AsyncClient(base_url=settings.usdt_api_base, timeout=15) as http:
            r = await http.post("/v1/invoice", json=body, headers={
                "x-api-key": settings.usdt_api_key.get_secret_value(), "Idempotency-Key": idempotency_key})
    except httpx.HTTPError as e:
        raise AppError(503, "provider_unavailable", "the USDT processor did not answer",
                       headers={"Retry-After": "30"}) from e
    if r.status_code >= 400:
        raise AppError(503, "provider_unavailable", "the USDT processor refused the invoice")
    data = r.json()
    return Invoice(str(data["id"]), str(data["invoice_url"]))


def signature(secret: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha512).hexdigest()


def verify(settings: Settings, raw: bytes, given: str | None) -> dict[str, Any]:
    _require(settings, "USDT_IPN_SECRET", settings.usdt_ipn_secret)
    assert settings.usdt_ipn_secret is not None
    try:
        payload = json.loads(raw)
    except ValueError as e:
        raise AppError(400, "invalid_signature", "the body is not JSON") from e
    if not isinstance(payload, dict) or not given:
        raise AppError(400, "invalid_signature", "missing x-nowpayments-sig")
    expected = signature(settings.usdt_ipn_secret.get_secret_value(), payload)
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise AppError(400, "invalid_signature", "x-nowpayments-sig does not match this body")
    return payload

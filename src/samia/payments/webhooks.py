"""Provider webhooks. Each is anonymous at the HTTP level and authenticated by its signature,
checked with the provider's own SDK before anything is written; then it runs as the narrow
samia_payments role. Every event is applied once: a replay answers 200 and changes nothing."""

from __future__ import annotations

import json
from typing import Annotated

import stripe
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from samia.core.access import PUBLIC, Ctx, allow
from samia.core.problems import AppError
from samia.payments import square, usdt

router = APIRouter(tags=["payments"])


class WebhookOut(BaseModel):
    status: str  # applied | duplicate | ignored | amount_mismatch


async def _apply(ctx: Ctx, provider: str, event_id: str, kind: str, ref: str, outcome: str | None,
                 reason: str | None = None, amount: int | None = None, currency: str | None = None) -> WebhookOut:
    """Record the (verified) event once and apply its outcome to the charge: one SQL call.
    A "paid" outcome settles only for the amount and currency the charge asked for."""
    cur = await ctx.conn.execute("select app.apply_payment_event(%s, %s, %s, %s, %s, %s, %s, %s)",
                                 (provider, event_id, kind, ref, outcome, reason, amount, currency))
    return WebhookOut(status=(await cur.fetchone())[0])  # type: ignore[index]


@router.post("/webhooks/stripe", response_model=WebhookOut)
async def stripe_webhook(request: Request, stripe_signature: Annotated[str | None, Header()] = None,
                         ctx: Ctx = allow(PUBLIC, db_role="samia_payments")) -> WebhookOut:
    secret = ctx.platform.settings.stripe_webhook_secret
    if secret is None:
        raise AppError(503, "provider_not_configured", "Stripe webhooks need STRIPE_WEBHOOK_SECRET",
                       extra={"setting": "STRIPE_WEBHOOK_SECRET"})
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(payload, stripe_signature, secret.get_secret_value())
    except (ValueError, stripe.SignatureVerificationError) as e:
        raise AppError(400, "invalid_signature", "the Stripe-Signature header does not match this body") from e
    intent = event.data.object.to_dict()
    outcome = {"payment_intent.succeeded": "settled", "payment_intent.payment_failed": "failed"}.get(event.type)
    reason = None
    if outcome == "failed":
        reason = (intent.get("last_payment_error") or {}).get("message")
    return await _apply(ctx, "stripe", event.id, event.type, intent["id"], outcome, reason,
                        _int(intent.get("amount_received")), intent.get("currency"))


@router.post("/webhooks/usdt", response_model=WebhookOut)
async def usdt_webhook(request: Request, x_nowpayments_sig: Annotated[str | None, Header()] = None,
                       ctx: Ctx = allow(PUBLIC, db_role="samia_payments")) -> WebhookOut:
    """The crypto processor's IPN: HMAC-SHA512 over the key-sorted JSON (constant-time check).
    A status is applied once per payment; partial payments wait for the rest."""
    payload = usdt.verify(ctx.platform.settings, await request.body(), x_nowpayments_sig)
    invoice, state = str(payload.get("invoice_id") or ""), str(payload.get("payment_status") or "")
    if not invoice or not state:
        raise AppError(422, "validation_error", "invoice_id and payment_status are required")
    outcome = "settled" if state in usdt.SETTLED else "failed" if state in usdt.FAILED else None
    price = payload.get("price_amount")
    amount = round(float(price) * 100) if _number(price) else None  # type: ignore[arg-type]
    return await _apply(ctx, "usdt", f"{payload.get('payment_id', invoice)}:{state}", state, invoice, outcome,
                        f"crypto payment {state}", amount, str(payload.get("price_currency") or "usd"))


@router.post("/webhooks/square", response_model=WebhookOut)
async def square_webhook(request: Request,
                         x_square_hmacsha256_signature: Annotated[str | None, Header()] = None,
                         ctx: Ctx = allow(PUBLIC, db_role="samia_payments")) -> WebhookOut:
    """Square's payment.updated events, verified with the SDK's signature helper, once each."""
    raw = await request.body()
    square.verify(ctx.platform.settings, raw, x_square_hmacsha256_signature)
    try:
        event = json.loads(raw)
        payment = event["data"]["object"]["payment"]
        event_id, kind = str(event["event_id"]), str(event["type"])
        ref, state = str(payment["id"]), str(payment["status"])
        money = payment.get("amount_money") or {}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise AppError(422, "validation_error", "not a Square payment event") from e
    outcome = "settled" if state == "COMPLETED" else "failed" if state in ("FAILED", "CANCELED") else None
    return await _apply(ctx, "square", event_id, kind, ref, outcome, f"Square payment {state.lower()}",
                        _int(money.get("amount")), money.get("currency"))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False

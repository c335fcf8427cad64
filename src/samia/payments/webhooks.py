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
    status: str  # applied | duplicate | ignored


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
    cur = await ctx.conn.execute("select app.record_webhook('stripe', %s, %s)", (event.id, event.type))
    if not (await cur.fetchone())[0]:  # type: ignore[index]
        return WebhookOut(status="duplicate")
    intent = event.data.object
    if event.type == "payment_intent.succeeded":
        await ctx.conn.execute("select app.settle_by_ref('stripe', %s)", (intent.id,))
        return WebhookOut(status="applied")
    if event.type == "payment_intent.payment_failed":
        error = intent.to_dict().get("last_payment_error") or {}
        await ctx.conn.execute("select app.fail_by_ref('stripe', %s, %s)",
                               (intent.id, error.get("message") or "payment failed"))
        return WebhookOut(status="applied")
    return WebhookOut(status="ignored")


@router.post("/webhooks/usdt", response_model=WebhookOut)
async def usdt_webhook(request: Request, x_nowpayments_sig: Annotated[str | None, Header()] = None,
                       ctx: Ctx = allow(PUBLIC, db_role="samia_payments")) -> WebhookOut:
    """The crypto processor's IPN: HMAC-SHA512 over the key-sorted JSON (constant-time check).
    A status is applied once per payment; partial payments wait for the rest."""
    payload = usdt.verify(ctx.platform.settings, await request.body(), x_nowpayments_sig)
    invoice, state = str(payload.get("invoice_id") or ""), str(payload.get("payment_status") or "")
    if not invoice or not state:
        raise AppError(422, "validation_error", "invoice_id and payment_status are required")
    event = f"{payload.get('payment_id', invoice)}:{state}"
    cur = await ctx.conn.execute("select app.record_webhook('usdt', %s, %s)", (event, state))
    if not (await cur.fetchone())[0]:  # type: ignore[index]
        return WebhookOut(status="duplicate")
    if state in usdt.SETTLED:
        await ctx.conn.execute("select app.settle_by_ref('usdt', %s)", (invoice,))
        return WebhookOut(status="applied")
    if state in usdt.FAILED:
        await ctx.conn.execute("select app.fail_by_ref('usdt', %s, %s)", (invoice, f"crypto payment {state}"))
        return WebhookOut(status="applied")
    return WebhookOut(status="ignored")


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
    except (ValueError, KeyError, TypeError) as e:
        raise AppError(422, "validation_error", "not a Square payment event") from e
    cur = await ctx.conn.execute("select app.record_webhook('square', %s, %s)", (event_id, kind))
    if not (await cur.fetchone())[0]:  # type: ignore[index]
        return WebhookOut(status="duplicate")
    if state == "COMPLETED":
        await ctx.conn.execute("select app.settle_by_ref('square', %s)", (ref,))
        return WebhookOut(status="applied")
    if state in ("FAILED", "CANCELED"):
        await ctx.conn.execute("select app.fail_by_ref('square', %s, %s)", (ref, f"Square payment {state.lower()}"))
        return WebhookOut(status="applied")
    return WebhookOut(status="ignored")

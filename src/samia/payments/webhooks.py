"""Provider webhooks. Each is anonymous at the HTTP level and authenticated by its signature,
checked with the provider's own SDK before anything is written; then it runs as the narrow
samia_payments role. Every event is applied once: a replay answers 200 and changes nothing."""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from samia.core.access import PUBLIC, Ctx, allow
from samia.core.problems import AppError

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

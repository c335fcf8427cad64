"""Messaging routes: a user's devices, consents and sends; admins' suppressions, dead letter
and campaigns; the signed webhooks of Twilio (inbound STOP/START/HELP, delivery status) and
of Amazon SES through SNS (bounces, complaints, deliveries). Rules live in
schema/13_notifications.sql; the engine in outbox.py."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from psycopg.rows import dict_row
from pydantic import Field

from samia.core.access import ADMIN_PROBE, ADMINS, AUTHENTICATED, PUBLIC, Ctx, Probe, allow
from samia.core.models import Input
from samia.core.problems import not_found
from samia.notifications import campaigns, prefs
from samia.notifications.campaigns import CampaignIn
from samia.providers.ses import make_sns_verifier, parse_ses
from samia.providers.sms import INBOUND_PATH, STATUS_CALLBACK_PATH, parse_inbound, parse_status, verify_twilio

router = APIRouter(tags=["notifications"])

ConsentChannel = Literal["email", "push", "sms", "whatsapp"]
SES_PATH = "/webhooks/ses"
CAMPAIGN_PROBE = ADMIN_PROBE


# ─── a user's own ────────────────────────────────────────────────────────────────────────
class DeviceIn(Input):
    kind: Literal["webpush", "fcm", "apns"]
    # Web Push: the browser's PushSubscription.toJSON(); FCM / APNs: the device token
    subscription: dict[str, Any] | None = None
    token: Annotated[str, Field(min_length=8, max_length=4096)] | None = None
    label: Annotated[str, Field(max_length=100)] | None = None


@router.post("/me/devices", status_code=status.HTTP_201_CREATED)
async def add_device(body: DeviceIn, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """Register a web-push subscription, FCM token or APNs token for the caller."""
    address = prefs.device_address(ctx.platform.settings, body.kind, body.subscription, body.token)
    return {"id": await prefs.register_device(ctx.conn, body.kind, address, body.label), "kind": body.kind,
            "label": body.label}


@router.delete("/me/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def remove_device(device_id: Annotated[int, Field(ge=1, le=2**63 - 1)],
                        ctx: Ctx = allow(AUTHENTICATED)) -> Response:
    if not await prefs.remove_device(ctx.conn, device_id):
        raise not_found("device")
    return Response(status_code=204)


class ConsentIn(Input):
    channel: ConsentChannel


@router.post("/me/notifications/opt-in")
async def opt_in(body: ConsentIn, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """Marketing on this channel (and, for SMS/WhatsApp, everyday messages too). A carrier
    STOP is lifted only by replying START, as the carriers require."""
    return await prefs.set_consent(ctx.conn, body.channel, True, "api")


@router.post("/me/notifications/opt-out")
async def opt_out(body: ConsentIn, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """Applies to the next send: queued marketing is re-checked when it goes."""
    return await prefs.set_consent(ctx.conn, body.channel, False, "api")


@router.get("/me/notifications")
async def my_notifications(limit: Annotated[int, Query(ge=1, le=200)] = 50,
                           ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """The caller's last sends (newest first, titled in their language), consents, devices and
    quiet hours."""
    return await prefs.overview(ctx.conn, limit, await prefs.language(ctx.conn))


# ─── admins ──────────────────────────────────────────────────────────────────────────────
class SuppressionIn(Input):
    action: Literal["add", "remove"]
    channel: Literal["email", "sms", "whatsapp"]
    address: Annotated[str, Field(min_length=3, max_length=320)]
    note: Annotated[str, Field(max_length=300)] | None = None


SUPPRESSION_PROBE = Probe("insert into suppressions (channel, address_hash, reason) "
                          "values ('sms', repeat('0', 64), 'manual')")


@router.post("/admin/suppressions")
async def suppression(body: SuppressionIn, ctx: Ctx = allow(*ADMINS, probe=SUPPRESSION_PROBE)) -> dict[str, Any]:
    """Add a manual suppression, or remove one (an override of a bounce or complaint too);
    audited without the address (suppressions are keyed by its hash)."""
    address = body.address.strip().lower() if body.channel == "email" else body.address.strip()
    if body.action == "add":
        cur = await ctx.conn.execute(
            "insert into suppressions (channel, address_hash, reason, note, created_by) "
            "values (%s, app.address_hash(%s), 'manual', %s, auth.uid()) on conflict do nothing returning id",
            (body.channel, address, body.note))
    else:
        cur = await ctx.conn.execute("delete from suppressions where channel = %s and address_hash = "
                                     "app.address_hash(%s) returning id", (body.channel, address))
    changed = await cur.fetchone() is not None
    await ctx.conn.execute("select app.audit(%s, 'suppression', %s, %s)",
                           (f"messaging.suppression_{body.action}", body.channel,
                            json.dumps({"changed": changed, "note": body.note is not None})))
    return {"action": body.action, "channel": body.channel, "changed": changed}


@router.get("/admin/notifications/dead-letter")
async def dead_letter(limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> list[dict[str, Any]]:
    """Sends that will not be tried again (N failed tries, a permanent refusal, or an outcome
    lost with a worker): what, to whom (an id), why."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select id, recipient_id::text, channel, template, attempts, error, updated_at "
                      "from notification_sends where dead_letter order by id desc limit %s", (limit,))
    return await cur.fetchall()


@router.post("/admin/campaigns", status_code=status.HTTP_201_CREATED)
async def create_campaign(body: CampaignIn, ctx: Ctx = allow(*ADMINS, probe=CAMPAIGN_PROBE)) -> dict[str, Any]:
    """A draft: audience by role, country, language, zodiac sign and engagement segment; one
    channel; the text in English and Arabic; the send time in each recipient's local time."""
    return await campaigns.create_campaign(
        ctx.conn, name=body.name, channel=body.channel, audience=body.audience.model_dump(exclude_none=True),
        title_en=body.title_en, body_en=body.body_en, title_ar=body.title_ar, body_ar=body.body_ar,
        send_on=body.send_on, local_time=body.local_time)


CampaignId = Annotated[int, Field(ge=1, le=2**63 - 1)]


@router.post("/admin/campaigns/{campaign_id}/schedule")
async def schedule_campaign(campaign_id: CampaignId,
                            ctx: Ctx = allow(*ADMINS, probe=CAMPAIGN_PROBE)) -> dict[str, Any]:
    """Computes the time-zone cohorts and queues each recipient's send at their local time.
    Idempotent: scheduling again answers the same cohorts and queues nothing."""
    return await campaigns.schedule_campaign(ctx.conn, campaign_id)


@router.get("/admin/campaigns/{campaign_id}/stats")
async def campaign_stats(campaign_id: CampaignId, ctx: Ctx = allow(*ADMINS, probe=CAMPAIGN_PROBE)) -> dict[str, Any]:
    """Sends, delivered, opened, clicked, bounced, failed, cancelled, and opted out since."""
    return await campaigns.campaign_stats(ctx.conn, campaign_id)


# ─── provider webhooks ───────────────────────────────────────────────────────────────────
def _twilio_params(ctx: Ctx, request: Request, form: dict[str, str]) -> None:
    query = f"?{request.url.query}" if request.url.query else ""
    url = ctx.platform.settings.public_base_url.rstrip("/") + request.url.path + query
    verify_twilio(ctx.platform.settings, url, form, request.headers.get("x-twilio-signature"))


@router.post(INBOUND_PATH, response_class=Response,
             responses={200: {"content": {"application/xml": {}}, "description": "TwiML"}})
async def twilio_inbound(request: Request, ctx: Ctx = allow(PUBLIC, db_role="samia_messaging")) -> Response:
    """Inbound SMS/WhatsApp (X-Twilio-Signature verified): STOP suppresses the number at once,
    START lifts it, HELP answers with where to get help. A forged request is 403 and changes
    nothing."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    _twilio_params(ctx, request, form)
    msg = parse_inbound(form)
    reply = ""
    if msg.action in ("opt_out", "opt_in"):
        await ctx.conn.execute("select app.sms_keyword(%s, %s, %s)", (msg.channel, msg.sender, msg.action))
    elif msg.action == "help":
        reply = ("<Message>Samia Tarot: help at support@samia-tarot.com. Reply STOP to unsubscribe. "
                 "للمساعدة راسلنا. أرسل STOP لإلغاء الاشتراك.</Message>")
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{reply}</Response>',
                    media_type="application/xml")


@router.post(STATUS_CALLBACK_PATH, status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def twilio_status(request: Request, ctx: Ctx = allow(PUBLIC, db_role="samia_messaging")) -> Response:
    """Twilio's delivery status callback (signed): the send's state moves forward; a number
    that is gone for good is suppressed."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    _twilio_params(ctx, request, form)
    update = parse_status(form, dict(request.query_params))
    if update.state is None:
        return Response(status_code=204)
    channel = "whatsapp" if form.get("To", "").startswith("whatsapp:") else "sms"
    key = _uuid(update.send_key)
    await ctx.conn.execute("select app.delivery_report(%s, %s, %s, %s, %s, %s)",
                           (channel, key, update.provider_ref or None, update.state,
                            form.get("To", "").removeprefix("whatsapp:") or None, "stop" if update.gone else None))
    return Response(status_code=204)


@router.post(SES_PATH, status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def ses_feedback(request: Request, ctx: Ctx = allow(PUBLIC, db_role="samia_messaging")) -> Response:
    """Amazon SES bounce, complaint and delivery notifications through SNS (signature, signing
    certificate host and topic verified; forged → 403, nothing changes). Hard bounces and
    complaints suppress the address."""
    verifier = make_sns_verifier(ctx.platform.settings)
    try:
        msg = await verifier.verify(await request.body())
        if msg.type == "SubscriptionConfirmation":
            await verifier.confirm(msg)
            return Response(status_code=204)
    finally:
        await verifier.aclose()
    if msg.type != "Notification":
        return Response(status_code=204)
    for f in parse_ses(msg.message):
        state = {"hard_bounce": "bounced", "complaint": "bounced", "delivered": "delivered"}.get(f.kind)
        if state is None:
            continue  # a soft bounce: SES retries by itself
        key = _uuid((f.message_id_header or "").strip("<>").partition("@")[0])
        await ctx.conn.execute("select app.delivery_report('email', %s, %s, %s, %s, %s)",
                               (key, f.provider_message_id, state, f.address,
                                f.kind if f.kind in ("hard_bounce", "complaint") else None))
    return Response(status_code=204)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None

"""The voice provider's webhooks (Twilio): call and conference status callbacks feed the call's
state machine, and each dialled party fetches the TwiML that joins the conference. Every
request's X-Twilio-Signature is verified against PUBLIC_BASE_URL."""

from __future__ import annotations

import email.utils
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from twilio.request_validator import RequestValidator

from samia.calls.service import record_event
from samia.core.access import PUBLIC, Ctx, acting_as, allow
from samia.core.problems import AppError, not_found
from samia.providers.voice import TwilioVoice, make_voice

router = APIRouter(tags=["calls"])


def _verified_twilio(ctx: Ctx, request: Request, params: dict[str, str]) -> None:
    settings = ctx.platform.settings
    if settings.twilio_auth_token is None:
        raise AppError(503, "provider_not_configured", "TWILIO_AUTH_TOKEN is not set",
                       extra={"setting": "TWILIO_AUTH_TOKEN"})
    query = f"?{request.url.query}" if request.url.query else ""
    url = settings.public_base_url.rstrip("/") + request.url.path + query
    signature = request.headers.get("x-twilio-signature", "")
    if not RequestValidator(settings.twilio_auth_token.get_secret_value()).validate(url, params, signature):
        raise AppError(403, "invalid_signature", "the X-Twilio-Signature does not match this request")


CallQ = Annotated[int, Query(ge=1, le=9_223_372_036_854_775_807, description="our call id")]

CALL_STATUS = {"ringing": ("ringing", None), "busy": ("ended", "busy"), "no-answer": ("ended", "no_answer"),
               "failed": ("ended", "failed"), "canceled": ("ended", "failed")}


@router.post("/webhooks/twilio/voice", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def twilio_voice(request: Request, call: CallQ, ctx: Ctx = allow(PUBLIC, readonly=False)) -> Response:
    """Twilio's call and conference status callbacks (X-Twilio-Signature verified); a bad
    signature is refused and changes nothing; a repeated callback is applied once."""
    params = {k: str(v) for k, v in (await request.form()).items()}
    _verified_twilio(ctx, request, params)
    conf = params.get("StatusCallbackEvent")
    if conf == "conference-start":
        event, reason, ref = "started", None, params.get("ConferenceSid")
    elif conf == "conference-end":
        event, reason, ref = "ended", "completed", params.get("ConferenceSid")
    elif conf is None and params.get("CallStatus") in CALL_STATUS:
        (event, reason), ref = CALL_STATUS[params["CallStatus"]], None
    else:
        return Response(status_code=204)  # joins, leaves, answered legs: the conference events decide
    sid = params.get("ConferenceSid") or params.get("CallSid") or "-"
    provider_event = f"{sid}:{conf or params.get('CallStatus')}:{params.get('SequenceNumber', '')}"
    at = None
    if params.get("Timestamp"):
        try:
            at = email.utils.parsedate_to_datetime(params["Timestamp"])
        except (TypeError, ValueError):
            at = None
    await record_event(ctx, call, event, at, reason, provider_event, ref)
    return Response(status_code=204)


@router.post("/webhooks/twilio/voice/twiml", response_class=Response,
             responses={200: {"content": {"application/xml": {}}, "description": "TwiML"}})
async def twilio_twiml(request: Request, call: CallQ, ctx: Ctx = allow(PUBLIC)) -> Response:
    """The TwiML each dialled party fetches: join the call's conference (recorded only with
    the client's consent)."""
    params = {k: str(v) for k, v in (await request.form()).items()}
    _verified_twilio(ctx, request, params)
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_record_flag(%s)", (call,))
        record = (await cur.fetchone())[0]  # type: ignore[index]
    if record is None:
        raise not_found("call")
    voice = make_voice(ctx.platform.settings)
    if not isinstance(voice, TwilioVoice):
        raise AppError(503, "provider_not_configured", "VOICE_PROVIDER is not twilio",
                       extra={"setting": "VOICE_PROVIDER"})
    return Response(voice.twiml(call, bool(record)), media_type="application/xml")

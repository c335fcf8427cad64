"""Live calls: consent, scheduled and instant calls, the voice provider's webhooks, readers'
availability and instant windows, the emergency siren, monitor powers and live safety.
State lives in the database (migration 024); these routes declare who may call what."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, model_validator
from twilio.request_validator import RequestValidator

from samia.calls import service
from samia.calls.redact import redact
from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, Probe, acting_as, allow, client_ip
from samia.core.models import Id, Input
from samia.core.problems import AppError, not_found
from samia.moderation.api import STAFF_PROBE
from samia.orders.workflow import ADMINS, STAFF
from samia.providers.voice import Leg, TwilioVoice, make_voice

router = APIRouter(tags=["calls"])

Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Note = Annotated[str, Field(min_length=3, max_length=2000)]
Reason = Literal["harassment", "abuse", "fraud", "copyright", "safety", "spam", "other"]


class CallOut(BaseModel):
    id: int
    kind: str
    status: str
    booking_id: int | None
    client_id: str | None
    reader_id: str | None
    record: bool
    per_minute_minor: int
    currency: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str | None
    connected_seconds: int | None
    billed_minor: int | None
    created_at: dt.datetime


class ConsentIn(Input):
    consent_given: Literal[True] = Field(description="the client agrees to be connected to the reader")
    recording: bool = Field(False, description="the client agrees to the call being recorded")


class InstantIn(Input):
    reader_id: Uuid
    service: Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")] = "direct_call"
    consent_given: Literal[True]
    recording: bool = False


class SimulateIn(Input):
    event: Literal["ringing", "started", "ended"]
    reason: Literal["completed", "dropped_by_reader", "dropped_by_client", "failed", "no_answer", "busy"] | None = None
    at: dt.datetime | None = Field(None, description="when it happened (default now)")


class StatusIn(Input):
    available: bool


class WindowIn(Input):
    starts_at: dt.datetime
    ends_at: dt.datetime

    @model_validator(mode="after")
    def _order(self) -> WindowIn:
        if self.ends_at <= self.starts_at or self.ends_at - self.starts_at > dt.timedelta(hours=12):
            raise ValueError("a window ends after it starts and lasts at most 12 hours")
        return self


class DecisionIn(Input):
    note: Annotated[str, Field(max_length=500)] | None = None


class EmergencyIn(Input):
    consent_given: Literal[True] = Field(description="the client agrees to be connected to whoever answers")
    note: Annotated[str, Field(max_length=500)] | None = None
    recording: bool = False


class FlagIn(Input):
    category: Reason
    note: Note | None = None


class DropIn(Input):
    note: Note


class SegmentIn(Input):
    speaker: Literal["client", "reader", "unknown"] = "unknown"
    text: Annotated[str, Field(min_length=1, max_length=8000)]


async def _provider_ref(ctx: Ctx, call_id: int) -> str | None:
    cur = await ctx.conn.execute("select provider_ref from calls where id = %s", (call_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def _event(ctx: Ctx, call_id: int, event: str, at: dt.datetime | None, reason: str | None,
                 provider_event: str | None, ref: str | None = None) -> str:
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_event(%s, %s, coalesce(%s, now()), %s, %s, %s)",
                                     (call_id, event, at, reason, provider_event, ref))
        applied = str((await cur.fetchone())[0])  # type: ignore[index]
        if applied == "started":
            cur = await ctx.conn.execute("select app.call_setup_seconds(%s)", (call_id,))
            row = await cur.fetchone()
            if row and row[0] is not None and row[0] >= 0:
                ctx.platform.metrics.call_setup.observe(float(row[0]))
    return applied


async def _siren_raised_at(ctx: Ctx, request_id: int) -> dt.datetime | None:
    cur = await ctx.conn.execute("select created_at from emergency_requests where id = %s", (request_id,))
    row = await cur.fetchone()
    return row[0] if row else None


def _siren_answered(ctx: Ctx, raised: dt.datetime | None) -> None:
    if raised is not None:
        ctx.platform.metrics.siren_answer.observe((dt.datetime.now(dt.UTC) - raised).total_seconds())


async def _legs(ctx: Ctx, call_id: int) -> list[Leg]:
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_phones(%s)", (call_id,))
        phones = (await cur.fetchone())[0] or []  # type: ignore[index]
    return [Leg(p) for p in phones]


async def _connect(ctx: Ctx, call_id: int) -> dict[str, Any]:
    """Dial both parties through the provider; the call rings."""
    voice = make_voice(ctx.platform.settings)
    legs = await _legs(ctx, call_id)
    if voice.name == "twilio":
        ref = await ctx.platform.guarded(ctx.conn, "twilio", lambda: voice.connect(call_id, legs))
    else:
        ref = await voice.connect(call_id, legs)
    await _event(ctx, call_id, "ringing", None, None, None, ref)
    return await service.get_call(ctx.conn, call_id)


# ---- scheduled and instant calls ---------------------------------------------------------

@router.post("/calls/{booking_id}/consent", status_code=status.HTTP_201_CREATED)
async def consent(booking_id: Id, body: ConsentIn, request: Request,
        ctx: Ctx = allow("client", probe=service.CONSENT_PROBE)) -> dict[str, Any]:
    """The client's consent to the call (and, separately, to recording), kept with their IP
    address and the time. A call cannot start without it."""
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)
    return await service.record_consent(ctx.conn, booking_id, ip=ip, user_agent=request.headers.get("user-agent"),
                                        recording=body.recording)


@router.post("/calls/{booking_id}/start", status_code=status.HTTP_201_CREATED, response_model=CallOut)
async def start_booked(booking_id: Id, ctx: Ctx = allow("client", "reader", probe=Probe(
        "select 1 from bookings where id = :booking and auth.uid() in (client_id, reader_id)"))) -> dict[str, Any]:
    """Start a confirmed booking's call (from 10 minutes before). Without the client's
    recorded consent it answers 400 `consent_required`."""
    cur = await ctx.conn.execute("select app.start_booked_call(%s)", (booking_id,))
    call_id = (await cur.fetchone())[0]  # type: ignore[index]
    return await _connect(ctx, call_id)


@router.post("/calls/instant", status_code=status.HTTP_201_CREATED, response_model=CallOut)
async def start_instant(body: InstantIn, request: Request, ctx: Ctx = allow("client", probe=Probe(
        "select 1 from profiles where id = auth.uid() and role_id = 5"))) -> dict[str, Any]:
    """Call an available reader now (their time is claimed in the capacity ledger, so no
    booking can overlap). Per-minute services need a wallet covering at least a minute."""
    cur = await ctx.conn.execute(
        "select app.start_instant_call(%s, (select id from services where code = %s), %s, %s, %s)",
        (body.reader_id, body.service, client_ip(request, ctx.platform.settings.trust_proxy_headers),
         request.headers.get("user-agent"), body.recording))
    call_id = (await cur.fetchone())[0]  # type: ignore[index]
    return await _connect(ctx, call_id)


@router.get("/calls/{call_id}", response_model=CallOut)
async def get_call(call_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await service.get_call(ctx.conn, call_id)


@router.post("/calls/{call_id}/hangup", response_model=CallOut)
async def hangup(call_id: Id, ctx: Ctx = allow("client", "reader", probe=Probe(
        "select 1 from bookings where id = :booking and auth.uid() in (client_id, reader_id)"))) -> dict[str, Any]:
    """End your call; you are billed only for the connected time."""
    call = await service.get_call(ctx.conn, call_id)
    if ctx.user_id not in (call["client_id"], call["reader_id"]):
        raise not_found("call")
    ref = await _provider_ref(ctx, call_id)
    await make_voice(ctx.platform.settings).hangup(ref)
    reason = "dropped_by_client" if ctx.user_id == call["client_id"] else "dropped_by_reader"
    await _event(ctx, call_id, "ended", None, reason if call["status"] == "started" else "failed", None)
    return await service.get_call(ctx.conn, call_id)


@router.post("/calls/{call_id}/simulate", response_model=CallOut)
async def simulate(call_id: Id, body: SimulateIn, ctx: Ctx = allow("client", "reader", *STAFF, probe=Probe(
        "select 1 from bookings where id = :booking and (auth.uid() in (client_id, reader_id) or app.is_staff())"))
        ) -> dict[str, Any]:
    """The local voice simulator (not in production): feed the call the events a provider
    would send (ringing, started, ended), through the same state machine."""
    if ctx.platform.settings.env == "prod" or ctx.platform.settings.voice_provider != "local":
        raise not_found("route")
    await service.get_call(ctx.conn, call_id)  # visible to the caller, or 404
    await _event(ctx, call_id, body.event, body.at, body.reason, None)
    return await service.get_call(ctx.conn, call_id)


# ---- the voice provider's webhooks (Twilio) ---------------------------------------------------

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
    await _event(ctx, call, event, at, reason, provider_event, ref)
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


# ---- availability and instant windows ----------------------------------------------------------

@router.put("/readers/me/status")
async def set_status(body: StatusIn, ctx: Ctx = allow("reader", probe=Probe(
        "insert into reader_status (reader_id, available) values (auth.uid(), true)"))) -> dict[str, Any]:
    """Go available or unavailable. Inside an admin-approved instant window a reader stays
    available unless on a call: 409 `in_instant_window` (and the attempt is logged)."""
    if not body.available:
        cur = await ctx.conn.execute("select app.in_instant_window(auth.uid()) and not app.on_live_call(auth.uid())")
        if (await cur.fetchone())[0]:  # type: ignore[index]
            raise AppError(409, "in_instant_window", "you are inside an approved instant window and not on a call",
                           audit={"event": "reader.unavailable_refused"})
    await ctx.conn.execute("insert into reader_status (reader_id, available) values (auth.uid(), %s) "
                           "on conflict (reader_id) do update set available = excluded.available", (body.available,))
    await ctx.conn.execute("select app.audit('reader.availability', 'profile', auth.uid()::text, %s)",
                           (json.dumps({"available": body.available}),))
    return {"reader_id": ctx.user_id, "available": body.available}


@router.get("/readers/available")
async def available_readers(ctx: Ctx = allow(AUTHENTICATED)) -> list[dict[str, Any]]:
    """Readers available now and not on a call, with the call services they offer."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select s.reader_id::text, array(select sv.code from reader_services rs join services sv on sv.id = rs.service_id
                                         where rs.reader_id = s.reader_id and rs.active and sv.kind = 'call'
                                         order by sv.code) as services
          from reader_status s where s.available and not app.on_live_call(s.reader_id) order by s.updated_at""")
    return await cur.fetchall()


WINDOW_COLS = "id, reader_id::text, lower(during) as starts_at, upper(during) as ends_at, status, note"


@router.post("/readers/me/instant-windows", status_code=status.HTTP_201_CREATED)
async def request_window(body: WindowIn, ctx: Ctx = allow("reader", probe=Probe(
        "insert into instant_windows (reader_id, during) values (auth.uid(), tstzrange(now(), now() + interval '1h'))"))
        ) -> dict[str, Any]:
    """Ask an admin to approve a window in which you take instant calls."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(f"insert into instant_windows (reader_id, during) values (auth.uid(), tstzrange(%s, %s)) "  # noqa: S608
                      f"returning {WINDOW_COLS}", (body.starts_at, body.ends_at))
    return await cur.fetchone()  # type: ignore[return-value]


WINDOW_PROBE = Probe("update instant_windows set status = 'approved', decided_by = auth.uid() where id = :window")


@router.post("/admin/instant-windows/{window_id}/{decision}")
async def decide_window(window_id: Id, decision: Literal["approve", "reject"], body: DecisionIn,
                        ctx: Ctx = allow(*ADMINS, probe=WINDOW_PROBE)) -> dict[str, Any]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(f"update instant_windows set status = %s, decided_by = auth.uid(), decided_at = now(), "  # noqa: S608
                      f"note = %s where id = %s and status = 'requested' returning {WINDOW_COLS}",
                      ("approved" if decision == "approve" else "rejected", body.note, window_id))
    row = await cur.fetchone()
    if row is None:
        raise not_found("window waiting for a decision")
    await ctx.conn.execute("select app.audit(%s, 'instant_window', %s, '{}'::jsonb)",
                           (f"instant_window.{row['status']}", str(window_id)))
    return row


# ---- the emergency siren ----------------------------------------------------------------------

@router.post("/calls/emergency", status_code=status.HTTP_201_CREATED)
async def raise_emergency(body: EmergencyIn, request: Request,
                          ctx: Ctx = allow("client", probe=service.EMERGENCY_PROBE)) -> dict[str, Any]:
    """The siren: it rings every available reader now, then climbs Monitor → Admin → Super
    Admin on its timers until answered or acknowledged (feature.emergencyExtension)."""
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)
    request_id = await service.raise_emergency(ctx.conn, ip=ip, user_agent=request.headers.get("user-agent"),
                                               note=body.note, recording=body.recording)
    return await service.emergency(ctx.conn, request_id)


@router.get("/calls/emergency/{request_id}")
async def get_emergency(request_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await service.emergency(ctx.conn, request_id)


@router.post("/calls/emergency/{request_id}/answer", status_code=status.HTTP_201_CREATED, response_model=CallOut)
async def answer_emergency(request_id: Id, ctx: Ctx = allow("reader", probe=Probe(
        "insert into reader_status (reader_id, available) values (auth.uid(), true)"))) -> dict[str, Any]:
    raised = await _siren_raised_at(ctx, request_id)
    cur = await ctx.conn.execute("select app.answer_emergency(%s)", (request_id,))
    call_id = (await cur.fetchone())[0]  # type: ignore[index]
    _siren_answered(ctx, raised)
    return await _connect(ctx, call_id)


@router.post("/calls/emergency/{request_id}/cancel")
async def cancel_emergency(request_id: Id, ctx: Ctx = allow("client", probe=Probe(
        "select 1 from profiles where id = auth.uid() and role_id = 5"))) -> dict[str, Any]:
    await ctx.conn.execute("select app.close_emergency(%s, 'cancelled')", (request_id,))
    return await service.emergency(ctx.conn, request_id)


@router.get("/monitor/emergency")
async def emergency_queue(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> list[dict[str, Any]]:
    """Sirens still sounding, oldest first, with their escalation trace."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(f"""select {service.EMERGENCY_COLS},
                                  array(select e.event || '@' || e.level from emergency_events e
                                         where e.request_id = r.id order by e.id) as trace
                            from emergency_requests r where status = 'ringing' order by created_at""")  # noqa: S608
    return await cur.fetchall()


@router.post("/monitor/emergency/{request_id}/ack")
async def acknowledge(request_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Acknowledge the siren: the escalation stops."""
    raised = await _siren_raised_at(ctx, request_id)
    await ctx.conn.execute("select app.close_emergency(%s, 'acknowledged')", (request_id,))
    _siren_answered(ctx, raised)
    return await service.emergency(ctx.conn, request_id)


# ---- monitor powers -------------------------------------------------------------------------------

async def _moderation(ctx: Ctx, call_id: int, action: str, reason: str | None, note: str | None) -> None:
    await ctx.conn.execute("insert into moderation_actions (actor_id, target_kind, target_id, action, reason, "
                           "reason_code) values (auth.uid(), 'call', %s, %s, %s, %s)",
                           (str(call_id), action, note, reason))
    await ctx.conn.execute("select app.audit(%s, 'call', %s, %s)",
                           (f"moderation.{action}", str(call_id), json.dumps({"reason": reason})))


@router.post("/monitor/calls/{call_id}/join")
async def join_silent(call_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Join a live call listen-only (muted, no announcement)."""
    call = await service.get_call(ctx.conn, call_id)
    if call["status"] not in ("ringing", "started"):
        raise AppError(409, "not_live", f"the call is {call['status']}")
    phone = (await (await ctx.conn.execute("select phone from profiles where id = auth.uid()")).fetchone())[0]  # type: ignore[index]
    ref = await _provider_ref(ctx, call_id)
    await make_voice(ctx.platform.settings).join_silent(ref, Leg(phone))
    await ctx.conn.execute("insert into call_events (call_id, event, actor) values (%s, 'monitor_joined', auth.uid())",
                           (call_id,))
    await _moderation(ctx, call_id, "join_silent", None, None)
    return {"call_id": call_id, "joined": True, "muted": True}


@router.post("/monitor/calls/{call_id}/flag", status_code=status.HTTP_201_CREATED)
async def flag_call(call_id: Id, body: FlagIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    await service.get_call(ctx.conn, call_id)
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select app.monitor_flag(%s, %s, %s) as id", (call_id, body.category, body.note))
    await _moderation(ctx, call_id, "flag", body.category, body.note)
    return {"call_id": call_id, "flag_id": (await cur.fetchone())["id"], "category": body.category}  # type: ignore[index]


@router.post("/monitor/calls/{call_id}/drop", response_model=CallOut)
async def drop_call(call_id: Id, body: DropIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """End a live call now (`dropped_by_monitor`); the client pays only the connected time."""
    call = await service.get_call(ctx.conn, call_id)
    if call["status"] == "ended":
        raise AppError(409, "not_live", "the call has already ended")
    ref = await _provider_ref(ctx, call_id)
    await make_voice(ctx.platform.settings).hangup(ref)
    await _event(ctx, call_id, "ended", None, "dropped_by_monitor", None)
    await ctx.conn.execute("insert into call_events (call_id, event, actor) values (%s, 'dropped', auth.uid())",
                           (call_id,))
    await _moderation(ctx, call_id, "drop_call", None, body.note)
    return await service.get_call(ctx.conn, call_id)


# ---- live safety (M41) --------------------------------------------------------------------------------

@router.post("/calls/{call_id}/transcript", status_code=status.HTTP_201_CREATED)
async def transcript(call_id: Id, body: SegmentIn, ctx: Ctx = allow("reader", *STAFF, probe=Probe(
        "select app.analyse_segment(:call, 'unknown', 'probe', '{}')"))) -> dict[str, Any]:
    """A transcript segment (from the provider or uploaded by the call's reader). Phone
    numbers, emails, card numbers and IBANs are redacted before anything is stored; the
    raw text is never kept or logged. Rules over the redacted text flag the call to
    monitors; repeated flags open an incident. Clients never see any of it."""
    text, counts = redact(body.text)
    cur = await ctx.conn.execute("select * from app.analyse_segment(%s, %s, %s, %s)",
                                 (call_id, body.speaker, text, json.dumps(counts)))
    flags, incident = await cur.fetchone()  # type: ignore[misc]
    return {"call_id": call_id, "redactions": counts, "flags_raised": flags, "incident_id": incident}


@router.get("/monitor/calls/{call_id}/safety")
async def safety(call_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """The call's redacted transcript, flags and incident, for monitors and admins."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select speaker, text_redacted, redactions, at from call_transcripts where call_id = %s "
                      "order by id", (call_id,))
    segments = await cur.fetchall()
    await cur.execute("select id, category, source, score, note, created_at from call_flags where call_id = %s "
                      "order by id", (call_id,))
    flags = await cur.fetchall()
    await cur.execute("select id, case_id, flags, status, opened_at from safety_incidents where call_id = %s",
                      (call_id,))
    return {"call_id": call_id, "segments": segments, "flags": flags, "incident": await cur.fetchone()}

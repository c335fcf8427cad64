"""Live calls: the client's consent, scheduled and instant calls, hanging up, and the local
voice simulator. The rest of calls/ is split by concern: the voice provider's webhooks
(webhooks.py), readers' availability and instant windows (availability.py), the emergency
siren (emergency.py), monitor powers (monitor.py) and live safety (safety.py). State lives in
the database (migration 024); these routes declare who may call what."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, status
from pydantic import Field

from samia.calls.service import (
    CONSENT_PROBE,
    CallOut,
    connect,
    fetch_call,
    provider_ref,
    record_consent,
    record_event,
)
from samia.core.access import AUTHENTICATED, STAFF, Ctx, Probe, allow, client_ip
from samia.core.models import Id, Input
from samia.core.problems import not_found
from samia.providers.voice import make_voice

router = APIRouter(tags=["calls"])

Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


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


@router.post("/calls/{booking_id}/consent", status_code=status.HTTP_201_CREATED)
async def consent(booking_id: Id, body: ConsentIn, request: Request,
                  ctx: Ctx = allow("client", probe=CONSENT_PROBE)) -> dict[str, Any]:
    """The client's consent to the call (and, separately, to recording), kept with their IP
    address and the time. A call cannot start without it."""
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)
    return await record_consent(ctx.conn, booking_id, ip=ip, user_agent=request.headers.get("user-agent"),
                                recording=body.recording)


@router.post("/calls/{booking_id}/start", status_code=status.HTTP_201_CREATED, response_model=CallOut)
async def start_booked(booking_id: Id, ctx: Ctx = allow("client", "reader", probe=Probe(
        "select 1 from bookings where id = :booking and auth.uid() in (client_id, reader_id)"))) -> dict[str, Any]:
    """Start a confirmed booking's call (from 10 minutes before). Without the client's
    recorded consent it answers 400 `consent_required`."""
    cur = await ctx.conn.execute("select app.start_booked_call(%s)", (booking_id,))
    call_id = (await cur.fetchone())[0]  # type: ignore[index]
    return await connect(ctx, call_id)


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
    return await connect(ctx, call_id)


@router.get("/calls/{call_id}", response_model=CallOut)
async def get_call(call_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await fetch_call(ctx.conn, call_id)


@router.post("/calls/{call_id}/hangup", response_model=CallOut)
async def hangup(call_id: Id, ctx: Ctx = allow("client", "reader", probe=Probe(
        "select 1 from bookings where id = :booking and auth.uid() in (client_id, reader_id)"))) -> dict[str, Any]:
    """End your call; you are billed only for the connected time."""
    call = await fetch_call(ctx.conn, call_id)
    if ctx.user_id not in (call["client_id"], call["reader_id"]):
        raise not_found("call")
    ref = await provider_ref(ctx, call_id)
    await make_voice(ctx.platform.settings).hangup(ref)
    reason = "dropped_by_client" if ctx.user_id == call["client_id"] else "dropped_by_reader"
    await record_event(ctx, call_id, "ended", None, reason if call["status"] == "started" else "failed", None)
    return await fetch_call(ctx.conn, call_id)


@router.post("/calls/{call_id}/simulate", response_model=CallOut)
async def simulate(call_id: Id, body: SimulateIn, ctx: Ctx = allow("client", "reader", *STAFF, probe=Probe(
        "select 1 from bookings where id = :booking and (auth.uid() in (client_id, reader_id) or app.is_staff())"))
        ) -> dict[str, Any]:
    """The local voice simulator (not in production): feed the call the events a provider
    would send (ringing, started, ended), through the same state machine."""
    if ctx.platform.settings.env == "prod" or ctx.platform.settings.voice_provider != "local":
        raise not_found("route")
    await fetch_call(ctx.conn, call_id)  # visible to the caller, or 404
    await record_event(ctx, call_id, body.event, body.at, body.reason, None)
    return await fetch_call(ctx.conn, call_id)

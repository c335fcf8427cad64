"""The emergency siren: a client's request rings every available reader at once, then climbs
Monitor → Admin → Super Admin on its timers (the emergency_escalate job) until a reader
answers or staff acknowledge it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, status
from pydantic import Field

from samia.calls import service
from samia.calls.service import EMERGENCY_PROBE, CallOut, fetch_emergency
from samia.core.access import AUTHENTICATED, STAFF, STAFF_PROBE, Ctx, Probe, allow, client_ip
from samia.core.models import Id, Input

router = APIRouter(tags=["calls"])


class EmergencyIn(Input):
    consent_given: Literal[True] = Field(description="the client agrees to be connected to whoever answers")
    note: Annotated[str, Field(max_length=500)] | None = None
    recording: bool = False


@router.post("/calls/emergency", status_code=status.HTTP_201_CREATED)
async def raise_emergency(body: EmergencyIn, request: Request,
                          ctx: Ctx = allow("client", probe=EMERGENCY_PROBE)) -> dict[str, Any]:
    """The siren: it rings every available reader now, then climbs Monitor → Admin → Super
    Admin on its timers until answered or acknowledged (feature.emergencyExtension)."""
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)
    request_id = await service.raise_emergency(ctx.conn, ip=ip, user_agent=request.headers.get("user-agent"),
                                               note=body.note, recording=body.recording)
    return await fetch_emergency(ctx.conn, request_id)


@router.get("/calls/emergency/{request_id}")
async def get_emergency(request_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await fetch_emergency(ctx.conn, request_id)


@router.post("/calls/emergency/{request_id}/answer", status_code=status.HTTP_201_CREATED, response_model=CallOut)
async def answer_emergency(request_id: Id, ctx: Ctx = allow("reader", probe=service.ANSWER_PROBE)) -> dict[str, Any]:
    return await service.answer_emergency(ctx, request_id)


@router.post("/calls/emergency/{request_id}/cancel")
async def cancel_emergency(request_id: Id, ctx: Ctx = allow("client", probe=Probe(
        "select 1 from profiles where id = auth.uid() and role_id = 5"))) -> dict[str, Any]:
    await ctx.conn.execute("select app.close_emergency(%s, 'cancelled')", (request_id,))
    return await fetch_emergency(ctx.conn, request_id)


@router.get("/monitor/emergency")
async def emergency_queue(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> list[dict[str, Any]]:
    """Sirens still sounding, oldest first, with their escalation trace."""
    return await service.open_emergencies(ctx.conn)


@router.post("/monitor/emergency/{request_id}/ack")
async def acknowledge(request_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Acknowledge the siren: the escalation stops."""
    return await service.acknowledge_emergency(ctx, request_id)

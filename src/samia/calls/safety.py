"""Live safety (M41): transcript segments are redacted before anything is stored, rules over
the redacted text flag the call to monitors, repeated flags open an incident. Clients never
see any of it."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from pydantic import Field

from samia.calls.redact import redact
from samia.calls.service import call_safety
from samia.core.access import STAFF, STAFF_PROBE, Ctx, Probe, allow
from samia.core.models import Id, Input

router = APIRouter(tags=["calls"])


class SegmentIn(Input):
    speaker: Literal["client", "reader", "unknown"] = "unknown"
    text: Annotated[str, Field(min_length=1, max_length=8000)]


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
    return await call_safety(ctx.conn, call_id)

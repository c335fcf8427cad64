"""Monitor powers over live calls: listen in silently, flag, and drop a call; each is a
moderation action and audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from pydantic import Field

from samia.calls import service
from samia.calls.service import CallOut, fetch_call
from samia.core.access import STAFF, STAFF_PROBE, Ctx, allow
from samia.core.models import Id, Input

router = APIRouter(tags=["calls"])

Note = Annotated[str, Field(min_length=3, max_length=2000)]
Reason = Literal["harassment", "abuse", "fraud", "copyright", "safety", "spam", "other"]


class FlagIn(Input):
    category: Reason
    note: Note | None = None


class DropIn(Input):
    note: Note


@router.post("/monitor/calls/{call_id}/join")
async def join_silent(call_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Join a live call listen-only (muted, no announcement)."""
    return await service.join_silent(ctx, call_id)


@router.post("/monitor/calls/{call_id}/flag", status_code=status.HTTP_201_CREATED)
async def flag_call(call_id: Id, body: FlagIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    flag_id = await service.flag_call(ctx, call_id, body.category, body.note)
    return {"call_id": call_id, "flag_id": flag_id, "category": body.category}


@router.post("/monitor/calls/{call_id}/drop", response_model=CallOut)
async def drop_call(call_id: Id, body: DropIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """End a live call now (`dropped_by_monitor`); the client pays only the connected time."""
    await service.drop_call(ctx, call_id, body.note)
    return await fetch_call(ctx.conn, call_id)

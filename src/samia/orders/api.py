"""Orders: a client's question → an assigned reader's recorded audio → a monitor's
approval of that exact file → delivery. Every move is one UPDATE of the status; the
database trigger (migration 020) decides whether the move and the caller are allowed,
pins the approved file's hash, writes moderation_actions and audit_log, and notifies."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, status
from pydantic import BaseModel, Field

from samia.core.access import ADMINS, AUTHENTICATED, STAFF, STAFF_PROBE, Ctx, Probe, acting_as, allow
from samia.core.idempotency import Idempotency
from samia.core.models import Id, Input
from samia.orders import assignment, service
from samia.orders.service import BirthIn

router = APIRouter(tags=["orders"])

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


class OrderIn(Input):
    service: Annotated[str, Field(pattern=r"^[a-z_]{2,40}$", examples=["tarot"])]
    question: Annotated[str, Field(max_length=4000)] | None = None
    is_gold: bool = Field(False, description="golden (rush) order: served first, shorter delivery clock")
    spread: Literal["single", "three_card", "celtic_cross"] = Field("three_card", description="tarot only")
    birth: BirthIn | None = Field(None, description="astrology: date required; time+tz and place optional "
                                                    "(default: the profile's date of birth)")


class AssignIn(Input):
    reader_id: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$", description="omit for auto-assignment")


class RejectIn(Input):
    reason: Annotated[str, Field(min_length=3, max_length=2000)]


class ApproveIn(Input):
    deliver: bool = Field(True, description="deliver to the client at once (default)")


class OrderOut(BaseModel):
    id: int
    service: str
    status: str
    is_gold: bool
    question: str | None
    price_minor: int
    currency: str
    deliver_by: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    reading_id: int | None = None
    photo_media_ids: list[int] = []
    audio_media_id: int | None = Field(None, description="the approved audio, once delivered")
    # the reader's and staff's view only (null for clients)
    client_id: str | None = None
    assigned_reader: str | None = None
    output_media_id: int | None = None
    approved_sha256: str | None = None
    reject_reason: str | None = None
    submitted_at: dt.datetime | None = None
    review_by: dt.datetime | None = None
    delivery_overdue: bool | None = None
    review_overdue: bool | None = None
    chart: dict[str, Any] | None = None


# ---- client -------------------------------------------------------------------------

@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def create_order(body: OrderIn, idem_key: IdemKey = None,
        ctx: Ctx = allow("client", rate="orders", probe=service.PLACE_PROBE)) -> Any:
    """Place an order (10 per hour by default). Priced services are paid from the wallet
    at once (422 `insufficient_funds` otherwise). Tarot: the cards are drawn now, server-side,
    face down; reveal them in order. Astrology: the chart is computed now for the reader."""
    idem = Idempotency(ctx, idem_key, body)
    replay = await idem.replay()
    if replay is not None:
        return replay
    out = await service.place_order(ctx, service=body.service, question=body.question, is_gold=body.is_gold,
                                     spread=body.spread, birth=body.birth)
    await idem.remember(201, json.loads(OrderOut(**out).model_dump_json()))
    return out


@router.get("/orders", response_model=list[OrderOut])
async def list_orders(ctx: Ctx = allow(AUTHENTICATED),
                      status_: Annotated[Literal["new", "assigned", "in_progress", "awaiting_approval", "approved",
                                                 "rejected", "delivered", "cancelled", "archived"] | None,
                                         Query(alias="status")] = None,
                      before: Annotated[int | None, Query(ge=1, le=2**62, description="keyset: ids below this")] = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 50) -> list[dict[str, Any]]:
    """Your orders (clients), the orders assigned to you (readers), all orders (staff):
    the database's row-level security decides. Newest first; page with `before`."""
    return await service.list_orders(ctx, status=status_, before=before, limit=limit)


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await service.get_order(ctx, order_id)


UPLOAD = {"required": True, "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                        for t in ("audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "audio/webm")}}
PHOTO = {"required": True, "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                       for t in ("image/jpeg", "image/png", "image/webp")}}


@router.post("/orders/{order_id}/photos", response_model=OrderOut, openapi_extra={"requestBody": PHOTO})
async def add_photo(order_id: Id, request: Request, ctx: Ctx = allow("client", probe=Probe(
        "with m as (insert into media_assets (owner_id, kind, storage_key) values (auth.uid(), 'image', 'probe/p') "
        "returning id) insert into order_attachments (order_id, media_id) select :order_new, id from m"))) -> Any:
    """A photo of the cup (coffee reading) while the order is new: JPEG, PNG or WebP,
    sniffed from the bytes, at most MAX_IMAGE_BYTES, up to 5 per order."""
    await service.add_photo(ctx, order_id, await request.body())
    return await service.get_order(ctx, order_id)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(order_id: Id, ctx: Ctx = allow("client", *ADMINS, probe=Probe(
        "update orders set status = 'cancelled' where id = :order_new"))) -> Any:
    """Cancel before the reader has started; a paid order is refunded to the wallet."""
    await service.move(ctx, order_id, "cancelled")
    async with acting_as(ctx, "samia_payments"):
        await ctx.conn.execute("select app.refund_order(%s, 'cancelled')", (order_id,))
    return await service.get_order(ctx, order_id)


@router.post("/orders/{order_id}/archive", response_model=OrderOut)
async def archive_order(order_id: Id, ctx: Ctx = allow("client", *ADMINS, probe=Probe(
        "update orders set status = 'archived' where id = :order_delivered"))) -> Any:
    await service.move(ctx, order_id, "archived")
    return await service.get_order(ctx, order_id)


# ---- admin --------------------------------------------------------------------------

ASSIGN_PROBE = assignment.ASSIGN_PROBE


@router.post("/orders/{order_id}/assign", response_model=OrderOut)
async def assign_order(order_id: Id, body: AssignIn, ctx: Ctx = allow(*ADMINS, probe=ASSIGN_PROBE)) -> Any:
    """Assign a reader, or omit `reader_id` for the least-loaded active reader who offers
    the service. Also reassigns work in progress (the new reader starts afresh)."""
    return await assignment.assign(ctx, order_id, body.reader_id)


@router.get("/admin/queue", response_model=list[OrderOut])
async def admin_queue(ctx: Ctx = allow(*ADMINS, probe=ASSIGN_PROBE)) -> list[dict[str, Any]]:
    """Orders waiting for a reader: golden first, then oldest."""
    return await assignment.unassigned(ctx)


# ---- reader -------------------------------------------------------------------------

@router.get("/reader/queue", response_model=list[OrderOut])
async def reader_queue(ctx: Ctx = allow("reader", probe=service.READER_PROBE)) -> list[dict[str, Any]]:
    """Your open work: golden first, then the nearest delivery deadline."""
    return await service.reader_queue(ctx)


@router.post("/orders/{order_id}/start", response_model=OrderOut)
async def start_order(order_id: Id, ctx: Ctx = allow("reader", probe=service.START_PROBE)) -> Any:
    """Start (or, after a rejection, resume) work on an order assigned to you."""
    await service.move(ctx, order_id, "in_progress")
    return await service.get_order(ctx, order_id)


@router.post("/orders/{order_id}/output", response_model=OrderOut, openapi_extra={"requestBody": UPLOAD})
async def upload_output(order_id: Id, request: Request, ctx: Ctx = allow("reader", probe=service.OUTPUT_PROBE)) -> Any:
    """The recorded reading (MP3, Ogg, WAV, M4A, WebM or FLAC, at most MAX_AUDIO_BYTES),
    checked with ffprobe. Replaces an earlier upload; each upload needs its own approval."""
    await service.upload_output(ctx, order_id, await request.body())
    return await service.get_order(ctx, order_id)


@router.post("/orders/{order_id}/submit", response_model=OrderOut)
async def submit_order(order_id: Id, ctx: Ctx = allow("reader", probe=service.SUBMIT_PROBE)) -> Any:
    """Send the uploaded audio for review; the monitor's clock starts."""
    await service.move(ctx, order_id, "awaiting_approval")
    return await service.get_order(ctx, order_id)


# ---- monitor ------------------------------------------------------------------------

@router.get("/monitor/queue", response_model=list[OrderOut])
async def monitor_queue(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> list[dict[str, Any]]:
    """Audio waiting for review: golden first, then the oldest submission."""
    return await service.review_queue(ctx)


@router.post("/monitor/orders/{order_id}/approve", response_model=OrderOut)
async def approve_order(order_id: Id, body: ApproveIn | None = None,
                        ctx: Ctx = allow(*STAFF, probe=service.APPROVE_PROBE)) -> Any:
    """Approve the exact file under review (its sha256 is pinned) and, by default, deliver
    it to the client. Two concurrent approvals produce one: the second answers 409."""
    await service.approve(ctx, order_id, deliver=body is None or body.deliver)
    return await service.get_order(ctx, order_id)


@router.post("/monitor/orders/{order_id}/reject", response_model=OrderOut)
async def reject_order(order_id: Id, body: RejectIn, ctx: Ctx = allow(*STAFF, probe=service.REJECT_PROBE)) -> Any:
    """Send the work back to the reader with a reason."""
    await service.reject(ctx, order_id, body.reason)
    return await service.get_order(ctx, order_id)


@router.post("/monitor/orders/{order_id}/deliver", response_model=OrderOut)
async def deliver_order(order_id: Id, ctx: Ctx = allow(*STAFF, probe=Probe(
        "update orders set status = 'delivered' where id = :order_approved"))) -> Any:
    """Deliver an approved order (when it was approved with `deliver: false`)."""
    await service.move(ctx, order_id, "delivered")
    return await service.get_order(ctx, order_id)


"""Readers' availability, the availability probe, provisional holds and the caller's bookings."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from samia.bookings import service
from samia.bookings.policy import may_reschedule
from samia.bookings.refunds import refund_for_cancellation
from samia.core.access import AUTHENTICATED, Ctx, Probe, acting_as, allow
from samia.core.models import Id, Input
from samia.core.problems import AppError, invalid, not_found

router = APIRouter(tags=["bookings"])

HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
MAX_PROBE_DAYS = 31


class Rule(Input):
    weekday: Annotated[int, Field(ge=1, le=7, description="ISO weekday, 1 = Monday")]
    start: HHMM
    end: HHMM


class AvailabilityIn(Input):
    tz: Annotated[str, Field(max_length=64, description="IANA time zone of the reader, e.g. Asia/Beirut")]
    rules: Annotated[list[Rule], Field(max_length=60)]

    @field_validator("tz")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError("unknown IANA time zone") from e
        return v


class RuleOut(BaseModel):
    weekday: int
    start: str
    end: str
    tz: str


class ExceptionIn(Input):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    kind: Literal["block", "open"]
    note: Annotated[str, Field(max_length=200)] | None = None


class ExceptionOut(BaseModel):
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    kind: str


class ServicesIn(Input):
    services: Annotated[list[Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")]], Field(max_length=20)]


class Slot(BaseModel):
    starts_at: dt.datetime
    ends_at: dt.datetime


class ProbeOut(BaseModel):
    reader: uuid.UUID
    service: str
    slots: list[Slot]


class HoldIn(Input):
    reader_id: uuid.UUID
    service: Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")]
    starts_at: AwareDatetime


class BookingOut(BaseModel):
    id: int
    client_id: uuid.UUID
    reader_id: uuid.UUID
    service: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    price_minor: int
    currency: str
    hold_expires_at: dt.datetime | None
    created_at: dt.datetime
    pre_ritual: bool = Field(description="the service asks the client to confirm a preparation before the call")
    pre_ritual_confirmed_at: dt.datetime | None


@router.put("/readers/me/availability", response_model=list[RuleOut])
async def set_availability(
    body: AvailabilityIn,
    ctx: Ctx = allow("reader", probe=service.RULES_PROBE),
) -> list[dict[str, Any]]:
    """Replace the caller's weekly rules (local wall-clock times in `tz`)."""
    bad = [i for i, r in enumerate(body.rules) if r.end <= r.start]
    if bad:
        raise AppError(422, "validation_error", "a rule must end after it starts",
                       extra={"errors": [{"loc": ["body", "rules", i, "end"], "msg": "must be after start",
                                          "type": "value_error"} for i in bad]})
    return await service.set_rules(ctx.conn, body.tz, [(r.weekday, r.start, r.end) for r in body.rules])


@router.post("/readers/me/availability/exceptions", status_code=status.HTTP_201_CREATED,
             response_model=ExceptionOut)
async def add_exception(
    body: ExceptionIn,
    ctx: Ctx = allow("reader", probe=service.EXCEPTION_PROBE),
) -> dict[str, Any]:
    if body.ends_at <= body.starts_at:
        raise invalid(["body", "ends_at"], "ends_at must be after starts_at")
    return await service.add_exception(ctx.conn, body.starts_at, body.ends_at, body.kind, body.note)


@router.put("/admin/readers/{reader_id}/services", response_model=list[str])
async def set_reader_services(
    reader_id: uuid.UUID, body: ServicesIn,
    ctx: Ctx = allow("admin", "superadmin", probe=Probe(
        "insert into reader_services (reader_id, service_id) values (:reader, (select min(id) from services)) "
        "on conflict (reader_id, service_id) do update set active = true")),
) -> list[str]:
    """The services a reader offers (those not listed are switched off)."""
    cur = await ctx.conn.execute("select 1 from profiles where id = %s and role_id = 3 and deleted_at is null",
                                 (reader_id,))
    if await cur.fetchone() is None:
        raise not_found("reader")
    cur = await ctx.conn.execute("select code from services where code = any(%s)", (body.services,))
    known = {r[0] for r in await cur.fetchall()}
    unknown = sorted(set(body.services) - known)
    if unknown:
        raise invalid(["body", "services"], "unknown service", detail=f"unknown services: {', '.join(unknown)}")
    await ctx.conn.execute("update reader_services set active = false where reader_id = %s", (reader_id,))
    await ctx.conn.execute(
        "insert into reader_services (reader_id, service_id) select %s, id from services where code = any(%s) "
        "on conflict (reader_id, service_id) do update set active = true", (reader_id, body.services))
    await ctx.conn.execute(
        "select app.audit('reader.services', 'profile', %s, jsonb_build_object('services', %s::text[]))",
        (str(reader_id), sorted(known)))
    return sorted(known)


@router.get("/availability/probe", response_model=ProbeOut)
async def probe(
    reader: uuid.UUID, service_: Annotated[str, Query(alias="service", pattern=r"^[a-z_]{2,40}$")],
    from_: Annotated[AwareDatetime, Query(alias="from")], to: AwareDatetime,
    ctx: Ctx = allow(AUTHENTICATED),
) -> dict[str, Any]:
    """Authoritative free slots, computed in the database (correct across DST changes)."""
    if to <= from_ or to - from_ > dt.timedelta(days=MAX_PROBE_DAYS):
        raise invalid(["query", "to"], f"`to` must be after `from`, at most {MAX_PROBE_DAYS} days later")
    slots = await service.free_slots(ctx.conn, reader, service_, from_, to)
    return {"reader": reader, "service": service_, "slots": slots}


@router.post("/bookings/hold", status_code=status.HTTP_201_CREATED, response_model=BookingOut)
async def hold(
    body: HoldIn,
    ctx: Ctx = allow("client", probe=service.HOLD_PROBE),
) -> dict[str, Any]:
    """A provisional hold on a slot for the hold TTL; exactly one of concurrent holds on a
    slot wins (409 slot_taken for the rest)."""
    booking_id = await service.hold(ctx, body.reader_id, body.service, body.starts_at)
    return await service.get_booking(ctx.conn, booking_id)


@router.get("/bookings", response_model=list[BookingOut])
async def my_bookings(ctx: Ctx = allow(AUTHENTICATED),
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    """The caller's bookings (as client or reader; staff see all), newest first."""
    return await service.list_bookings(ctx.conn, limit)


@router.get("/bookings/{booking_id}", response_model=BookingOut)
async def get_booking(booking_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await service.get_booking(ctx.conn, booking_id)


@router.post("/bookings/{booking_id}/pre-ritual", response_model=BookingOut)
async def confirm_pre_ritual(booking_id: Id, ctx: Ctx = allow("client", probe=service.PRE_RITUAL_PROBE)
                             ) -> dict[str, Any]:
    """Confirm you have done the preparation the service asks for (Healing Energy's pre-ritual);
    its call cannot start before. The reader sees when you confirmed."""
    await service.confirm_pre_ritual(ctx.conn, booking_id)
    return await service.get_booking(ctx.conn, booking_id)


class CancelIn(Input):
    reason: Annotated[str, Field(max_length=500)] | None = None


class CancelOut(BaseModel):
    booking_id: int
    status: str
    refund_minor: int
    refund_to: str | None


@router.post("/bookings/{booking_id}/cancel", response_model=CancelOut)
async def cancel(booking_id: Id, body: CancelIn, ctx: Ctx = allow(
        "client", "reader", "admin", "superadmin",
        probe=Probe("select 1 from bookings where id = :booking and app.booking_party(id) is not null")),
) -> dict[str, Any]:
    """Cancel a booking (or release it while only held). The refund follows the policy
    snapshotted at purchase: a client gets the curve's share, a reader or admin cancelling
    refunds in full; money goes back to the original method or to the wallet."""
    cur = await ctx.conn.execute(
        "select app.booking_party(b.id), b.status, b.starts_at, b.policy, t.amount_minor, t.provider, t.provider_ref "
        "from bookings b left join app.booking_charge(b.id) t on true where b.id = %s", (booking_id,))
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise not_found("booking")
    party, status_, starts_at, policy, paid, provider, charge_ref = row
    refund, ref = None, None
    if status_ == "confirmed" and paid:
        refund, ref = await refund_for_cancellation(
            ctx.platform.processor, booking_id=booking_id, policy=policy, starts_at=starts_at,
            cancelled_at=dt.datetime.now(dt.UTC), by=party, paid=paid, provider=provider, charge_ref=charge_ref)
    async with acting_as(ctx, "samia_payments"):
        cur = await ctx.conn.execute("select app.cancel_booking(%s, %s, %s, %s, %s, %s)",
                                     (booking_id, party, body.reason, refund.amount_minor if refund else 0,
                                      refund.destination if refund else None, ref))
        outcome = (await cur.fetchone())[0]  # type: ignore[index]
    return {"booking_id": booking_id, "status": outcome, "refund_minor": refund.amount_minor if refund else 0,
            "refund_to": refund.destination if refund and refund.amount_minor else None}


class RescheduleIn(Input):
    starts_at: AwareDatetime


@router.post("/bookings/{booking_id}/reschedule", response_model=BookingOut)
async def reschedule(booking_id: Id, body: RescheduleIn, ctx: Ctx = allow("client", probe=Probe(
        "select 1 from bookings where id = :booking and app.booking_party(id) = 'client'"))) -> dict[str, Any]:
    """Move a confirmed booking, within the reschedule rules snapshotted at purchase."""
    cur = await ctx.conn.execute("select policy, reschedules, starts_at from bookings "
                                 "where id = %s and client_id = auth.uid()", (booking_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("booking")
    why = may_reschedule(row[0], done=row[1], starts_at=row[2], now=dt.datetime.now(dt.UTC))
    if why:
        raise AppError(409, "not_reschedulable", why)
    await ctx.conn.execute("select app.reschedule_booking(%s, %s)", (booking_id, body.starts_at))
    return await service.get_booking(ctx.conn, booking_id)

"""Orders: a client's question → an assigned reader's recorded audio → a monitor's
approval of that exact file → delivery. Every move is one UPDATE of the status; the
database trigger (migration 020) decides whether the move and the caller are allowed,
pins the approved file's hash, writes moderation_actions and audit_log, and notifies."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, field_validator, model_validator

from samia.core.access import ADMINS, AUTHENTICATED, STAFF, STAFF_PROBE, Ctx, Probe, acting_as, allow
from samia.core.idempotency import Idempotency
from samia.core.models import Id, Input
from samia.core.problems import AppError, invalid, not_found
from samia.media.store import store_upload
from samia.orders.workflow import sources
from samia.readings import astro

router = APIRouter(tags=["orders"])

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
DECK = "rider_waite"
MAX_PHOTOS = 5


class BirthIn(Input):
    date: dt.date
    time: dt.time | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    tz: Annotated[str, Field(max_length=64)] | None = Field(None, description="IANA time zone, e.g. Asia/Beirut")

    @field_validator("tz")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("unknown IANA time zone") from None
        return v

    @field_validator("date")
    @classmethod
    def _range(cls, v: dt.date) -> dt.date:
        if not dt.date(1900, 1, 1) <= v <= dt.date(2049, 12, 31):  # the ephemeris' span
            raise ValueError("birth date must be between 1900 and 2049")
        return v

    @model_validator(mode="after")
    def _pairs(self) -> BirthIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.time is not None and self.tz is None:
            raise ValueError("a birth time needs its time zone (tz)")
        return self


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


# What everyone sees, then what only the reader and staff see; a client's row never
# carries the unapproved output, the rejection, the chart or the pinned hash.
PUBLIC_COLS = sql.SQL("""o.id, s.code as service, o.status::text, o.is_gold, o.question_text as question, o.price_minor,
  o.currency::text, o.deliver_by, o.delivered_at, o.created_at, o.updated_at,
  (select r.id from tarot_v2_readings r where r.order_id = o.id) as reading_id,
  array(select a.media_id from order_attachments a where a.order_id = o.id order by a.media_id) as photo_media_ids,
  case when o.status in ('delivered', 'archived') then o.approved_media_id end as audio_media_id""")
STAFF_COLS = sql.SQL(""", o.user_id::text as client_id, o.assigned_reader::text, o.output_media_id, o.approved_sha256,
  o.reject_reason, o.submitted_at, o.review_by,
  (o.delivery_breached_at is not null or (o.deliver_by < now() and o.status in ('new', 'assigned', 'in_progress',
   'rejected'))) as delivery_overdue,
  (o.review_breached_at is not null and o.status = 'awaiting_approval'
   or (o.review_by < now() and o.status = 'awaiting_approval')) as review_overdue, o.chart""")


def _cols(ctx: Ctx) -> sql.Composable:
    return PUBLIC_COLS if ctx.role == "client" else PUBLIC_COLS + STAFF_COLS


async def _fetch(ctx: Ctx, where: sql.SQL, params: tuple[Any, ...], order: sql.SQL = sql.SQL("o.id desc"),
                 limit: int = 100) -> list[dict[str, Any]]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    query = sql.SQL("select {} from orders o join services s on s.id = o.service_id where {} order by {} limit {}")
    await cur.execute(query.format(_cols(ctx), where, order, sql.Literal(int(limit))), params)
    return await cur.fetchall()


async def _order(ctx: Ctx, order_id: int) -> dict[str, Any]:
    rows = await _fetch(ctx, sql.SQL("o.id = %s"), (order_id,))
    if not rows:
        raise not_found("order")
    return rows[0]


async def _move(ctx: Ctx, order_id: int, to: str, **also: Any) -> None:
    """One transition (setting the `also` columns with it). Rows the caller may not see answer
    404; a move from a state that does not allow it answers 409 and changes nothing."""
    sets = sql.SQL("").join(sql.SQL(", {} = %s").format(sql.Identifier(column)) for column in also)
    cur = await ctx.conn.execute(
        sql.SQL("update orders set status = %s{} where id = %s and status::text = any(%s) returning id").format(sets),
        (to, *also.values(), order_id, sources(to)))
    if cur.rowcount == 1:
        return
    cur = await ctx.conn.execute("select status::text from orders where id = %s", (order_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("order")
    raise AppError(409, "illegal_transition", f"an order that is {row[0]} cannot become {to}",
                   extra={"order_status": row[0]})


# ---- client -------------------------------------------------------------------------

@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def create_order(body: OrderIn, idem_key: IdemKey = None, ctx: Ctx = allow("client", rate="orders", probe=Probe(
        "insert into orders (user_id, service_id) select auth.uid(), id from services where code = 'tarot'"))) -> Any:
    """Place an order (10 per hour by default). Priced services are paid from the wallet
    at once (422 `insufficient_funds` otherwise). Tarot: the cards are drawn now, server-side,
    face down; reveal them in order. Astrology: the chart is computed now for the reader."""
    idem = Idempotency(ctx, idem_key, body)
    replay = await idem.replay()
    if replay is not None:
        return replay
    cur = await ctx.conn.execute("select id, code from services where code = %s and is_active", (body.service,))
    svc = await cur.fetchone()
    if svc is None:
        raise invalid(["body", "service"], "unknown service", code="unknown_service")
    inputs: dict[str, Any] = {}
    chart = None
    if body.service == "astro":
        birth = body.birth or await _profile_birth(ctx)
        chart = await to_thread.run_sync(astro.chart, astro.Birth(birth.date, birth.time, birth.lat, birth.lon,
                                                                   birth.tz))  # CPU work off the event loop
        inputs["birth"] = birth.model_dump(mode="json")
    elif body.birth is not None:
        raise invalid(["body", "birth"], "birth data is for astrology orders only")
    if body.service == "tarot":
        inputs["spread"] = body.spread
    cur = await ctx.conn.execute(
        "insert into orders (user_id, service_id, is_gold, question_text, inputs, chart) "
        "values (auth.uid(), %s, %s, %s, %s, %s) returning id, price_minor, currency::text",
        (svc[0], body.is_gold, body.question, json.dumps(inputs), json.dumps(chart) if chart else None))
    order_id, price, currency = await cur.fetchone()  # type: ignore[misc]
    if price > 0:
        await _pay_from_wallet(ctx, order_id, price, currency)
    if body.service == "tarot":
        await _draw(ctx, order_id, body.spread)
    out = await _order(ctx, order_id)
    await idem.remember(201, json.loads(OrderOut(**out).model_dump_json()))
    ctx.platform.metrics.orders.labels("created").inc()
    return out


async def _profile_birth(ctx: Ctx) -> BirthIn:
    cur = await ctx.conn.execute("select dob, birth_time, birth_lat, birth_lon, birth_tz from profiles "
                                 "where id = auth.uid()")
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise invalid(["body", "birth", "date"], "a date of birth is required for a natal chart")
    dob, time, lat, lon, tz = row
    try:
        return BirthIn(date=dob, time=time if tz else None, lat=lat, lon=lon, tz=tz)
    except ValueError:
        return BirthIn(date=dob)


async def _pay_from_wallet(ctx: Ctx, order_id: int, price: int, currency: str) -> None:
    cur = await ctx.conn.execute(
        "insert into payment_transactions (user_id, provider, kind, amount_minor, currency, order_id) "
        "values (auth.uid(), 'wallet', 'charge', %s, %s, %s) returning id", (price, currency, order_id))
    txn = (await cur.fetchone())[0]  # type: ignore[index]
    async with acting_as(ctx, "samia_payments"):
        cur = await ctx.conn.execute("select app.settle_charge(%s, null)", (txn,))
        outcome = (await cur.fetchone())[0]  # type: ignore[index]
    if outcome == "insufficient_funds":
        raise AppError(422, "insufficient_funds", f"this reading costs {price} {currency}; top up the wallet first",
                       extra={"price_minor": price, "currency": currency})


async def _draw(ctx: Ctx, order_id: int, spread: str) -> None:
    """Shuffle with the operating system's CSPRNG (`secrets`), never `random`."""
    cur = await ctx.conn.execute("select (select array_agg(id order by id) from deck_cards "
                                 "where deck_code = %s and not is_back), "
                                 "(select jsonb_array_length(positions) from tarot_spreads where code = %s)",
                                 (DECK, spread))
    cards, n = await cur.fetchone()  # type: ignore[misc]
    drawn = secrets.SystemRandom().sample(cards, n)
    reversed_ = [secrets.randbelow(2) == 1 for _ in drawn]
    async with acting_as(ctx, "samia_readings"):
        await ctx.conn.execute("select app.record_draw(%s, %s, %s, %s, %s)", (order_id, DECK, spread, drawn, reversed_))


@router.get("/orders", response_model=list[OrderOut])
async def list_orders(ctx: Ctx = allow(AUTHENTICATED),
                      status_: Annotated[Literal["new", "assigned", "in_progress", "awaiting_approval", "approved",
                                                 "rejected", "delivered", "cancelled", "archived"] | None,
                                         Query(alias="status")] = None,
                      before: Annotated[int | None, Query(ge=1, le=2**62, description="keyset: ids below this")] = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 50) -> list[dict[str, Any]]:
    """Your orders (clients), the orders assigned to you (readers), all orders (staff):
    the database's row-level security decides. Newest first; page with `before`."""
    return await _fetch(ctx, sql.SQL("(%s::text is null or o.status::text = %s) and (%s::bigint is null or o.id < %s)"),
                        (status_, status_, before, before), limit=limit)


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await _order(ctx, order_id)


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
    cur = await ctx.conn.execute("select status::text, (select count(*) from order_attachments a "
                                 "where a.order_id = o.id) from orders o where id = %s and user_id = auth.uid() "
                                 "for update", (order_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("order")
    if row[0] != "new":
        raise AppError(409, "illegal_transition", "photos are added before the order is assigned")
    if row[1] >= MAX_PHOTOS:
        raise AppError(409, "too_many_photos", f"at most {MAX_PHOTOS} photos per order")
    media_id = await store_upload(ctx, await request.body(), kinds={"image"}, prefix=f"orders/{order_id}/photos",
                                  purpose="order_photo")
    await ctx.conn.execute("insert into order_attachments (order_id, media_id) values (%s, %s)", (order_id, media_id))
    await ctx.conn.execute("select app.audit('order.photo_added', 'order', %s, %s)",
                           (str(order_id), json.dumps({"media": media_id})))
    return await _order(ctx, order_id)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(order_id: Id, ctx: Ctx = allow("client", *ADMINS, probe=Probe(
        "update orders set status = 'cancelled' where id = :order_new"))) -> Any:
    """Cancel before the reader has started; a paid order is refunded to the wallet."""
    await _move(ctx, order_id, "cancelled")
    async with acting_as(ctx, "samia_payments"):
        await ctx.conn.execute("select app.refund_order(%s, 'cancelled')", (order_id,))
    return await _order(ctx, order_id)


@router.post("/orders/{order_id}/archive", response_model=OrderOut)
async def archive_order(order_id: Id, ctx: Ctx = allow("client", *ADMINS, probe=Probe(
        "update orders set status = 'archived' where id = :order_delivered"))) -> Any:
    await _move(ctx, order_id, "archived")
    return await _order(ctx, order_id)


# ---- admin --------------------------------------------------------------------------

ASSIGN_PROBE = Probe("update orders set assigned_reader = :reader, status = 'assigned' where id = :order_new")


@router.post("/orders/{order_id}/assign", response_model=OrderOut)
async def assign_order(order_id: Id, body: AssignIn, ctx: Ctx = allow(*ADMINS, probe=ASSIGN_PROBE)) -> Any:
    """Assign a reader, or omit `reader_id` for the least-loaded active reader who offers
    the service. Also reassigns work in progress (the new reader starts afresh)."""
    reader = body.reader_id
    if reader is None:
        cur = await ctx.conn.execute("select app.pick_reader(service_id)::text from orders where id = %s", (order_id,))
        row = await cur.fetchone()
        if row is None:
            raise not_found("order")
        if row[0] is None:
            raise AppError(409, "no_reader_available", "no active reader offers this service")
        reader = row[0]
    await _move(ctx, order_id, "assigned", assigned_reader=reader)
    return await _order(ctx, order_id)


@router.get("/admin/queue", response_model=list[OrderOut])
async def admin_queue(ctx: Ctx = allow(*ADMINS, probe=ASSIGN_PROBE)) -> list[dict[str, Any]]:
    """Orders waiting for a reader: golden first, then oldest."""
    return await _fetch(ctx, sql.SQL("o.status = 'new'"), (), order=sql.SQL("o.is_gold desc, o.created_at, o.id"))


# ---- reader -------------------------------------------------------------------------

@router.get("/reader/queue", response_model=list[OrderOut])
async def reader_queue(ctx: Ctx = allow("reader", probe=Probe(
        "select 1 from orders where assigned_reader = auth.uid()"))) -> list[dict[str, Any]]:
    """Your open work: golden first, then the nearest delivery deadline."""
    return await _fetch(ctx, sql.SQL("o.assigned_reader = auth.uid() and o.status in ('assigned', 'in_progress', "
                                     "'rejected')"), (), order=sql.SQL("o.is_gold desc, o.deliver_by, o.id"))


@router.post("/orders/{order_id}/start", response_model=OrderOut)
async def start_order(order_id: Id, ctx: Ctx = allow("reader", probe=Probe(
        "update orders set status = 'in_progress' where id = :order_assigned"))) -> Any:
    """Start (or, after a rejection, resume) work on an order assigned to you."""
    await _move(ctx, order_id, "in_progress")
    return await _order(ctx, order_id)


@router.post("/orders/{order_id}/output", response_model=OrderOut, openapi_extra={"requestBody": UPLOAD})
async def upload_output(order_id: Id, request: Request, ctx: Ctx = allow("reader", probe=Probe(
        "with m as (insert into media_assets (owner_id, kind, storage_key) values (auth.uid(), 'audio', 'probe/a') "
        "returning id) update orders set output_media_id = (select id from m) where id = :order_wip"))) -> Any:
    """The recorded reading (MP3, Ogg, WAV, M4A, WebM or FLAC, at most MAX_AUDIO_BYTES),
    checked with ffprobe. Replaces an earlier upload; each upload needs its own approval."""
    cur = await ctx.conn.execute("select status::text from orders where id = %s for update", (order_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("order")
    if row[0] != "in_progress":
        raise AppError(409, "illegal_transition", f"audio is uploaded while the order is in progress, not {row[0]}")
    media_id = await store_upload(ctx, await request.body(), kinds={"audio"}, prefix=f"orders/{order_id}/output",
                                  purpose="order_output")
    await ctx.conn.execute("update orders set output_media_id = %s where id = %s", (media_id, order_id))
    return await _order(ctx, order_id)


@router.post("/orders/{order_id}/submit", response_model=OrderOut)
async def submit_order(order_id: Id, ctx: Ctx = allow("reader", probe=Probe(
        "update orders set status = 'awaiting_approval' where id = :order_wip"))) -> Any:
    """Send the uploaded audio for review; the monitor's clock starts."""
    await _move(ctx, order_id, "awaiting_approval")
    return await _order(ctx, order_id)


# ---- monitor ------------------------------------------------------------------------

@router.get("/monitor/queue", response_model=list[OrderOut])
async def monitor_queue(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> list[dict[str, Any]]:
    """Audio waiting for review: golden first, then the oldest submission."""
    return await _fetch(ctx, sql.SQL("o.status = 'awaiting_approval'"), (),
                        order=sql.SQL("o.is_gold desc, o.submitted_at, o.id"))


@router.post("/monitor/orders/{order_id}/approve", response_model=OrderOut)
async def approve_order(order_id: Id, body: ApproveIn | None = None, ctx: Ctx = allow(*STAFF, probe=Probe(
        "update orders set status = 'approved' where id = :order_review"))) -> Any:
    """Approve the exact file under review (its sha256 is pinned) and, by default, deliver
    it to the client. Two concurrent approvals produce one: the second answers 409."""
    await _move(ctx, order_id, "approved")
    ctx.platform.metrics.orders.labels("approved").inc()
    if body is None or body.deliver:
        await _move(ctx, order_id, "delivered")
        ctx.platform.metrics.orders.labels("delivered").inc()
    return await _order(ctx, order_id)


@router.post("/monitor/orders/{order_id}/reject", response_model=OrderOut)
async def reject_order(order_id: Id, body: RejectIn, ctx: Ctx = allow(*STAFF, probe=Probe(
        "update orders set status = 'rejected', reject_reason = 'probe' where id = :order_review"))) -> Any:
    """Send the work back to the reader with a reason."""
    await _move(ctx, order_id, "rejected", reject_reason=body.reason)
    ctx.platform.metrics.orders.labels("rejected").inc()
    return await _order(ctx, order_id)


@router.post("/monitor/orders/{order_id}/deliver", response_model=OrderOut)
async def deliver_order(order_id: Id, ctx: Ctx = allow(*STAFF, probe=Probe(
        "update orders set status = 'delivered' where id = :order_approved"))) -> Any:
    """Deliver an approved order (when it was approved with `deliver: false`)."""
    await _move(ctx, order_id, "delivered")
    return await _order(ctx, order_id)


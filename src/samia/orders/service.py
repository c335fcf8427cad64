"""Orders: placing one (priced from the wallet, tarot drawn, astrology charted), reading
them as the caller may see them, and moving them along the workflow. The API and the web
pages call these; the database trigger decides every move."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anyio import to_thread
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import Field, field_validator, model_validator

from samia.core.access import Ctx, Probe, acting_as
from samia.core.models import Input
from samia.core.problems import AppError, invalid, not_found
from samia.media.store import store_upload
from samia.orders.workflow import sources
from samia.readings import astro

# what placing an order rests on (the API and the order pages declare it)
PLACE_PROBE = Probe(
    "insert into orders (user_id, service_id) select auth.uid(), id from services where code = 'tarot'")

# what the reader's and the monitor's routes rest on (API and the staff pages)
READER_PROBE = Probe(
    "select 1 from orders where assigned_reader = auth.uid()")
START_PROBE = Probe(
    "update orders set status = 'in_progress' where id = :order_assigned")
OUTPUT_PROBE = Probe(
    "with m as (insert into media_assets (owner_id, kind, storage_key) values (auth.uid(), 'audio', 'probe/a') "
    "returning id) update orders set output_media_id = (select id from m) where id = :order_wip")
SUBMIT_PROBE = Probe(
    "update orders set status = 'awaiting_approval' where id = :order_wip")
APPROVE_PROBE = Probe(
    "update orders set status = 'approved' where id = :order_review")
REJECT_PROBE = Probe(
    "update orders set status = 'rejected', reject_reason = 'probe' where id = :order_review")

PERFORMANCE_PROBE = Probe("select 1 from app.my_reader_stats(30)")

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


def columns(ctx: Ctx) -> sql.Composable:
    return PUBLIC_COLS if ctx.role == "client" else PUBLIC_COLS + STAFF_COLS


async def fetch(ctx: Ctx, where: sql.SQL, params: tuple[Any, ...], order: sql.SQL = sql.SQL("o.id desc"),
                limit: int = 100) -> list[dict[str, Any]]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    query = sql.SQL("select {} from orders o join services s on s.id = o.service_id where {} order by {} limit {}")
    await cur.execute(query.format(columns(ctx), where, order, sql.Literal(int(limit))), params)
    return await cur.fetchall()


async def get_order(ctx: Ctx, order_id: int) -> dict[str, Any]:
    rows = await fetch(ctx, sql.SQL("o.id = %s"), (order_id,))
    if not rows:
        raise not_found("order")
    return rows[0]


async def move(ctx: Ctx, order_id: int, to: str, **also: Any) -> None:
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


async def place_order(ctx: Ctx, *, service: str, question: str | None, is_gold: bool = False,
                      spread: str = "three_card", birth: BirthIn | None = None) -> dict[str, Any]:
    """Place an order as the calling client. Priced services are paid from the wallet at once
    (422 `insufficient_funds` otherwise). Tarot: the cards are drawn now, server-side, face
    down. Astrology: the chart is computed now for the reader."""
    cur = await ctx.conn.execute("select id, code from services where code = %s and is_active", (service,))
    svc = await cur.fetchone()
    if svc is None:
        raise invalid(["body", "service"], "unknown service", code="unknown_service")
    inputs: dict[str, Any] = {}
    chart = None
    if service == "astro":
        birth = birth or await _profile_birth(ctx)
        chart = await to_thread.run_sync(astro.chart, astro.Birth(birth.date, birth.time, birth.lat, birth.lon,
                                                                   birth.tz))  # CPU work off the event loop
        inputs["birth"] = birth.model_dump(mode="json")
    elif birth is not None:
        raise invalid(["body", "birth"], "birth data is for astrology orders only")
    if service == "tarot":
        inputs["spread"] = spread
    cur = await ctx.conn.execute(
        "insert into orders (user_id, service_id, is_gold, question_text, inputs, chart) "
        "values (auth.uid(), %s, %s, %s, %s, %s) returning id, price_minor, currency::text",
        (svc[0], is_gold, question, json.dumps(inputs), json.dumps(chart) if chart else None))
    order_id, price, currency = await cur.fetchone()  # type: ignore[misc]
    if price > 0:
        await _pay_from_wallet(ctx, order_id, price, currency)
    if service == "tarot":
        await _draw(ctx, order_id, spread)
    ctx.platform.metrics.orders.labels("created").inc()
    return await get_order(ctx, order_id)


async def list_orders(ctx: Ctx, *, status: str | None = None, before: int | None = None,
                      limit: int = 50) -> list[dict[str, Any]]:
    """The caller's orders (clients), those assigned to them (readers), all (staff): RLS decides."""
    return await fetch(ctx, sql.SQL("(%s::text is null or o.status::text = %s) and (%s::bigint is null or o.id < %s)"),
                       (status, status, before, before), limit=limit)


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
        return BirthIn(date=dob, time=None, lat=None, lon=None, tz=None)


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


async def add_photo(ctx: Ctx, order_id: int, data: bytes) -> None:
    """A photo of the cup (coffee reading) while the order is new: JPEG, PNG or WebP, sniffed
    from the bytes, at most MAX_IMAGE_BYTES, up to MAX_PHOTOS per order."""
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
    media_id = await store_upload(ctx, data, kinds={"image"}, prefix=f"orders/{order_id}/photos",
                                  purpose="order_photo")
    await ctx.conn.execute("insert into order_attachments (order_id, media_id) values (%s, %s)", (order_id, media_id))
    await ctx.conn.execute("select app.audit('order.photo_added', 'order', %s, %s)",
                           (str(order_id), json.dumps({"media": media_id})))


# ---- the reader's and the monitor's work ------------------------------------------------

async def reader_queue(ctx: Ctx) -> list[dict[str, Any]]:
    """The calling reader's open work: golden first, then the nearest delivery deadline."""
    return await fetch(ctx, sql.SQL("o.assigned_reader = auth.uid() and o.status in ('assigned', "
                                    "'in_progress', 'rejected')"), (),
                       order=sql.SQL("o.is_gold desc, o.deliver_by, o.id"))


async def review_queue(ctx: Ctx, limit: int = 100) -> list[dict[str, Any]]:
    """Audio waiting for a monitor: golden first, then the oldest submission."""
    return await fetch(ctx, sql.SQL("o.status = 'awaiting_approval'"), (),
                       order=sql.SQL("o.is_gold desc, o.submitted_at, o.id"), limit=limit)


async def upload_output(ctx: Ctx, order_id: int, data: bytes) -> int:
    """The reader's recorded reading for an order in progress (checked with ffprobe); it
    replaces an earlier upload, and each upload needs its own approval. Returns the media id."""
    cur = await ctx.conn.execute("select status::text from orders where id = %s for update", (order_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("order")
    if row[0] != "in_progress":
        raise AppError(409, "illegal_transition", f"audio is uploaded while the order is in progress, not {row[0]}")
    media_id = await store_upload(ctx, data, kinds={"audio"}, prefix=f"orders/{order_id}/output",
                                  purpose="order_output")
    await ctx.conn.execute("update orders set output_media_id = %s where id = %s", (media_id, order_id))
    return media_id


async def approve(ctx: Ctx, order_id: int, *, deliver: bool = True) -> None:
    """Approve the exact file under review (the trigger pins its sha256) and, by default,
    deliver it. Of two concurrent approvals one wins; the other answers 409."""
    await move(ctx, order_id, "approved")
    ctx.platform.metrics.orders.labels("approved").inc()
    if deliver:
        await move(ctx, order_id, "delivered")
        ctx.platform.metrics.orders.labels("delivered").inc()


async def reject(ctx: Ctx, order_id: int, reason: str) -> None:
    """Send the work back to the reader with a reason."""
    await move(ctx, order_id, "rejected", reject_reason=reason)
    ctx.platform.metrics.orders.labels("rejected").inc()


async def my_performance(ctx: Ctx, days: int = 30) -> dict[str, Any]:
    """The calling reader's last `days`: deliveries, average hours to deliver, late deliveries,
    and the monitors' approvals and rejections of their audio (app.my_reader_stats)."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select * from app.my_reader_stats(%s)", (days,))
    row = await cur.fetchone() or {"delivered": 0, "avg_hours": None, "late": 0, "approved": 0, "rejected": 0}
    decided = row["approved"] + row["rejected"]
    return {**row, "days": days, "approval_rate": round(100 * row["approved"] / decided) if decided else None}

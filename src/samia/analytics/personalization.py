"""Personalization (seeds 001 M25): internal rankings of content ids and notification
candidates, its A/B metrics, the user's opt-out, and the storefront's reader order.

The ranking itself is SQL (schema/16_analytics.sql: app.personalize and its four rankers): a
weighted sum of explainable signals, no model and no text. Scores, rationale codes and
confidence are stored with each decision and never returned to a client.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.analytics.service import Span, frame, rate

KINDS = ("readers", "services", "horoscopes", "notifications")


async def recommend(conn: AsyncConnection, *, user_id: str, kind: str, device: str | None,
                    limit: int) -> dict[str, Any]:
    """Rank for a user and record the decision (staff and services; app.record_recommendation
    refuses anyone else). Ids and ranks only."""
    cur = await conn.execute("select * from app.record_recommendation(%s::uuid, %s, %s, %s)",
                             (user_id, kind, device, limit))
    rows = await cur.fetchall()
    return {"decision_id": rows[0][0], "user_id": user_id, "kind": kind, "variant": rows[0][1],
            "items": [{"id": item, "rank": rank} for _, _, item, rank in rows if item is not None]}


async def order_readers(conn: AsyncConnection, readers: list[dict[str, Any]], *,
                        device: str | None = None) -> list[dict[str, Any]]:
    """The storefront's reader list, in the signed-in caller's own order (personalised, or the
    list's own order for the control arm, an opt-out or an anonymous caller). Call it on the
    result of catalogue.service.list_readers, in the same request transaction:

        readers = await catalogue_service.list_readers(ctx.conn, settings, country=..., ...)
        readers = await personalization.order_readers(ctx.conn, readers, device="ios")

    Readers the ranking does not know keep their relative order, after the ranked ones."""
    cur = await conn.execute("select item, rank from app.ranked_items('readers', %s)", (device,))
    rank = {item: r for item, r in await cur.fetchall()}
    if not rank:
        return readers
    indexed = list(enumerate(readers))
    indexed.sort(key=lambda p: (rank.get(str(p[1]["reader_id"]), len(rank) + p[0]), p[0]))
    return [r for _, r in indexed]


# A decision converts when, within 7 days, its user does something with one of its first three
# items: books or calls a recommended reader, orders or books a recommended service, listens to
# a recommended horoscope, clicks a notification.
METRICS = """
    with d as (
      select x.* from personalization_decisions x
       where app.beirut_day(x.created_at) between %(f)s and %(t)s
    ),
    judged as (
      select d.kind, d.variant, d.user_id, d.confidence,
             exists (select 1 from events_raw e
                      where e.user_id = d.user_id and e.occurred_at > d.created_at
                        and e.occurred_at <= d.created_at + interval '7 days'
                        and ((d.kind = 'readers' and e.type in ('booking.held', 'call.created')
                              and e.reader_id::text = any (d.items[1:3]))
                          or (d.kind = 'services' and e.type in ('order.created', 'booking.held')
                              and e.service_id::text = any (d.items[1:3]))
                          or (d.kind = 'horoscopes' and e.type = 'horoscope.listen_started'
                              and e.subject_id::text = any (d.items[1:3]))
                          or (d.kind = 'notifications' and e.type = 'notification.clicked'))) as converted
        from d
    )
    select j.kind, j.variant, count(*)::bigint as decisions, count(distinct j.user_id)::bigint as users,
           count(*) filter (where j.converted)::bigint as conversions, round(avg(j.confidence), 3) as mean_confidence
      from judged j group by 1, 2 order by 1, 2"""


async def metrics(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Per kind and arm: decisions, users, conversions and the conversion rate, and the lift
    of the personalised arm over the control (rate ÷ rate)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(METRICS, span.params)
    rows = [{**r, "mean_confidence": float(r["mean_confidence"]) if r["mean_confidence"] is not None else None,
             "conversion_rate": rate(r["conversions"], r["decisions"])} for r in await cur.fetchall()]
    arms = await conn.execute("select kind, personalised_pct from personalization_arms order by kind")
    split: dict[str, int] = dict(await arms.fetchall())
    lift = {}
    for kind in KINDS:
        by = {r["variant"]: r["conversion_rate"] for r in rows if r["kind"] == kind}
        p, c = by.get("personalised"), by.get("control")
        lift[kind] = round(p / c, 4) if p is not None and c else None
    return {**await frame(conn, span), "personalised_pct": split, "arms": rows, "lift": lift}


async def opt_out_status(conn: AsyncConnection) -> dict[str, Any]:
    cur = await conn.execute("select exists (select 1 from personalization_opt_outs where user_id = auth.uid())")
    row = await cur.fetchone()
    return {"personalised": not (row and row[0])}


async def set_personalised(conn: AsyncConnection, personalised: bool) -> dict[str, Any]:
    """The caller's own choice: false records an opt-out (rankings fall back to the
    non-personalised order at once), true removes it."""
    if personalised:
        await conn.execute("delete from personalization_opt_outs where user_id = auth.uid()")
    else:
        await conn.execute("insert into personalization_opt_outs (user_id) values (auth.uid()) on conflict do nothing")
    return await opt_out_status(conn)

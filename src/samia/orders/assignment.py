"""Admins assigning orders to readers: the queue of orders waiting for one, the readers who
offer a service with their current load, and the assignment itself (a named reader, or the
least-loaded eligible one: app.pick_reader). The API (/admin/queue, /orders/{id}/assign) and
the admin console call these."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.core.access import Ctx, Probe
from samia.core.problems import AppError, not_found
from samia.orders import service

ASSIGN_PROBE = Probe("update orders set assigned_reader = :reader, status = 'assigned' where id = :order_new")
OPEN_WORK = ("assigned", "in_progress", "rejected", "awaiting_approval")


async def unassigned(ctx: Ctx) -> list[dict[str, Any]]:
    """Orders waiting for a reader: golden first, then oldest."""
    return await service.fetch(ctx, sql.SQL("o.status = 'new'"), (),
                               order=sql.SQL("o.is_gold desc, o.created_at, o.id"))


async def assign(ctx: Ctx, order_id: int, reader_id: str | None) -> dict[str, Any]:
    """Assign `reader_id`, or with None the least-loaded active reader who offers the service.
    Also reassigns work in progress (the new reader starts afresh)."""
    reader = reader_id
    if reader is None:
        cur = await ctx.conn.execute("select app.pick_reader(service_id)::text from orders where id = %s", (order_id,))
        row = await cur.fetchone()
        if row is None:
            raise not_found("order")
        if row[0] is None:
            raise AppError(409, "no_reader_available", "no active reader offers this service")
        reader = row[0]
    await service.move(ctx, order_id, "assigned", assigned_reader=reader)
    return await service.get_order(ctx, order_id)


async def readers_with_load(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Active readers, the service codes they offer and their open work, least loaded first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select p.id::text, coalesce(nullif(trim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')), ''),
                                    p.email::text) as name,
               array(select s.code from reader_services rs join services s on s.id = rs.service_id
                      where rs.reader_id = p.id and rs.active order by s.code) as services,
               (select count(*) from orders o where o.assigned_reader = p.id
                 and o.status::text = any(%s)) as load
          from profiles p join roles r on r.id = p.role_id
         where r.code = 'reader' and p.deleted_at is null and p.blocked_at is null
         order by load, name limit 200""", (list(OPEN_WORK),))
    return await cur.fetchall()

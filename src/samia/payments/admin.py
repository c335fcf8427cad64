"""The admins' side of payments: the bank-transfer queue and its decisions, and where each
payment method is offered. The API (/admin/payments/…) and the admin console call these."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.core.access import Ctx, Probe, acting_as
from samia.core.problems import AppError, not_found
from samia.payments.service import payment

# what the transfer queue and its decisions rest on (API and console)
TRANSFERS_PROBE = Probe("select 1 from payment_transactions where user_id = :other")
# what editing a payment method's countries rests on (API and console)
METHODS_PROBE = Probe("update payment_methods set enabled = enabled where code = 'card'")
METHODS = ("card", "square", "usdt", "bank_transfer", "wallet")


async def transfer_queue(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Bank transfers waiting for a decision, oldest first (those with proof first)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select t.id, t.kind, t.provider, t.status, t.amount_minor, t.currency::text, t.booking_id,
               b.status as booking_status, t.failure_reason, t.created_at, t.user_id::text,
               (t.metadata->>'proof_media_id')::bigint as proof_media_id
          from payment_transactions t left join bookings b on b.id = t.booking_id
         where t.provider = 'bank_transfer' and t.status = 'requires_action'
         order by (t.metadata ? 'proof_media_id') desc, t.created_at""")
    return await cur.fetchall()


async def _waiting_transfer(conn: AsyncConnection, payment_id: int) -> None:
    """A transfer still waiting; one decided already answers 409 `already_decided` (the
    settlement functions themselves settle or fail a charge once)."""
    cur = await conn.execute("select status from payment_transactions where id = %s and provider = 'bank_transfer'",
                             (payment_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("transfer")
    if row[0] != "requires_action":
        raise AppError(409, "already_decided", f"this transfer was already decided ({row[0]})",
                       extra={"payment_status": row[0]})


async def approve_transfer(ctx: Ctx, payment_id: int) -> dict[str, Any]:
    """The money arrived: settle it (ledger + booking confirmation). Audited with the admin.
    The reference names the transfer and the admin: provider references are unique per
    provider, so one naming the admin alone let each admin approve a single transfer ever."""
    await _waiting_transfer(ctx.conn, payment_id)
    async with acting_as(ctx, "samia_payments"):
        await ctx.conn.execute("select app.settle_charge(%s, %s)", (payment_id, f"manual:{payment_id}:{ctx.user_id}"))
    return await payment(ctx.conn, payment_id)


async def decline_transfer(ctx: Ctx, payment_id: int, reason: str) -> dict[str, Any]:
    """No (valid) transfer: fail it, release the booking's hold and tell the client why."""
    await _waiting_transfer(ctx.conn, payment_id)
    async with acting_as(ctx, "samia_payments"):
        await ctx.conn.execute("select app.fail_charge(%s, %s)", (payment_id, reason))
    return await payment(ctx.conn, payment_id)


POLICY = ("select m.code, m.enabled, m.all_countries, array(select c.country_code::text "
          "from payment_method_countries c where c.method = m.code order by 1) as countries "
          "from payment_methods m where %(code)s::text is null or m.code = %(code)s order by m.code")


async def method_policies(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(POLICY, {"code": None})
    return await cur.fetchall()


async def set_method_policy(conn: AsyncConnection, code: str, *, enabled: bool, all_countries: bool,
                            countries: list[str]) -> dict[str, Any]:
    """Where a method is offered: everywhere, or in the listed countries. Audited."""
    chosen = sorted(set(countries))
    cur = await conn.execute("update payment_methods set enabled = %s, all_countries = %s where code = %s "
                             "returning code", (enabled, all_countries, code))
    if await cur.fetchone() is None:
        raise not_found("payment method")
    await conn.execute("delete from payment_method_countries where method = %s", (code,))
    async with conn.cursor() as batch:
        await batch.executemany("insert into payment_method_countries (method, country_code) values (%s, %s)",
                                [(code, c) for c in chosen])
    await conn.execute("select app.audit('payment.method_policy', 'payment_method', %s, %s)",
                       (code, json.dumps({"enabled": enabled, "all_countries": all_countries, "countries": countries})))
    rows = conn.cursor(row_factory=dict_row)
    await rows.execute(POLICY, {"code": code})
    return await rows.fetchone()  # type: ignore[return-value]

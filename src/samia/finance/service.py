"""Finance reports: the daily reconciliation of payment transactions, the ledger and bookings
(the rules are app.reconciliation_totals / app.reconciliation in schema/10_payments.sql)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection

from samia.core.access import Probe

PROBE = Probe("select 1 from payment_transactions where user_id = :other")


def default_day() -> dt.date:
    """Yesterday (UTC): the last whole day."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


async def reconciliation(conn: AsyncConnection, day: dt.date) -> dict[str, Any]:
    """Provider transactions vs ledger vs bookings for one UTC day, with every mismatch listed."""
    cur = await conn.execute("select provider, kind, payments, amount_minor from app.reconciliation_totals(%s)",
                             (day,))
    totals = [dict(zip(("provider", "kind", "payments", "amount_minor"), r, strict=True)) for r in await cur.fetchall()]
    cur = await conn.execute("select kind, ref, detail from app.reconciliation(%s)", (day,))
    mismatches = [dict(zip(("kind", "ref", "detail"), r, strict=True)) for r in await cur.fetchall()]
    return {"date": day, "balanced": not mismatches, "totals": totals, "mismatches": mismatches}

"""Finance reports for admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from samia.core.access import Ctx, Probe, allow

router = APIRouter(tags=["finance"])


class Total(BaseModel):
    provider: str
    kind: str
    payments: int
    amount_minor: int


class Mismatch(BaseModel):
    kind: str
    ref: str
    detail: str


class Reconciliation(BaseModel):
    date: dt.date
    balanced: bool
    totals: list[Total]
    mismatches: list[Mismatch]


@router.get("/admin/finance/reconciliation", response_model=Reconciliation)
async def reconciliation(
    date: Annotated[dt.date | None, Query(description="UTC day; default yesterday")] = None,
    ctx: Ctx = allow("admin", "superadmin", probe=Probe("select 1 from payment_transactions where user_id = :other")),
) -> dict[str, Any]:
    """Provider transactions vs ledger vs bookings for one day, with every mismatch listed."""
    day = date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    cur = await ctx.conn.execute("select provider, kind, payments, amount_minor from app.reconciliation_totals(%s)",
                                 (day,))
    totals = [dict(zip(("provider", "kind", "payments", "amount_minor"), r, strict=True)) for r in await cur.fetchall()]
    cur = await ctx.conn.execute("select kind, ref, detail from app.reconciliation(%s)", (day,))
    mismatches = [dict(zip(("kind", "ref", "detail"), r, strict=True)) for r in await cur.fetchall()]
    return {"date": day, "balanced": not mismatches, "totals": totals, "mismatches": mismatches}

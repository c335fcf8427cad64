"""Finance reports for admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from samia.core.access import Ctx, allow
from samia.finance import service

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
    ctx: Ctx = allow("admin", "superadmin", probe=service.PROBE),
) -> dict[str, Any]:
    """Provider transactions vs ledger vs bookings for one day, with every mismatch listed."""
    return await service.reconciliation(ctx.conn, date or service.default_day())

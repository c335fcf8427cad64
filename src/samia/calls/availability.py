"""Readers' availability for instant calls, and the instant windows an admin approves (inside
one a reader stays available unless on a call; a trigger enforces it)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import Field, model_validator

from samia.calls import service
from samia.core.access import ADMINS, AUTHENTICATED, Ctx, Probe, allow
from samia.core.models import Id, Input
from samia.core.problems import not_found

router = APIRouter(tags=["calls"])


class StatusIn(Input):
    available: bool


class WindowIn(Input):
    starts_at: dt.datetime
    ends_at: dt.datetime

    @model_validator(mode="after")
    def _order(self) -> WindowIn:
        if self.ends_at <= self.starts_at or self.ends_at - self.starts_at > dt.timedelta(hours=12):
            raise ValueError("a window ends after it starts and lasts at most 12 hours")
        return self


class DecisionIn(Input):
    note: Annotated[str, Field(max_length=500)] | None = None


@router.put("/readers/me/status")
async def set_status(body: StatusIn, ctx: Ctx = allow("reader", probe=service.ANSWER_PROBE)) -> dict[str, Any]:
    """Go available or unavailable. Inside an admin-approved instant window a reader stays
    available unless on a call: 409 `in_instant_window` (and the attempt is logged)."""
    return await service.set_status(ctx, body.available)


@router.get("/readers/available")
async def available_readers(ctx: Ctx = allow(AUTHENTICATED)) -> list[dict[str, Any]]:
    """Readers available now and not on a call, with the call services they offer."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select s.reader_id::text, array(select sv.code from reader_services rs join services sv on sv.id = rs.service_id
                                         where rs.reader_id = s.reader_id and rs.active and sv.kind = 'call'
                                         order by sv.code) as services
          from reader_status s where s.available and not app.on_live_call(s.reader_id) order by s.updated_at""")
    return await cur.fetchall()


WINDOW_COLS = service.WINDOW_COLS


@router.post("/readers/me/instant-windows", status_code=status.HTTP_201_CREATED)
async def request_window(body: WindowIn, ctx: Ctx = allow("reader", probe=service.WINDOW_REQUEST_PROBE)
        ) -> dict[str, Any]:
    """Ask an admin to approve a window in which you take instant calls."""
    return await service.request_window(ctx.conn, body.starts_at, body.ends_at)


WINDOW_PROBE = Probe("update instant_windows set status = 'approved', decided_by = auth.uid() where id = :window")


@router.post("/admin/instant-windows/{window_id}/{decision}")
async def decide_window(window_id: Id, decision: Literal["approve", "reject"], body: DecisionIn,
                        ctx: Ctx = allow(*ADMINS, probe=WINDOW_PROBE)) -> dict[str, Any]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("update instant_windows set status = %s, decided_by = auth.uid(), decided_at = now(), "
                              "note = %s where id = %s and status = 'requested' returning {}").format(WINDOW_COLS),
                      ("approved" if decision == "approve" else "rejected", body.note, window_id))
    row = await cur.fetchone()
    if row is None:
        raise not_found("window waiting for a decision")
    await ctx.conn.execute("select app.audit(%s, 'instant_window', %s, '{}'::jsonb)",
                           (f"instant_window.{row['status']}", str(window_id)))
    return row

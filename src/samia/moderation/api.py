"""Moderation (seeds 001 M21): reports and the cases queue, atomic claims, blocks and
unblocks, order moderation, appeals and evidence lineage. The rules live in the database
functions of migration 023; these routes declare who may call them and shape the answers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from samia.core.access import ADMINS, STAFF, STAFF_PROBE, Ctx, Probe, allow
from samia.core.models import Id, Input
from samia.core.problems import AppError, not_found
from samia.moderation import service

router = APIRouter(tags=["moderation"])

Reason = Literal["harassment", "abuse", "fraud", "copyright", "safety", "spam", "other"]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Note = Annotated[str, Field(min_length=3, max_length=2000)]
Evidence = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20,
                     description="references: media:12, order:34, call:5, a ticket URL …")]
CaseId = Annotated[int, Field(ge=1, le=2**62)]


class CaseOut(BaseModel):
    id: int
    source: str
    rule: str | None
    reason: str
    severity: int
    subject_kind: str
    subject_id: str
    subject_user: str | None
    is_gold: bool
    status: str
    claimed_by: str | None
    claim_expires_at: dt.datetime | None
    summary: str | None
    evidence: list[Any]
    resolution: str | None
    created_at: dt.datetime


class ReportIn(Input):
    subject_kind: Literal["profile", "order", "call", "media", "review"]
    subject_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-f-]{1,64}$")]
    reason: Reason
    details: Annotated[str, Field(max_length=2000)] | None = None


class ReportOut(BaseModel):
    id: int
    subject_kind: str
    subject_id: str
    reason: str
    status: str
    created_at: dt.datetime


class BlockIn(Input):
    user_id: Uuid
    reason: Reason
    note: Note | None = None
    evidence: Evidence = Field(default_factory=list)
    duration_minutes: Annotated[int, Field(ge=5, le=525_600)] | None = Field(
        None, description="omit for a block that lasts until an admin lifts it")
    case_id: CaseId | None = Field(None, description="act under a case you have claimed")


class UnblockIn(Input):
    user_id: Uuid
    note: Note


class ModerateIn(Input):
    action: Literal["hold", "release", "unlist", "remove_media", "escalate"]
    reason: Reason
    note: Note | None = None
    evidence: Evidence = Field(default_factory=list)
    case_id: CaseId | None = None


class ResolveIn(Input):
    outcome: Literal["resolved", "dismissed"]
    note: Note


class AppealIn(Input):
    subject_kind: Literal["block", "case"]
    subject_id: CaseId
    statement: Annotated[str, Field(min_length=3, max_length=4000)]
    appellant_id: Uuid | None = Field(None, description="staff filing for someone who cannot sign in (a block)")


class DecideIn(Input):
    decision: Literal["upheld", "overturned"]
    rationale: Note


class AppealOut(BaseModel):
    id: int
    subject_kind: str
    subject_id: int
    appellant_id: str
    statement: str
    status: str
    decision: str | None
    rationale: str | None
    created_at: dt.datetime
    decided_at: dt.datetime | None


class LineageIn(Input):
    order_id: CaseId | None = Field(None, description="omit to rebuild every order's links")


APPEAL_COLS, APPEAL_BY_ID = service.APPEAL_COLS, service.APPEAL_BY_ID


# ---- reports and the cases queue ------------------------------------------------------

@router.post("/reports", status_code=status.HTTP_201_CREATED, response_model=ReportOut)
async def report(body: ReportIn, ctx: Ctx = allow("client", "reader", *STAFF, probe=Probe(
        "insert into moderation_cases (source, reason, severity, subject_kind, subject_id, reporter_id) "
        "values ('report', 'spam', 1, 'profile', :other, auth.uid())"))) -> dict[str, Any]:
    """Report a person, an order, a call or a file. It joins the monitors' queue."""
    return await service.one(ctx.conn, """
        insert into moderation_cases (source, reason, severity, subject_kind, subject_id, reporter_id, summary)
        select 'report', r.code, r.severity, %s, %s, auth.uid(), %s from moderation_reasons r where r.code = %s
        returning id, subject_kind, subject_id, reason, status, created_at""",
                      (body.subject_kind, body.subject_id, body.details, body.reason), "reason")


@router.get("/reports", response_model=list[ReportOut])
async def my_reports(ctx: Ctx = allow("client", "reader", *STAFF, probe=Probe(
        "insert into moderation_cases (source, reason, severity, subject_kind, subject_id, reporter_id) "
        "values ('report', 'spam', 1, 'profile', :other, auth.uid())"))) -> list[dict[str, Any]]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select id, subject_kind, subject_id, reason, status, created_at from moderation_cases "
                      "where reporter_id = auth.uid() order by id desc limit 100")
    return await cur.fetchall()


@router.get("/monitor/cases", response_model=list[CaseOut])
async def cases(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE),
                status_: Annotated[Literal["open", "resolved", "dismissed"], Query(alias="status")] = "open",
                reason: Reason | None = None,
                source: Literal["report", "sweep", "moderation"] | None = None,
                subject_kind: Literal["profile", "order", "call", "media", "review"] | None = None,
                min_severity: Annotated[int, Query(ge=1, le=4)] = 1,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    """Reports, automated sweeps and escalations together: critical first, then golden,
    then oldest."""
    return await service.list_cases(ctx.conn, status=status_, reason=reason, source=source,
                                    subject_kind=subject_kind, min_severity=min_severity, limit=limit)


@router.post("/monitor/cases/{case_id}/claim", response_model=CaseOut)
async def claim(case_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Take a case for 15 minutes (renewable). Two monitors never hold the same case: the
    loser of a race gets 409."""
    return await service.claim_case(ctx.conn, case_id)


@router.post("/monitor/cases/{case_id}/resolve", response_model=CaseOut)
async def resolve(case_id: Id, body: ResolveIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    return await service.resolve_case(ctx.conn, case_id, body.outcome, body.note)


# ---- blocks ---------------------------------------------------------------------------

@router.post("/monitor/block-user", status_code=status.HTTP_201_CREATED)
async def block_user(body: BlockIn, ctx: Ctx = allow(*STAFF, probe=service.BLOCK_PROBE)) -> dict[str, Any]:
    """Block a client or reader (admins: also monitors). Their tokens stop working on the
    next request; a block with a duration lifts itself when it ends."""
    return await service.block_user(ctx.conn, body.user_id, reason=body.reason, note=body.note,
                                    evidence=body.evidence, duration_minutes=body.duration_minutes,
                                    case_id=body.case_id)


@router.post("/monitor/unblock-user")
async def unblock_user(body: UnblockIn, ctx: Ctx = allow(*ADMINS, probe=service.UNBLOCK_PROBE)) -> dict[str, Any]:
    """Lift a block. Admins only (a monitor blocks; only an admin unblocks)."""
    return {"user_id": body.user_id, "blocks_lifted": await service.unblock_user(ctx.conn, body.user_id, body.note)}


# ---- orders ---------------------------------------------------------------------------

@router.post("/monitor/moderate/order/{order_id}")
async def moderate_order(order_id: Id, body: ModerateIn, ctx: Ctx = allow(*STAFF, probe=Probe(
        "select app.moderate_order(:order_review, 'hold', 'other', 'probe', '[]', null)"))) -> dict[str, Any]:
    """hold (the order stops moving) / release, unlist (its audio is no longer served to the
    client), remove_media (the audio files are withdrawn), escalate (a critical case)."""
    cur = await ctx.conn.execute("select app.moderate_order(%s, %s, %s, %s, %s, %s)",
                                 (order_id, body.action, body.reason, body.note, json.dumps(body.evidence),
                                  body.case_id))
    case = (await cur.fetchone())[0]  # type: ignore[index]
    if body.action == "remove_media":
        keys = await (await ctx.conn.execute(
            "select storage_key from media_assets m join orders o on m.id in (o.output_media_id, o.approved_media_id) "
            "where o.id = %s and m.removed_at is not null", (order_id,))).fetchall()
        storage = ctx.platform.storage

        async def remove() -> None:
            for (key,) in keys:
                await storage.delete(key)
        ctx.after_commit.append(remove)
    row = await service.one(ctx.conn, "select id, status::text, held_at, unlisted_at from orders where id = %s",
                            (order_id,), "order")
    return {**row, "action": body.action, "escalation_case_id": case}


# ---- appeals ----------------------------------------------------------------------------

@router.post("/appeals", status_code=status.HTTP_201_CREATED, response_model=AppealOut)
async def file_appeal(body: AppealIn, ctx: Ctx = allow("client", "reader", *STAFF, probe=Probe(
        "insert into appeals (subject_kind, subject_id, appellant_id, filed_by, statement) "
        "values ('case', 1, auth.uid(), auth.uid(), 'probe')"))) -> dict[str, Any]:
    """Appeal a moderation decision about you (a case); staff may file for someone who
    cannot sign in, such as a blocked user."""
    appellant = body.appellant_id or ctx.user_id
    if body.appellant_id and ctx.role not in STAFF:
        raise AppError(403, "forbidden", "only staff file appeals for someone else")
    cur = await ctx.conn.execute("select app.appeal_subject_user(%s, %s)::text", (body.subject_kind, body.subject_id))
    about = (await cur.fetchone())[0]  # type: ignore[index]
    if about is None or about != appellant:  # nothing to appeal, or not theirs: the same answer
        raise not_found(body.subject_kind)
    return await service.one(ctx.conn, sql.SQL("""insert into appeals (subject_kind, subject_id, appellant_id,
        filed_by, statement) values (%s, %s, %s, auth.uid(), %s) returning {}""").format(APPEAL_COLS),
                             (body.subject_kind, body.subject_id, appellant, body.statement), "appeal")


@router.get("/monitor/appeals", response_model=list[AppealOut])
async def appeals(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE),
                  status_: Annotated[Literal["submitted", "under_review", "decided"],
                                     Query(alias="status")] = "submitted") -> list[dict[str, Any]]:
    return await service.list_appeals(ctx.conn, status_)


@router.post("/monitor/appeals/{appeal_id}/open", response_model=AppealOut)
async def open_appeal(appeal_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Take a submitted appeal into review."""
    return await service.open_appeal(ctx.conn, appeal_id)


@router.post("/monitor/appeals/{appeal_id}/resolve", response_model=AppealOut)
async def resolve_appeal(appeal_id: Id, body: DecideIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)
                         ) -> dict[str, Any]:
    """Decide with a rationale. Overturning a block lifts it, which only an admin may do."""
    return await service.decide_appeal(ctx.conn, appeal_id, body.decision, body.rationale)


# ---- lineage ------------------------------------------------------------------------------

@router.post("/monitor/lineage/recompute")
async def lineage(body: LineageIn, ctx: Ctx = allow(*STAFF, probe=Probe("select app.recompute_lineage(:order_new)"))
                  ) -> dict[str, Any]:
    """Rebuild the order ↔ media ↔ calls evidence links (one order, or all)."""
    cur = await ctx.conn.execute("select app.recompute_lineage(%s)", (body.order_id,))
    links = (await cur.fetchone())[0]  # type: ignore[index]
    sample = ctx.conn.cursor(row_factory=dict_row)
    await sample.execute("select order_id, kind, media_id, call_id from evidence_links "
                         "where %s::bigint is null or order_id = %s order by order_id, kind limit 500",
                         (body.order_id, body.order_id))
    return {"links": links, "sample": await sample.fetchall()}

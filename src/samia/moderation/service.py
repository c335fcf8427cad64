"""Moderation's verbs that the API and the monitor's pages share: the cases queue, claims,
resolutions and blocks. The rules live in the database functions (schema/12_moderation.sql)."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.abc import QueryNoTemplate
from psycopg.rows import dict_row

from samia.core.access import Probe
from samia.core.problems import AppError, not_found

# what blocking rests on (the API and the monitor's block page)
BLOCK_PROBE = Probe("select app.block_user(:other, 'spam', 'probe', '[]', 60, null)")
UNBLOCK_PROBE = Probe("select app.block_user(:other, 'spam', 'probe', '[]', 60, null), "
                      "app.unblock_user(:other, 'probe')")
REASONS = ("harassment", "abuse", "fraud", "copyright", "safety", "spam", "other")

CASE_COLS = sql.SQL("id, source, rule, reason, severity, subject_kind, subject_id, subject_user::text, is_gold, "
                    "status, claimed_by::text, claim_expires_at, summary, evidence, resolution, created_at")
APPEAL_COLS = sql.SQL("id, subject_kind, subject_id, appellant_id::text, statement, status, decision, rationale, "
                      "created_at, decided_at")
CASE_BY_ID = sql.SQL("select {} from moderation_cases where id = %s").format(CASE_COLS)
APPEAL_BY_ID = sql.SQL("select {} from appeals where id = %s").format(APPEAL_COLS)


async def one(conn: AsyncConnection, query: QueryNoTemplate, params: tuple[Any, ...], what: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        raise not_found(what)
    return row


async def list_cases(conn: AsyncConnection, *, status: str = "open", reason: str | None = None,
                     source: str | None = None, subject_kind: str | None = None, min_severity: int = 1,
                     limit: int = 50) -> list[dict[str, Any]]:
    """Reports, automated sweeps and escalations together: critical first, then golden, then oldest."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("""select {} from moderation_cases
        where status = %(st)s and (%(r)s::text is null or reason = %(r)s) and (%(s)s::text is null or source = %(s)s)
          and (%(k)s::text is null or subject_kind = %(k)s) and severity >= %(sev)s
        order by severity desc, is_gold desc, created_at, id limit %(lim)s""").format(CASE_COLS),
                      {"st": status, "r": reason, "s": source, "k": subject_kind, "sev": min_severity, "lim": limit})
    return await cur.fetchall()


async def claim_case(conn: AsyncConnection, case_id: int) -> dict[str, Any]:
    """Take a case for 15 minutes (renewable). Two monitors never hold the same case: the
    loser of a race gets 409."""
    cur = await conn.execute("select app.claim_case(%s)", (case_id,))
    if not (await cur.fetchone())[0]:  # type: ignore[index]
        row = await one(conn, CASE_BY_ID, (case_id,), "case")
        raise AppError(409, "case_taken" if row["status"] == "open" else "conflict",
                       "another monitor holds this case" if row["status"] == "open" else f"the case is {row['status']}")
    return await one(conn, CASE_BY_ID, (case_id,), "case")


async def resolve_case(conn: AsyncConnection, case_id: int, outcome: str, note: str) -> dict[str, Any]:
    await conn.execute("select app.resolve_case(%s, %s, %s)", (case_id, outcome, note))
    return await one(conn, CASE_BY_ID, (case_id,), "case")


async def block_user(conn: AsyncConnection, user_id: str, *, reason: str, note: str | None, evidence: list[str],
                     duration_minutes: int | None, case_id: int | None = None) -> dict[str, Any]:
    """Block a client or reader (admins: also monitors). Their tokens stop working on the next
    request; a block with a duration lifts itself when it ends."""
    cur = await conn.execute("select app.block_user(%s, %s, %s, %s, %s, %s)",
                             (user_id, reason, note, json.dumps(evidence), duration_minutes, case_id))
    block_id = (await cur.fetchone())[0]  # type: ignore[index]
    return await one(conn, "select id, user_id::text, reason, note, evidence, starts_at, ends_at, case_id "
                           "from user_blocks where id = %s", (block_id,), "block")


async def unblock_user(conn: AsyncConnection, user_id: str, note: str) -> int:
    """Lift every active block of the person (admins only); returns how many were lifted."""
    cur = await conn.execute("select app.unblock_user(%s, %s)", (user_id, note))
    return int((await cur.fetchone())[0])  # type: ignore[index]


# ---- appeals (the API and the monitor's appeals page) ---------------------------------------

async def list_appeals(conn: AsyncConnection, status: str = "submitted", limit: int = 100) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from appeals where status = %s order by id limit %s").format(APPEAL_COLS),
                      (status, limit))
    return await cur.fetchall()


async def open_appeal(conn: AsyncConnection, appeal_id: int) -> dict[str, Any]:
    """Take a submitted appeal into review; a second reviewer gets 409."""
    await conn.execute("select app.open_appeal(%s)", (appeal_id,))
    return await one(conn, APPEAL_BY_ID, (appeal_id,), "appeal")


async def decide_appeal(conn: AsyncConnection, appeal_id: int, decision: str, rationale: str) -> dict[str, Any]:
    """Decide with a rationale, once: a second decision gets 409. Overturning a block lifts it,
    which only an admin may do."""
    await conn.execute("select app.decide_appeal(%s, %s, %s)", (appeal_id, decision, rationale))
    return await one(conn, APPEAL_BY_ID, (appeal_id,), "appeal")

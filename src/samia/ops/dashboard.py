"""The admin dashboard's few numbers (seeds 000 M32/M33): what the admin on duty acts on.
One read under the caller's RLS; each figure is what the matching queue would list."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.core.access import Probe

PROBE = Probe("select 1 from payment_transactions where user_id = :other")


async def admin_numbers(conn: AsyncConnection) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select (select count(*) from payment_transactions
                 where provider = 'bank_transfer' and status = 'requires_action') as transfers,
               (select count(*) from payment_transactions
                 where provider = 'bank_transfer' and status = 'requires_action'
                   and metadata ? 'proof_media_id') as transfers_with_proof,
               (select count(*) from orders where status = 'new') as unassigned,
               (select count(*) from orders where status = 'new' and is_gold) as unassigned_gold,
               (select count(*) from incidents where status = 'open') as incidents,
               (select min(severity) from incidents where status = 'open') as worst_severity,
               (select count(*) from orders where status = 'awaiting_approval') as approvals,
               (select extract(epoch from now() - min(coalesce(submitted_at, updated_at)))::bigint
                  from orders where status = 'awaiting_approval') as oldest_approval_seconds""")
    row = await cur.fetchone()
    assert row is not None
    return row

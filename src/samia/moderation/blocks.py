"""Blocking and unblocking a person (seeds 001 M21, M40): the rules are app.block_user and
app.unblock_user (schema/12_moderation.sql: monitors block clients and readers, admins also
monitors; only admins lift). The API (/monitor/block-user, /monitor/unblock-user) and the admin
console call these."""

from __future__ import annotations

import json

from psycopg import AsyncConnection

from samia.core.access import Probe

REASONS = ("harassment", "abuse", "fraud", "copyright", "safety", "spam", "other")
BLOCK_PROBE = Probe("select app.block_user(:other, 'spam', 'probe', '[]', 60, null)")
UNBLOCK_PROBE = Probe("select app.block_user(:other, 'spam', 'probe', '[]', 60, null), "
                      "app.unblock_user(:other, 'probe')")


async def block_user(conn: AsyncConnection, user_id: str, *, reason: str, note: str | None, evidence: list[str],
                     duration_minutes: int | None, case_id: int | None = None) -> int:
    """Block: the person's tokens stop working on their next request; a block with a duration
    lifts itself when it ends. Returns the block's id (audited by the function)."""
    cur = await conn.execute("select app.block_user(%s, %s, %s, %s, %s, %s)",
                             (user_id, reason, note, json.dumps(evidence), duration_minutes, case_id))
    return int((await cur.fetchone())[0])  # type: ignore[index]


async def unblock_user(conn: AsyncConnection, user_id: str, note: str) -> int:
    """Lift every active block of the person; returns how many were lifted."""
    cur = await conn.execute("select app.unblock_user(%s, %s)", (user_id, note))
    return int((await cur.fetchone())[0])  # type: ignore[index]

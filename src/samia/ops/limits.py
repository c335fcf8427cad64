"""The admin-tunable rate limits (seeds 004): rows of `rate_limits`, read and changed by the
API (/api/ops/rate_limits) and the admin console alike. Changes are audited by trigger."""

from __future__ import annotations

import re
from typing import Any

from psycopg import AsyncConnection

from samia.core.access import Probe
from samia.core.problems import AppError

RATE_KEY = re.compile(r"^rate_([a-z_]+?)(_per_hour)?$")
READ_PROBE = Probe("select 1 from rate_limits")
WRITE_PROBE = Probe("update rate_limits set limit_count = limit_count")


async def limits(conn: AsyncConnection) -> dict[str, Any]:
    cur = await conn.execute("select name, limit_count, window_seconds, per, description, updated_at "
                             "from rate_limits order by name")
    rows = await cur.fetchall()
    out: dict[str, Any] = {}
    for name, limit, window, _per, _desc, _at in rows:
        out[f"rate_{name}_per_hour" if window == 3600 else f"rate_{name}"] = limit
    out["limits"] = [{"name": n, "limit": lim, "window_seconds": w, "per": p, "description": d,
                      "updated_at": at.isoformat()} for n, lim, w, p, d, at in rows]
    return out


async def set_limits(conn: AsyncConnection, changes: dict[str, int]) -> dict[str, Any]:
    """Keys as in seeds 004: `rate_<name>_per_hour` (sets an hourly window) or `rate_<name>`
    (keeps the limit's window). Nothing changes unless every key is known (422)."""
    cur = await conn.execute("select name from rate_limits")
    known = {r[0] for r in await cur.fetchall()}
    errors = []
    for key, value in changes.items():
        m = RATE_KEY.match(key)
        if not m or m.group(1) not in known:
            errors.append({"loc": ["body", key], "msg": f"unknown limit; known: {sorted(known)}",
                           "type": "unknown_limit"})
            continue
        await conn.execute(
            "update rate_limits set limit_count = %s, window_seconds = case when %s then 3600 "
            "else window_seconds end where name = %s", (value, m.group(2) is not None, m.group(1)))
    if errors or not changes:
        raise AppError(422, "validation_error", "no limits changed", extra={"errors": errors or [
            {"loc": ["body"], "msg": "give at least one limit", "type": "missing"}]})
    return await limits(conn)

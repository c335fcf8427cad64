"""User administration (seeds 000 M45): find people, create accounts, erase one. The database
holds the guardrails (profiles_guard: admins edit users but never touch the superadmin role
nor delete; only the superadmin deletes; the last superadmin stays); these functions are what
the API and the admin console both call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.core.access import Probe
from samia.core.platform import Platform
from samia.core.problems import invalid
from samia.profiles.service import COLUMNS, get_profile

READ_PROBE = Probe("select 1 from profiles where id = :other")
CREATE_PROBE = Probe("insert into profiles (email, role_id) values ('probe@example.invalid', 5)")
EDIT_PROBE = Probe("update profiles set last_name = last_name where id = :other")
DELETE_PROBE = Probe("update profiles set deleted_at = now() where id = :other")
ROLES = ("superadmin", "admin", "reader", "monitor", "client")


async def find_users(conn: AsyncConnection, *, role: str | None = None, query: str | None = None,
                     after: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Active accounts in id order (keyset pages), by role and/or a piece of the email, name or
    phone (case-insensitive). RLS decides what the caller sees."""
    pattern = f"%{query.strip()}%" if query and query.strip() else None
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("""select {}
           from profiles p join roles r on r.id = p.role_id
          where p.deleted_at is null
            and (%(role)s::text is null or r.code = %(role)s)
            and (%(q)s::text is null or p.email::text ilike %(q)s or p.phone ilike %(q)s
                 or coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '') ilike %(q)s)
            and (%(after)s::uuid is null or p.id > %(after)s::uuid)
          order by p.id
          limit %(limit)s""").format(COLUMNS),
        {"role": role, "q": pattern, "after": after, "limit": limit + 1})
    rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": rows[-1]["id"] if more else None}


async def create_user(conn: AsyncConnection, platform: Platform, *, email: str, password: str, role: str,
                      first_name: str, last_name: str, dob: dt.date | None, country: str | None = None,
                      is_test: bool = False) -> dict[str, Any]:
    """Staff accounts carry a date of birth (18+, as the database also insists); only the
    superadmin may create a superadmin (the database refuses anyone else)."""
    if role != "client" and dob is None:
        raise invalid(["body", "dob"], "a staff account needs a date of birth", code="dob_required")
    cur = await conn.execute(
        """insert into profiles (email, first_name, last_name, dob, country, is_test, role_id)
           values (%s, %s, %s, %s, %s, %s, (select id from roles where code = %s)) returning id""",
        (email, first_name, last_name, dob, country, is_test, role))
    uid = str((await cur.fetchone())[0])  # type: ignore[index]
    pw_hash = await platform.passwords.hash(password)
    await conn.execute("select app.set_initial_password(%s, %s)", (uid, pw_hash))
    return await get_profile(conn, uid)


async def erase_user(conn: AsyncConnection, user_id: str) -> None:
    """Close the account and erase its personal data (app.admin_erase_user: superadmin only,
    never their own); the job removes the files after commit."""
    await conn.execute("select app.admin_erase_user(%s)", (user_id,))
    await conn.execute("select app.defer('dsr_sweep')")


async def blocks_of(conn: AsyncConnection, user_id: str) -> list[dict[str, Any]]:
    """A user's blocks, newest first (staff read them under RLS)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, reason, note, starts_at, ends_at, lifted_at from user_blocks where user_id = %s "
                      "order by id desc limit 20", (user_id,))
    return await cur.fetchall()

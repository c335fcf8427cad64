"""Feature flags: what is on for the caller, and the admin controls (audited by trigger)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from samia.core.access import AUTHENTICATED, Ctx, Probe, allow
from samia.core.models import Input
from samia.core.problems import not_found

router = APIRouter(tags=["ops"])

Key = Annotated[str, Path(pattern=r"^[a-zA-Z][a-zA-Z0-9_.]{1,63}$")]
RoleName = Literal["superadmin", "admin", "reader", "monitor", "client"]


class FlagOut(BaseModel):
    key: str
    description: str
    enabled: bool
    rollout_pct: int
    roles: list[str] | None
    countries: list[str] | None
    updated_at: dt.datetime


class FlagPatch(Input):
    enabled: bool | None = None
    rollout_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    roles: list[RoleName] | None = Field(None, description="null: every role")
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] | None = Field(None, description="null: everywhere")
    description: Annotated[str, Field(max_length=200)] | None = None


FLAG_SQL = sql.SQL("select key, description, enabled, rollout_pct, roles, "
                   "(select array_agg(c::text) from unnest(countries) c) as countries, updated_at from feature_flags")
ADMIN = Probe("update feature_flags set enabled = enabled where key = 'feature.tarotV2'")


@router.get("/flags", response_model=dict[str, bool])
async def my_flags(ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, bool]:
    """Every flag, evaluated for the caller (role, country, rollout bucket)."""
    cur = await ctx.conn.execute("select key, app.flag_on(key) from feature_flags order by key")
    return dict(await cur.fetchall())


async def all_flags(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(FLAG_SQL + sql.SQL(" order by key"))
    return await cur.fetchall()


async def update_flag(conn: AsyncConnection, key: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a flag's fields (audited by trigger); the next request evaluates the new value."""
    if changes:
        sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes)
        stmt = sql.SQL("update feature_flags set {} where key = %(key)s returning key").format(sets)
        updated = await conn.execute(stmt, {**changes, "key": key})
        if await updated.fetchone() is None:
            raise not_found("flag")
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(FLAG_SQL + sql.SQL(" where key = %s"), (key,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("flag")
    return row


@router.get("/admin/flags", response_model=list[FlagOut])
async def list_flags(ctx: Ctx = allow("admin", "superadmin", probe=ADMIN)) -> list[dict[str, Any]]:
    return await all_flags(ctx.conn)


@router.patch("/admin/flags/{key}", response_model=FlagOut)
async def set_flag(key: Key, body: FlagPatch, ctx: Ctx = allow("admin", "superadmin", probe=ADMIN)) -> dict[str, Any]:
    """Change a flag (the kill switch is enabled=false); takes effect on the next request."""
    return await update_flag(ctx.conn, key, body.model_dump(exclude_unset=True))

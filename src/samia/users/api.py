"""User administration with the seeds 000 M45 guardrails. The database enforces them
(profiles_guard trigger); these routes declare who may try and map refusals to 403s,
which are audited."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, EmailStr, Field

from samia.core.access import Ctx, Probe, allow
from samia.core.models import Input
from samia.core.problems import AppError, invalid, not_found
from samia.profiles.service import COLUMNS, ProfileOut, get_profile, update_profile

router = APIRouter(tags=["admin"])

Role = Literal["superadmin", "admin", "reader", "monitor", "client"]


class UserCreate(Input):
    email: EmailStr
    password: Annotated[str, Field(min_length=10, max_length=128)]
    role: Role
    first_name: Annotated[str, Field(min_length=1, max_length=100)]
    last_name: Annotated[str, Field(min_length=1, max_length=100)]
    dob: dt.date | None = Field(None, description="required for staff; a client without one cannot order, book, "
                                                 "pay or call until they give it")
    country: Annotated[str, Field(min_length=2, max_length=80)] | None = None
    is_test: bool = False


class UserPatch(Input):
    role: Role | None = None
    first_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    last_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    country: Annotated[str, Field(min_length=2, max_length=80)] | None = None
    is_test: bool | None = None


class UserPage(BaseModel):
    items: list[ProfileOut]
    next_cursor: str | None


@router.get("/admin/users", response_model=UserPage)
async def list_users(
    ctx: Ctx = allow("monitor", "admin", "superadmin",
                     probe=Probe("select 1 from profiles where id = :other")),
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(description="next_cursor of the previous page",
                                       pattern=r"^[0-9a-f-]{36}$")] = None,
) -> dict[str, Any]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("""select {}
           from profiles p join roles r on r.id = p.role_id
          where p.deleted_at is null
            and (%(role)s::text is null or r.code = %(role)s)
            and (%(after)s::uuid is null or p.id > %(after)s::uuid)
          order by p.id
          limit %(limit)s""").format(COLUMNS),
        {"role": role, "after": after, "limit": limit + 1})
    rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": rows[-1]["id"] if more else None}


@router.post("/admin/users", status_code=status.HTTP_201_CREATED, response_model=ProfileOut)
async def create_user(
    body: UserCreate,
    ctx: Ctx = allow("admin", "superadmin",
                     probe=Probe("insert into profiles (email, role_id) values ('probe@example.invalid', 5)")),
) -> dict[str, Any]:
    """Staff accounts carry a date of birth (18+, as the database also insists)."""
    if body.role != "client" and body.dob is None:
        raise invalid(["body", "dob"], "a staff account needs a date of birth", code="dob_required")
    cur = await ctx.conn.execute(
        """insert into profiles (email, first_name, last_name, dob, country, is_test, role_id)
           values (%s, %s, %s, %s, %s, %s, (select id from roles where code = %s)) returning id""",
        (body.email, body.first_name, body.last_name, body.dob, body.country, body.is_test, body.role))
    uid = str((await cur.fetchone())[0])  # type: ignore[index]
    pw_hash = await ctx.platform.passwords.hash(body.password)
    await ctx.conn.execute("select app.set_initial_password(%s, %s)", (uid, pw_hash))
    return await get_profile(ctx.conn, uid)


@router.patch("/admin/users/{user_id}", response_model=ProfileOut)
async def patch_user(
    user_id: uuid.UUID,
    body: UserPatch,
    ctx: Ctx = allow("admin", "superadmin",
                     probe=Probe("update profiles set last_name = last_name where id = :other")),
) -> dict[str, Any]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return await update_profile(ctx.conn, str(user_id), changes)


@router.delete("/admin/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_user(
    user_id: uuid.UUID,
    ctx: Ctx = allow("superadmin",
                     probe=Probe("update profiles set deleted_at = now() where id = :other")),
) -> Response:
    """Closes the account and erases its personal data; orders and the audit trail keep
    the (now anonymous) id. The database refuses anyone but the superadmin."""
    if str(user_id) == ctx.user_id:
        raise AppError(409, "conflict", "you cannot delete your own account here")
    cur = await ctx.conn.execute(
        """update profiles set deleted_at = now(), email = null, phone = null, first_name = null,
                  last_name = null, dob = null, birth_place = null, birth_time = null,
                  birth_lat = null, birth_lon = null, birth_tz = null, phone_verified = false
            where id = %s and deleted_at is null returning id""", (str(user_id),))
    if await cur.fetchone() is None:
        raise not_found("user")
    return Response(status_code=204)

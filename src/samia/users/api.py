"""User administration with the seeds 000 M45 guardrails. The database enforces them
(profiles_guard trigger); these routes declare who may try and map refusals to 403s,
which are audited."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, EmailStr, Field

from samia.core.access import Ctx, allow
from samia.core.models import Input
from samia.profiles.service import ProfileOut, update_profile
from samia.users import service

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
    ctx: Ctx = allow("monitor", "admin", "superadmin", probe=service.READ_PROBE),
    role: Role | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the email, name or phone")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(description="next_cursor of the previous page",
                                       pattern=r"^[0-9a-f-]{36}$")] = None,
) -> dict[str, Any]:
    return await service.find_users(ctx.conn, role=role, query=q, after=after, limit=limit)


@router.post("/admin/users", status_code=status.HTTP_201_CREATED, response_model=ProfileOut)
async def create_user(body: UserCreate, ctx: Ctx = allow("admin", "superadmin", probe=service.CREATE_PROBE)
                      ) -> dict[str, Any]:
    """Staff accounts carry a date of birth (18+, as the database also insists)."""
    return await service.create_user(ctx.conn, ctx.platform, email=body.email, password=body.password, role=body.role,
                                     first_name=body.first_name, last_name=body.last_name, dob=body.dob,
                                     country=body.country, is_test=body.is_test)


@router.patch("/admin/users/{user_id}", response_model=ProfileOut)
async def patch_user(user_id: uuid.UUID, body: UserPatch,
                     ctx: Ctx = allow("admin", "superadmin", probe=service.EDIT_PROBE)) -> dict[str, Any]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return await update_profile(ctx.conn, str(user_id), changes)


@router.delete("/admin/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_user(user_id: uuid.UUID, ctx: Ctx = allow("superadmin", probe=service.DELETE_PROBE)) -> Response:
    """Closes the account and erases its personal data everywhere, as a data-subject erasure
    does (files, sessions, transcripts, analytics ids); payments and the audit trail keep the
    (now anonymous) id. The database refuses anyone but the superadmin, and their own account."""
    await service.erase_user(ctx.conn, str(user_id))
    return Response(status_code=204)

"""The caller's own profile."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from samia.core.access import AUTHENTICATED, Ctx, allow
from samia.core.models import Input
from samia.profiles.service import ProfileOut, get_profile, update_profile

router = APIRouter(tags=["profiles"])


class ProfilePatch(Input):
    first_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    last_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    dob: dt.date | None = None
    country: Annotated[str, Field(min_length=2, max_length=80)] | None = None
    birth_place: Annotated[str, Field(max_length=200)] | None = None
    birth_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
                                     description="local wall-clock time at the birth place, no offset")] | None = None
    birth_lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    birth_lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    birth_tz: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$")] | None = None
    locale: Literal["en", "ar"] | None = None

    def changes(self) -> dict[str, Any]:
        """Fields the caller sent; only the optional birth details may be cleared with null."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items()
                if v is not None or k.startswith("birth_")}


@router.get("/me", response_model=ProfileOut)
async def me(ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await get_profile(ctx.conn, ctx.user_id)  # type: ignore[arg-type]


@router.patch("/me", response_model=ProfileOut)
async def patch_me(body: ProfilePatch, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await update_profile(ctx.conn, ctx.user_id, body.changes())  # type: ignore[arg-type]

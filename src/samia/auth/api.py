"""Sign-up, login, token refresh, logout, email and phone verification."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, EmailStr, Field

from samia.auth import service
from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, allow
from samia.core.models import Input
from samia.providers.phone import CODE_TTL_SECONDS

router = APIRouter(tags=["auth"])

Password = Annotated[str, Field(min_length=10, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class SignupIn(Input):
    email: EmailStr
    password: Password
    dob: dt.date
    country: Annotated[str, Field(min_length=2, max_length=80)]
    first_name: Name
    last_name: Name
    locale: Literal["en", "ar"] = "en"


class SignupOut(BaseModel):
    id: str
    email: str
    email_verified: bool


class LoginIn(Input):
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class RefreshIn(Input):
    refresh_token: Annotated[str, Field(min_length=20, max_length=200)]


class EmailTokenIn(Input):
    token: Annotated[str, Field(min_length=20, max_length=2000)]


class PhoneStartIn(Input):
    phone: Annotated[str, Field(min_length=4, max_length=32)]


class PhoneCheckIn(Input):
    phone: Annotated[str, Field(min_length=4, max_length=32)]
    code: Annotated[str, Field(pattern=r"^[0-9]{4,10}$")]


class StatusOut(BaseModel):
    status: str
    expires_in: int | None = None


@router.post("/auth/signup", status_code=status.HTTP_201_CREATED, response_model=SignupOut)
async def signup(body: SignupIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth", rate="signup")) -> SignupOut:
    uid = await service.signup(ctx.conn, ctx.platform.passwords, email=body.email, password=body.password,
                               dob=body.dob, country=body.country, first_name=body.first_name,
                               last_name=body.last_name, locale=body.locale)
    return SignupOut(id=uid, email=body.email, email_verified=False)


def _pair(tokens: service.Tokens) -> TokenPair:
    return TokenPair(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                     expires_in=tokens.expires_in)


@router.post("/auth/login", response_model=TokenPair)
async def login(body: LoginIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth", rate="login")) -> TokenPair:
    return _pair(await service.login(ctx.conn, ctx.platform.passwords, ctx.platform.settings,
                                     body.email, body.password))


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(body: RefreshIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth")) -> TokenPair:
    return _pair(await service.refresh(ctx.conn, ctx.platform.settings, body.refresh_token))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(ctx: Ctx = allow(AUTHENTICATED, db_role="samia_auth")) -> Response:
    await service.logout(ctx.conn, ctx.claims.session_id if ctx.claims else None)
    return Response(status_code=204)


@router.get("/auth/verify-email", response_model=StatusOut)
async def verify_email_link(token: Annotated[str, Query(min_length=20, max_length=2000)],
                            ctx: Ctx = allow(PUBLIC, db_role="samia_auth", readonly=False)) -> StatusOut:
    await service.confirm_email(ctx.conn, ctx.platform.settings, token)
    return StatusOut(status="verified")


@router.post("/auth/verify-email", response_model=StatusOut)
async def verify_email(body: EmailTokenIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth")) -> StatusOut:
    await service.confirm_email(ctx.conn, ctx.platform.settings, body.token)
    return StatusOut(status="verified")


@router.post("/api/verify/phone/start", status_code=status.HTTP_202_ACCEPTED, response_model=StatusOut)
async def phone_start(body: PhoneStartIn,
                      ctx: Ctx = allow(AUTHENTICATED, db_role="samia_auth", rate="phone_verify")) -> StatusOut:
    await service.phone_start(ctx.conn, ctx.platform, body.phone)
    return StatusOut(status="sent", expires_in=CODE_TTL_SECONDS)


@router.post("/api/verify/phone/check", response_model=StatusOut)
async def phone_check(body: PhoneCheckIn, ctx: Ctx = allow(AUTHENTICATED, db_role="samia_auth")) -> StatusOut:
    await service.phone_check(ctx.conn, ctx.platform, body.phone, body.code)
    return StatusOut(status="verified")

"""Sign-up, login, token refresh, logout, email and phone verification."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import phonenumbers
from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, EmailStr, Field

from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, allow
from samia.core.models import Input
from samia.core.problems import AppError, invalid
from samia.core.tokens import decode_email_token, hash_token, issue_access, new_refresh_token
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
    if body.dob > _eighteen_years_ago():
        raise invalid(["body", "dob"], "must be at least 18 years old", code="under_age",
                      detail="you must be at least 18 years old to sign up")
    pw_hash = await ctx.platform.passwords.hash(body.password)
    cur = await ctx.conn.execute("select app_auth.signup(%s, %s, %s, %s, %s, %s, %s)",
                                 (body.email, pw_hash, body.first_name, body.last_name, body.dob,
                                  body.country, body.locale))
    uid = (await cur.fetchone())[0]  # type: ignore[index]
    await ctx.conn.execute("select app.defer('send_outbox')")  # commits with the sign-up or not at all
    return SignupOut(id=str(uid), email=body.email, email_verified=False)


@router.post("/auth/login", response_model=TokenPair)
async def login(body: LoginIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth", rate="login")) -> TokenPair:
    cur = await ctx.conn.execute("select user_id, password_hash, active from app_auth.login_lookup(%s)",
                                 (body.email,))
    row = await cur.fetchone()
    ok, rehash = await ctx.platform.passwords.verify(row[1] if row else None, body.password)
    if not row or not ok:
        await ctx.conn.execute("select app.audit('auth.login_failed', 'profile', %s, '{}')",
                               (str(row[0]) if row else None,))
        raise AppError(401, "invalid_credentials", keep=True)
    uid, _, active = row
    if not active:
        raise AppError(403, "forbidden", "this account is blocked or closed")
    if rehash:
        await ctx.conn.execute("select app_auth.set_password_hash(%s, %s)",
                               (uid, await ctx.platform.passwords.hash(body.password)))
    return await _new_session(ctx, str(uid))


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(body: RefreshIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth")) -> TokenPair:
    token, token_hash = new_refresh_token()
    cur = await ctx.conn.execute("select status, user_id, session_id from app_auth.rotate_refresh(%s, %s, %s)",
                                 (hash_token(body.refresh_token), token_hash,
                                  dt.timedelta(seconds=ctx.platform.settings.refresh_token_ttl)))
    state, uid, sid = await cur.fetchone()  # type: ignore[misc]
    if state == "reused":
        # a used token came back: someone holds a copy. The session is revoked (committed).
        await ctx.conn.execute("select app.audit('auth.refresh_reuse', 'session', %s, '{}')", (str(sid),))
        raise AppError(401, "invalid_token", "refresh token already used; the session was revoked", keep=True)
    if state != "ok":
        raise AppError(401, "invalid_token", "refresh token not valid or expired")
    s = ctx.platform.settings
    return TokenPair(access_token=issue_access(s, str(uid), str(sid)), refresh_token=token,
                     expires_in=s.access_token_ttl)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(ctx: Ctx = allow(AUTHENTICATED, db_role="samia_auth")) -> Response:
    sid = ctx.claims.session_id if ctx.claims else None
    if sid:
        await ctx.conn.execute("select app_auth.revoke_session(%s, 'logout')", (sid,))
        await ctx.conn.execute("select app.audit('auth.logout', 'session', %s, '{}')", (sid,))
    return Response(status_code=204)


@router.get("/auth/verify-email", response_model=StatusOut)
async def verify_email_link(token: Annotated[str, Query(min_length=20, max_length=2000)],
                            ctx: Ctx = allow(PUBLIC, db_role="samia_auth", readonly=False)) -> StatusOut:
    return await _confirm_email(ctx, token)


@router.post("/auth/verify-email", response_model=StatusOut)
async def verify_email(body: EmailTokenIn, ctx: Ctx = allow(PUBLIC, db_role="samia_auth")) -> StatusOut:
    return await _confirm_email(ctx, body.token)


@router.post("/api/verify/phone/start", status_code=status.HTTP_202_ACCEPTED, response_model=StatusOut)
async def phone_start(body: PhoneStartIn,
                      ctx: Ctx = allow(AUTHENTICATED, db_role="samia_auth", rate="phone_verify")) -> StatusOut:
    phone = await _e164(ctx, body.phone)
    verifier = ctx.platform.verifier()
    started = await ctx.platform.guarded(ctx.conn, verifier.name, lambda: verifier.start(phone))
    await ctx.conn.execute("select app_auth.phone_start(%s, %s, %s, %s, %s)",
                           (phone, started.provider, started.ref, started.code_hash,
                            dt.timedelta(seconds=CODE_TTL_SECONDS)))
    return StatusOut(status="sent", expires_in=CODE_TTL_SECONDS)


@router.post("/api/verify/phone/check", response_model=StatusOut)
async def phone_check(body: PhoneCheckIn, ctx: Ctx = allow(AUTHENTICATED, db_role="samia_auth")) -> StatusOut:
    phone = await _e164(ctx, body.phone)
    verifier = ctx.platform.verifier()
    code_hash, verdict = await ctx.platform.guarded(ctx.conn, verifier.name, lambda: verifier.check(phone, body.code))
    cur = await ctx.conn.execute("select app_auth.phone_check(%s, %s, %s)", (phone, code_hash, verdict))
    outcome = (await cur.fetchone())[0]  # type: ignore[index]
    if outcome == "verified":
        return StatusOut(status="verified")
    problems = {"mismatch": (400, "invalid_code", "the code is not correct"),
                "expired": (400, "code_expired", "the code has expired; start again"),
                "too_many_attempts": (400, "too_many_attempts", "too many wrong codes; start again"),
                "not_found": (404, "not_found", "no verification is pending for this number")}
    st, code, detail = problems[outcome]
    raise AppError(st, code, detail, keep=True)  # the attempt counter must stick


def _eighteen_years_ago() -> dt.date:
    today = dt.date.today()
    try:
        return today.replace(year=today.year - 18)
    except ValueError:  # 29 February
        return today.replace(year=today.year - 18, day=28)


async def _new_session(ctx: Ctx, uid: str) -> TokenPair:
    s = ctx.platform.settings
    token, token_hash = new_refresh_token()
    cur = await ctx.conn.execute("select app_auth.start_session(%s, %s, %s)",
                                 (uid, token_hash, dt.timedelta(seconds=s.refresh_token_ttl)))
    sid = (await cur.fetchone())[0]  # type: ignore[index]
    return TokenPair(access_token=issue_access(s, uid, str(sid)), refresh_token=token,
                     expires_in=s.access_token_ttl)


async def _confirm_email(ctx: Ctx, token: str) -> StatusOut:
    uid, email = decode_email_token(ctx.platform.settings, token)
    cur = await ctx.conn.execute("select app_auth.confirm_email(%s, %s)", (uid, email))
    row = await cur.fetchone()
    if not row or not row[0]:
        raise AppError(400, "invalid_token", "the verification link no longer matches this account")
    return StatusOut(status="verified")


async def _e164(ctx: Ctx, raw: str) -> str:
    """Normalise to E.164; a number without +country uses the caller's country."""
    cur = await ctx.conn.execute("select app_auth.caller_country()")
    row = await cur.fetchone()
    region = row[0] if row else None
    try:
        num = phonenumbers.parse(raw, None if raw.strip().startswith("+") else region)
    except phonenumbers.NumberParseException:
        num = None
    if num is None or not phonenumbers.is_valid_number(num):
        raise invalid(["body", "phone"], "not a valid phone number", code="invalid_phone")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)

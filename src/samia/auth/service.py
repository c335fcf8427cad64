"""Sign-up, sessions and verification: the verbs the API and the web pages share. Every
function runs inside the caller's request transaction (as `samia_auth` for the credential
functions) and raises AppError for a refusal."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import phonenumbers
from psycopg import AsyncConnection

from samia.config import Settings
from samia.core.problems import AppError, invalid
from samia.core.tokens import Passwords, decode_email_token, hash_token, issue_access, new_refresh_token
from samia.providers.phone import CODE_TTL_SECONDS

if TYPE_CHECKING:
    from samia.core.platform import Platform



@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


def eighteen_years_ago(today: dt.date | None = None) -> dt.date:
    today = today or dt.date.today()
    try:
        return today.replace(year=today.year - 18)
    except ValueError:  # 29 February
        return today.replace(year=today.year - 18, day=28)


async def signup(conn: AsyncConnection, passwords: Passwords, *, email: str, password: str, dob: dt.date,
                 country: str, first_name: str, last_name: str, locale: str = "en",
                 accepted_from: tuple[str, str | None] | None = None) -> str:
    """Create the account (18+ only) and queue its verification email. With `accepted_from`
    (the form's client address and user agent), the person accepted the current terms and
    privacy policy on the sign-up form: recorded as their acceptance (source 'signup')."""
    if dob > eighteen_years_ago():
        raise invalid(["body", "dob"], "must be at least 18 years old", code="under_age",
                      detail="you must be at least 18 years old to sign up")
    pw_hash = await passwords.hash(password)
    cur = await conn.execute("select app_auth.signup(%s, %s, %s, %s, %s, %s, %s)",
                             (email, pw_hash, first_name, last_name, dob, country, locale))
    uid = str((await cur.fetchone())[0])  # type: ignore[index]
    if accepted_from:
        ip, agent = accepted_from
        try:
            address: str | None = str(ipaddress.ip_address(ip))
        except ValueError:  # no usable peer address (a test client, a unix socket): recorded as unknown
            address = None
        await conn.execute("select app.legal_accept_at_signup(%s, %s, %s)", (uid, address, agent))
    await conn.execute("select app.defer('send_outbox')")  # commits with the sign-up or not at all
    return uid


async def start_session(conn: AsyncConnection, settings: Settings, user_id: str) -> Tokens:
    token, token_hash = new_refresh_token()
    cur = await conn.execute("select app_auth.start_session(%s, %s, %s)",
                             (user_id, token_hash, dt.timedelta(seconds=settings.refresh_token_ttl)))
    sid = (await cur.fetchone())[0]  # type: ignore[index]
    return Tokens(issue_access(settings, user_id, str(sid)), token, settings.access_token_ttl)


async def login(conn: AsyncConnection, passwords: Passwords, settings: Settings, email: str, password: str) -> Tokens:
    """Check the password (timing does not tell whether the email exists) and start a session.
    A wrong password is audited and answers 401 with the failure committed."""
    cur = await conn.execute("select user_id, password_hash, active from app_auth.login_lookup(%s)", (email,))
    row = await cur.fetchone()
    ok, rehash = await passwords.verify(row[1] if row else None, password)
    if not row or not ok:
        await conn.execute("select app.audit('auth.login_failed', 'profile', %s, '{}')",
                           (str(row[0]) if row else None,))
        raise AppError(401, "invalid_credentials", keep=True)
    uid, _, active = row
    if not active:
        raise AppError(403, "forbidden", "this account is blocked or closed")
    if rehash:
        await conn.execute("select app_auth.set_password_hash(%s, %s)", (uid, await passwords.hash(password)))
    return await start_session(conn, settings, str(uid))


async def refresh(conn: AsyncConnection, settings: Settings, refresh_token: str,
                  grace: dt.timedelta = dt.timedelta(0)) -> Tokens:
    """Rotate a refresh token. A used token that comes back revokes its session (committed),
    unless it comes back within `grace` of its first use: then it is the same client racing
    itself, and it gets a token of its own for the same session."""
    token, token_hash = new_refresh_token()
    cur = await conn.execute("select status, user_id, session_id from app_auth.rotate_refresh(%s, %s, %s, %s)",
                             (hash_token(refresh_token), token_hash, dt.timedelta(seconds=settings.refresh_token_ttl),
                              grace))
    state, uid, sid = await cur.fetchone()  # type: ignore[misc]
    if state == "reused":
        await conn.execute("select app.audit('auth.refresh_reuse', 'session', %s, '{}')", (str(sid),))
        raise AppError(401, "invalid_token", "refresh token already used; the session was revoked", keep=True)
    if state != "ok":
        raise AppError(401, "invalid_token", "refresh token not valid or expired")
    return Tokens(issue_access(settings, str(uid), str(sid)), token, settings.access_token_ttl)


async def logout(conn: AsyncConnection, session_id: str | None) -> None:
    if session_id:
        await conn.execute("select app_auth.revoke_session(%s, 'logout')", (session_id,))
        await conn.execute("select app.audit('auth.logout', 'session', %s, '{}')", (session_id,))


async def confirm_email(conn: AsyncConnection, settings: Settings, token: str) -> None:
    uid, email = decode_email_token(settings, token)
    cur = await conn.execute("select app_auth.confirm_email(%s, %s)", (uid, email))
    row = await cur.fetchone()
    if not row or not row[0]:
        raise AppError(400, "invalid_token", "the verification link no longer matches this account")


async def e164(conn: AsyncConnection, raw: str) -> str:
    """Normalise to E.164; a number without +country uses the caller's country."""
    cur = await conn.execute("select app_auth.caller_country()")
    row = await cur.fetchone()
    region = row[0] if row else None
    try:
        num = phonenumbers.parse(raw, None if raw.strip().startswith("+") else region)
    except phonenumbers.NumberParseException:
        num = None
    if num is None or not phonenumbers.is_valid_number(num):
        raise invalid(["body", "phone"], "not a valid phone number", code="invalid_phone")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


async def phone_start(conn: AsyncConnection, platform: Platform, raw: str) -> str:
    """Send a code to the number (through the provider's guard); returns the E.164 number."""
    phone = await e164(conn, raw)
    verifier = platform.verifier()
    started = await platform.guarded(conn, verifier.name, lambda: verifier.start(phone))
    await conn.execute("select app_auth.phone_start(%s, %s, %s, %s, %s)",
                       (phone, started.provider, started.ref, started.code_hash,
                        dt.timedelta(seconds=CODE_TTL_SECONDS)))
    return phone


PHONE_PROBLEMS = {"mismatch": (400, "invalid_code", "the code is not correct"),
                  "expired": (400, "code_expired", "the code has expired; start again"),
                  "too_many_attempts": (400, "too_many_attempts", "too many wrong codes; start again"),
                  "not_found": (404, "not_found", "no verification is pending for this number")}


async def phone_check(conn: AsyncConnection, platform: Platform, raw: str, code: str) -> None:
    """Check a code; a wrong one answers 400 with the attempt counted (committed)."""
    phone = await e164(conn, raw)
    verifier = platform.verifier()
    code_hash, verdict = await platform.guarded(conn, verifier.name, lambda: verifier.check(phone, code))
    cur = await conn.execute("select app_auth.phone_check(%s, %s, %s)", (phone, code_hash, verdict))
    outcome = (await cur.fetchone())[0]  # type: ignore[index]
    if outcome != "verified":
        st, problem, detail = PHONE_PROBLEMS[outcome]
        raise AppError(st, problem, detail, keep=True)  # the attempt counter must stick

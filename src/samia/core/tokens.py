"""Access tokens (short-lived JWT), refresh tokens (opaque, stored hashed), email links,
and argon2id passwords: the credentials the request guard (core.access) checks, auth issues
and notifications sign links with."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import jwt
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from samia.config import Settings
from samia.core.problems import AppError

ALGORITHMS = ["HS256"]  # never "none"; a token naming any other alg is refused


@dataclass(frozen=True)
class Claims:
    sub: str
    raw: Mapping[str, Any]  # read-only: verified claims are cached and shared
    issuer: str  # "samia" or "supabase"
    json: str    # what the database receives as request.jwt.claims

    @property
    def session_id(self) -> str | None:
        return self.raw.get("sid")


def issue_access(settings: Settings, user_id: str, session_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer, "aud": "authenticated", "role": "authenticated",
        "sub": user_id, "sid": session_id, "iat": now, "exp": now + settings.access_token_ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_key, algorithm="HS256")


LEEWAY = 5


def decode_access(settings: Settings, token: str) -> Claims:
    """Verify an access token of ours, or one signed with the configured Supabase secret.

    Verified tokens are cached by their full text (signature included), so a token is
    checked once per process rather than on every request; expiry is re-checked on every
    use, and revocation is checked in the database on every request anyway."""
    supabase = settings.supabase_jwt_secret.get_secret_value() if settings.supabase_jwt_secret else None
    claims = _verified(token, settings.jwt_key, supabase, settings.jwt_issuer)
    if claims.raw["exp"] + LEEWAY < time.time():
        raise AppError(401, "invalid_token", "token expired", headers=_bearer_error())
    return claims


@lru_cache(maxsize=16384)
def _verified(token: str, key: bytes, supabase_key: str | None, issuer: str) -> Claims:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise AppError(401, "invalid_token", "malformed token", headers=_bearer_error()) from e
    if header.get("alg") not in ALGORITHMS:
        raise AppError(401, "invalid_token", "unsupported signing algorithm", headers=_bearer_error())
    options: jwt.types.Options = {"require": ["exp", "sub", "aud"]}
    try:
        raw = jwt.decode(token, key, algorithms=ALGORITHMS, audience="authenticated",
                         issuer=issuer, options=options, leeway=LEEWAY)
        source = "samia"
    except jwt.ExpiredSignatureError as e:
        raise AppError(401, "invalid_token", "token expired", headers=_bearer_error()) from e
    except jwt.PyJWTError as e:
        if supabase_key is None:
            raise AppError(401, "invalid_token", "signature or claims not valid", headers=_bearer_error()) from e
        try:
            raw = jwt.decode(token, supabase_key, algorithms=ALGORITHMS,
                             audience="authenticated", options=options, leeway=LEEWAY)
        except jwt.PyJWTError as e2:
            raise AppError(401, "invalid_token", "signature or claims not valid",
                           headers=_bearer_error()) from e2
        source = "supabase"
        raw.pop("sid", None)  # Supabase sessions live in Supabase, not in our session table
    if raw.get("role") != "authenticated":
        raise AppError(401, "invalid_token", "token role is not 'authenticated'", headers=_bearer_error())
    try:
        uuid.UUID(str(raw["sub"]))
        if raw.get("sid") is not None:
            uuid.UUID(str(raw["sid"]))
    except ValueError as e:
        raise AppError(401, "invalid_token", "malformed subject", headers=_bearer_error()) from e
    return Claims(sub=str(raw["sub"]), raw=MappingProxyType(raw), issuer=source, json=json.dumps(raw))


def _bearer_error() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the hash we store."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_email_token(settings: Settings, user_id: str, email: str, ttl: int = 48 * 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user_id, "email": email, "purpose": "verify_email", "iat": now, "exp": now + ttl},
                      settings.subkey("email-verify-v1"), algorithm="HS256")


def decode_email_token(settings: Settings, token: str) -> tuple[str, str]:
    try:
        raw = jwt.decode(token, settings.subkey("email-verify-v1"), algorithms=ALGORITHMS,
                         options={"require": ["exp", "sub", "email", "purpose"]})
    except jwt.PyJWTError as e:
        raise AppError(400, "invalid_token", "the verification link is not valid or has expired") from e
    if raw.get("purpose") != "verify_email":
        raise AppError(400, "invalid_token", "the verification link is not valid")
    return str(raw["sub"]), str(raw["email"])


class Passwords:
    """argon2id hashing, off the event loop."""

    def __init__(self, settings: Settings) -> None:
        self._ph = PasswordHasher(time_cost=settings.argon2_time_cost,
                                  memory_cost=settings.argon2_memory_kib, parallelism=2)
        self._dummy = self._ph.hash(secrets.token_hex(16))

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(self._ph.hash, password)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). Unknown users are checked against a dummy hash so that
        timing does not tell whether an email is registered."""
        def check() -> tuple[bool, bool]:
            try:
                self._ph.verify(stored or self._dummy, password)
            except (VerificationError, InvalidHashError):
                return False, False
            return stored is not None, self._ph.check_needs_rehash(stored or self._dummy)
        return await to_thread.run_sync(check)

"""The encrypted config store (seeds 001 M28, DESIGN §5): AES-256-GCM, a fresh nonce per
value, the name and version bound as associated data, versioned per name. Master keys come
from the environment with a version each; new values are sealed with the highest, and a
value sealed with an older key opens with that key until `POST /admin/secrets/rotate`
re-encrypts it. Values are never returned by the API, logged or audited.

A stored value named like a setting (STRIPE_WEBHOOK_SECRET, TWILIO_AUTH_TOKEN …) fills that
setting when the environment leaves it unset: at start-up, and at once in the process that
stored it (other processes at their next start)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, status
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, SecretStr

from samia.config import Settings
from samia.core.access import Ctx, Probe, allow
from samia.core.models import Input
from samia.core.platform import Platform
from samia.core.problems import AppError

router = APIRouter(tags=["ops"])


def master_keys(settings: Settings) -> dict[str, bytes]:
    if settings.secrets_master_keys is None:
        return {"v1": settings.subkey("config-secrets-v1")}
    keys = {}
    for part in settings.secrets_master_keys.get_secret_value().split(","):
        kid, _, b64 = part.strip().partition(":")
        key = base64.b64decode(b64)
        if not kid.startswith("v") or not kid[1:].isdigit() or len(key) != 32:
            raise ValueError("SECRETS_MASTER_KEYS entries look like v2:<base64 of 32 bytes>")
        keys[kid] = key
    return keys


def current_key(keys: dict[str, bytes]) -> str:
    return max(keys, key=lambda k: int(k[1:]))


def seal(keys: dict[str, bytes], name: str, version: int, value: str) -> tuple[str, bytes, bytes]:
    kid = current_key(keys)
    nonce = os.urandom(12)
    return kid, nonce, AESGCM(keys[kid]).encrypt(nonce, value.encode(), f"{name}:{version}".encode())


def open_(keys: dict[str, bytes], name: str, version: int, kid: str, nonce: bytes, ciphertext: bytes) -> str:
    if kid not in keys:
        raise AppError(503, "provider_not_configured", f"master key {kid} is no longer configured",
                       extra={"setting": "SECRETS_MASTER_KEYS"})
    try:
        return AESGCM(keys[kid]).decrypt(nonce, ciphertext, f"{name}:{version}".encode()).decode()
    except InvalidTag as exc:
        raise AppError(500, "internal_error", "a stored secret failed its integrity check") from exc


async def read_secret(conn: AsyncConnection, settings: Settings, name: str) -> str | None:
    """The current value of a stored secret (for the code that uses it), or None."""
    cur = await conn.execute("select * from app.secret_current(%s)", (name,))
    row = await cur.fetchone()
    if row is None:
        return None
    version, kid, nonce, ciphertext = row
    return open_(master_keys(settings), name, version, kid, bytes(nonce), bytes(ciphertext))


async def apply_stored(platform: Platform) -> list[str]:
    """Fill settings the environment leaves unset (provider keys, webhook secrets …) from
    the store: the environment always wins. Providers built from the old settings are
    dropped so the next call builds them again. Returns the names applied."""
    fields = {f.alias: (name, "SecretStr" in str(f.annotation))
              for name, f in type(platform.settings).model_fields.items() if f.alias}
    async with platform.pool.connection() as conn:
        await conn.execute("select set_config('role', 'service_role', true)")
        cur = await conn.execute("select name, version, key_id, nonce, ciphertext from app.secret_all()")
        rows = await cur.fetchall()
        await conn.rollback()
    keys = master_keys(platform.settings)
    updates: dict[str, Any] = {}
    for name, version, kid, nonce, ciphertext in rows:
        field = fields.get(name)
        if field is None or kid not in keys or name in platform.env_set:
            continue
        value = open_(keys, name, version, kid, bytes(nonce), bytes(ciphertext))
        updates[field[0]] = SecretStr(value) if field[1] else value
    if updates:
        platform.use_settings(platform.settings.model_copy(update=updates))
    return sorted(n for n, (f, _) in fields.items() if f in updates)


class SecretIn(Input):
    name: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$", examples=["STRIPE_API_KEY"])]
    value: Annotated[str, Field(min_length=1, max_length=4096)]


class RotateIn(Input):
    name: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")] | None = Field(
        None, description="with value: store a new version of this secret")
    value: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    reencrypt: bool = Field(True, description="re-seal every current value under the newest master key")


class SecretMeta(BaseModel):
    name: str
    version: int
    key_id: str
    created_at: dt.datetime


SUPER = Probe("select app.require_superadmin()", "the store's functions admit the super admin only")


async def _put(ctx: Ctx, name: str, value: str) -> int:
    keys = master_keys(ctx.platform.settings)
    cur = await ctx.conn.execute("select app.secret_next_version(%s)", (name,))
    version = (await cur.fetchone())[0]  # type: ignore[index]
    kid, nonce, ciphertext = seal(keys, name, version, value)
    await ctx.conn.execute("select app.secret_put(%s, %s, %s, %s, %s)", (name, version, kid, nonce, ciphertext))
    return int(version)


@router.get("/admin/secrets", response_model=list[SecretMeta])
async def list_secrets(ctx: Ctx = allow("superadmin", probe=SUPER)) -> list[dict[str, Any]]:
    """Names, versions and which master key sealed them. Never values."""
    return await secret_names(ctx.conn)


@router.post("/admin/secrets", status_code=status.HTTP_201_CREATED, response_model=SecretMeta)
async def put_secret(body: SecretIn, ctx: Ctx = allow("superadmin", probe=SUPER)) -> dict[str, Any]:
    """Store a secret (a new version if the name exists)."""
    version = await _put(ctx, body.name, body.value)
    ctx.after_commit.append(lambda: apply_stored(ctx.platform))
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select * from app.secret_names() where name = %s and version = %s", (body.name, version))
    return await cur.fetchone()  # type: ignore[return-value]


@router.post("/admin/secrets/rotate")
async def rotate(body: RotateIn, ctx: Ctx = allow("superadmin", probe=SUPER)) -> dict[str, Any]:
    """Rotate: a new value for one secret, and/or re-seal every current value under the
    newest master key (values sealed with an older key stay readable until then)."""
    return await rotate_secrets(ctx, body.name, body.value, reencrypt=body.reencrypt)


async def secret_names(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Names, versions and which master key sealed them. Never values."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select * from app.secret_names()")
    return await cur.fetchall()


async def rotate_secrets(ctx: Ctx, name: str | None, value: str | None, *, reencrypt: bool) -> dict[str, Any]:
    """A new value for one secret, and/or every current value re-sealed under the newest master
    key (values sealed with an older key stay readable until then). Audited, values never."""
    if (name is None) != (value is None):
        raise AppError(422, "validation_error", "give name and value together")
    out: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    if name and value:
        out["new_version"] = {"name": name, "version": await _put(ctx, name, value)}
        meta["version"] = out["new_version"]["version"]
    if reencrypt:
        keys = master_keys(ctx.platform.settings)
        newest = current_key(keys)
        cur = await ctx.conn.execute("select name, version, key_id, nonce, ciphertext from app.secret_all() "
                                     "where key_id <> %s", (newest,))
        moved = 0
        for sname, version, kid, nonce, ciphertext in await cur.fetchall():
            plain = open_(keys, sname, version, kid, bytes(nonce), bytes(ciphertext))
            _, new_nonce, new_ct = seal(keys, sname, version, plain)
            await ctx.conn.execute("select app.secret_reseal(%s, %s, %s, %s, %s)",
                                   (sname, version, newest, new_nonce, new_ct))
            moved += 1
        out["reencrypted"] = meta["reencrypted"] = moved
        out["key_id"] = meta["key_id"] = newest
    ctx.after_commit.append(lambda: apply_stored(ctx.platform))
    await ctx.conn.execute("select app.audit('secrets.rotated', 'secrets', %s, %s)",
                           (name or "*", json.dumps(meta)))
    return out

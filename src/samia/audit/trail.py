"""Signed snapshots of the audit chain and their offline verification.

An export is JSON lines, one per sealed row in chain order: its position, the link hashes,
the canonical text the database hashed, and the record that text encodes. The export's
bytes carry an Ed25519 detached signature. Anyone with the public key checks it offline:
the signature, then every link (sha256(prev_hash || canonical) == row_hash, each prev_hash
the previous row_hash, positions without a gap), then that each record is its canonical text.
Recording an attestation (the admin route's and the monthly job's) lives here too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg import AsyncConnection

from samia.config import Settings

FIELDS = ("id", "created_at", "actor", "actor_role", "event", "entity", "entity_id", "meta", "request_id")
GENESIS = "0" * 64


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.audit_signing_key is not None:
        seed = base64.b64decode(settings.audit_signing_key.get_secret_value())
    else:
        seed = settings.subkey("audit-ed25519-v1")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64(settings: Settings) -> str:
    raw = signing_key(settings).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Export:
    data: bytes
    rows: int
    head_pos: int
    head_hash: str
    sha256: str
    signature: str       # base64 of the 64-byte detached signature over `data`


async def export(conn: AsyncConnection, settings: Settings) -> Export:
    """Seal what is committed, then write out the whole sealed chain and sign it."""
    await conn.execute("select app.audit_seal()")
    cur = conn.cursor(name="audit_export")
    await cur.execute("select a.chain_pos, a.prev_hash, a.row_hash, app.audit_canonical(a) from audit_log a "
                      "where a.chain_pos is not null order by a.chain_pos")
    lines, head_pos, head_hash = [], 0, GENESIS
    async for pos, prev, row_hash, canonical in cur:
        record = dict(zip(FIELDS, json.loads(canonical), strict=True))
        lines.append(json.dumps({"chain_pos": pos, "prev_hash": prev, "row_hash": row_hash, "canonical": canonical,
                                 "record": record}, ensure_ascii=False, separators=(",", ":")))
        head_pos, head_hash = pos, row_hash
    await cur.close()
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    signature = base64.b64encode(signing_key(settings).sign(data)).decode()
    return Export(data, len(lines), head_pos, head_hash, hashlib.sha256(data).hexdigest(), signature)


def load_public_key(text: str) -> Ed25519PublicKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


def verify_export(data: bytes, signature: str, public_key: str) -> tuple[bool, str]:
    """Offline check of a signed export: (ok, message naming the first bad row)."""
    try:
        load_public_key(public_key).verify(base64.b64decode(signature.strip()), data)
    except (InvalidSignature, ValueError) as exc:
        return False, f"signature INVALID ({type(exc).__name__}): the export is not what was signed"
    prev, expected_pos = GENESIS, 1
    for n, line in enumerate(data.decode().splitlines(), start=1):
        try:
            row: dict[str, Any] = json.loads(line)
            canonical = row["canonical"]
            pos = row["chain_pos"]
            if pos != expected_pos:
                return False, f"export BROKEN at line {n}: chain_pos {pos}, expected {expected_pos}"
            if row["prev_hash"] != prev:
                return False, f"export BROKEN at chain_pos {pos}: prev_hash does not match the previous row"
            if hashlib.sha256((row["prev_hash"] + canonical).encode()).hexdigest() != row["row_hash"]:
                return False, f"export BROKEN at chain_pos {pos}: row_hash does not match the row contents"
            if row["record"] != dict(zip(FIELDS, json.loads(canonical), strict=True)):
                return False, f"export BROKEN at chain_pos {pos}: the record differs from its hashed text"
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"export BROKEN at line {n}: unreadable ({type(exc).__name__})"
        prev, expected_pos = row["row_hash"], expected_pos + 1
    return True, f"export ok: signature valid, {expected_pos - 1} rows, head {prev}"

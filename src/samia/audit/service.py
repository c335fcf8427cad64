"""Attesting the audit chain: the signed export, its anchor beside it in storage, the
attestation row, and (after commit) the anchor in the append-only anchor store."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.audit.anchor import Anchor, make_anchors, new_anchor
from samia.audit.trail import export, public_key_b64
from samia.config import Settings
from samia.core.ports import Storage

log = structlog.get_logger("samia.audit")

EXPORTS = "audit/attestations"
ARCHIVED_EXPORTS = "archive/audit-exports"  # exports past their retention (samia.privacy.archive)
ANCHOR_SUFFIX = ".anchor.json"
Hook = Callable[[], Awaitable[Any]]


async def database_identity(conn: AsyncConnection) -> str:
    """Which database a chain belongs to (anchor stores may be shared by several)."""
    cur = await conn.execute("select current_database() || ':' || d.oid from pg_database d "
                             "where d.datname = current_database()")
    row = await cur.fetchone()
    return str(row[0]) if row else "unknown"


async def record_attestation(conn: AsyncConnection, storage: Storage, settings: Settings, undo: list[Hook],
                             after_commit: list[Hook]) -> dict[str, Any]:
    """Export, store privately with its signed anchor, record the attestation (request or job).
    `undo` gets the steps that remove the stored files if the transaction does not commit;
    `after_commit` the step that appends the anchor to the anchor store once the head is durable."""
    exp = await export(conn, settings)
    key = await storage.put(exp.data, prefix=EXPORTS, content_type="application/x-ndjson")
    undo.append(lambda: storage.delete(key))
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "insert into audit_attestations (head_pos, head_hash, rows, export_sha256, signature, public_key, "
        "storage_key, created_by) values (%s, %s, %s, %s, %s, %s, %s, auth.uid()) "
        "returning id, head_pos, head_hash, rows, export_sha256, signature, public_key, created_at, storage_key",
        (exp.head_pos, exp.head_hash, exp.rows, exp.sha256, exp.signature, public_key_b64(settings), key))
    row = await cur.fetchone()
    assert row is not None
    await conn.execute("select app.audit('audit.attested', 'audit', %s, jsonb_build_object('head_pos', %s::bigint, "
                       "'rows', %s::bigint))", (str(row["id"]), exp.head_pos, exp.rows))
    if exp.rows:
        root = json.loads(exp.data.split(b"\n", 1)[0])["row_hash"]
        anchor = new_anchor(attestation_id=row["id"], database=await database_identity(conn), chain_root=root,
                            head_pos=exp.head_pos, head_hash=exp.head_hash, export_key=key,
                            export_sha256=exp.sha256, settings=settings)
        folder, _, name = key.rpartition("/")
        side = await storage.put(anchor.to_json().encode(), prefix=folder, name=name + ANCHOR_SUFFIX,
                                 content_type="application/json")
        undo.append(lambda: storage.delete(side))
        after_commit.append(lambda: append_anchor(settings, anchor))
    return {**row, "export_url": f"/admin/audit/attestations/{row['id']}/export"}


async def append_anchor(settings: Settings, anchor: Anchor) -> None:
    """After commit: a failure here leaves the attestation without its outside anchor; it is
    logged and `samia audit verify` reports the attestation as unanchored."""
    try:
        await make_anchors(settings).append(anchor)
    except Exception:
        log.error("audit_anchor_not_written", attestation_id=anchor.attestation_id, exc_info=True)

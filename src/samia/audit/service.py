"""Attesting the audit chain: the signed export, its anchor beside it in storage, the
attestation row, and (after commit) the anchor in the append-only anchor store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.audit.anchor import Anchor, make_anchors, new_anchor
from samia.audit.trail import export, public_key_b64
from samia.config import Settings
from samia.core.access import Probe
from samia.core.ports import Storage
from samia.core.problems import not_found

log = structlog.get_logger("samia.audit")

READ_PROBE = Probe("select 1 from audit_log")
ATTEST_PROBE = Probe(
    "insert into audit_attestations (head_pos, head_hash, rows, export_sha256, signature, public_key, "
    "storage_key, created_by) values (0, repeat('0', 64), 0, repeat('0', 64), 's', 'k', 'probe', auth.uid())")
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


async def audit_rows(conn: AsyncConnection, *, event: str | None = None, entity: str | None = None,
                     entity_id: str | None = None, actor: str | None = None, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, before: int | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
    """The audit log, newest first, filtered; `event` is exact or a prefix ending in *; page
    with `before` = the last id received."""
    prefix = event[:-1] + "%" if event and event.endswith("*") else event
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select id, chain_pos, created_at, actor::text, actor_role, event, entity, entity_id, meta, request_id,
               row_hash from audit_log
         where (%(event)s::text is null or event like %(event)s)
           and (%(entity)s::text is null or entity = %(entity)s)
           and (%(entity_id)s::text is null or entity_id = %(entity_id)s)
           and (%(actor)s::uuid is null or actor = %(actor)s::uuid)
           and (%(since)s::timestamptz is null or created_at >= %(since)s)
           and (%(until)s::timestamptz is null or created_at < %(until)s)
           and (%(before)s::bigint is null or id < %(before)s)
         order by id desc limit %(limit)s""",
                      {"event": prefix, "entity": entity, "entity_id": entity_id, "actor": actor, "since": since,
                       "until": until, "before": before, "limit": limit})
    return await cur.fetchall()


async def attestations(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, head_pos, head_hash, rows, export_sha256, signature, public_key, created_at, "
                      "'/admin/audit/attestations/' || id || '/export' as export_url from audit_attestations "
                      "order by id desc limit 100")
    return await cur.fetchall()


async def attestation_export(conn: AsyncConnection, storage: Storage, attestation_id: int) -> tuple[bytes, str, str]:
    """The signed export's bytes, its Ed25519 signature and public key (base64)."""
    cur = await conn.execute("select storage_key, signature, public_key from audit_attestations where id = %s",
                             (attestation_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("attestation")
    return await storage.get(row[0]), str(row[1]), str(row[2])

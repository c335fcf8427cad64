"""M43: logs past their retention (log_retention) leave the database for the storage archive.

Each batch becomes a gzipped JSON-lines object under archive/<table>/ with a retention note
beside it (what it holds, the cutoff, its sha256, how long the archive is kept and why); the
rows are deleted in the transaction that read them, after the objects were written, so a failure
leaves the rows where they were. Signed audit exports older than their retention move to
archive/audit-exports/ with their anchors and a note (the newest export always stays, and every
attestation row points at where its export now is, so `samia audit verify` still reads them).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from samia.audit.service import ANCHOR_SUFFIX, ARCHIVED_EXPORTS
from samia.core.ports import Storage
from samia.privacy.jobs import as_system, system

# table → (its time column, which rows are finished with)
LOGS: dict[str, tuple[str, sql.SQL]] = {
    "notification_outbox": ("created_at", sql.SQL("status <> 'pending'")),
    "webhook_events": ("received_at", sql.SQL("true")),
}
BATCH = 5000


def _note(**facts: Any) -> bytes:
    return json.dumps({"kind": "samia-archive-v1", **facts}, indent=1, default=str).encode()


async def archive(pool: AsyncConnectionPool, storage: Storage, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or dt.datetime.now(dt.UTC)
    policy = await system(pool, "archive", "select name, days, archive_days, note from log_retention order by name")
    out: dict[str, int] = {}
    for name, days, keep_days, why in policy:
        cutoff = now - dt.timedelta(days=days)
        if name in LOGS:
            out[name] = await _archive_table(pool, storage, name, cutoff, keep_days, why, now)
        elif name == "audit_exports":
            out[name] = await _archive_exports(pool, storage, cutoff, keep_days, why, now)
    return out


async def _archive_table(pool: AsyncConnectionPool, storage: Storage, table: str, cutoff: dt.datetime,
                         keep_days: int, why: str, now: dt.datetime) -> int:
    column, finished = LOGS[table]
    moved = 0
    while True:
        async with pool.connection() as conn:
            await as_system(conn, "archive")
            cur = await conn.execute(sql.SQL(
                "select ctid::text, to_jsonb(t) from {table} t where {col} < %s and {finished} "
                "order by {col} limit %s for update skip locked").format(
                    table=sql.Identifier(table), col=sql.Identifier(column), finished=finished), (cutoff, BATCH))
            rows = await cur.fetchall()
            if not rows:
                await conn.rollback()
                return moved
            data = gzip.compress("".join(json.dumps(r[1], ensure_ascii=False) + "\n" for r in rows).encode())
            name = f"{cutoff:%Y%m%d}-{uuid.uuid4().hex[:12]}.jsonl.gz"
            key = await storage.put(data, prefix=f"archive/{table}", name=name, content_type="application/gzip")
            note = await storage.put(_note(table=table, rows=len(rows), older_than=cutoff, archived_at=now,
                                           sha256=hashlib.sha256(data).hexdigest(), object=key,
                                           keep_until=now + dt.timedelta(days=keep_days), why=why),
                                     prefix=f"archive/{table}", name=name + ".note.json",
                                     content_type="application/json")
            try:
                await conn.execute(sql.SQL("delete from {} where ctid = any(%s::tid[])").format(sql.Identifier(table)),
                                   ([r[0] for r in rows],))
                await conn.execute("select app.audit('archive.logs', 'log', %s, jsonb_build_object('rows', %s::int, "
                                   "'object', %s::text, 'older_than', %s::timestamptz))",
                                   (table, len(rows), key, cutoff))
                await conn.commit()
            except BaseException:
                await conn.rollback()
                for k in (key, note):
                    await storage.delete(k)
                raise
            moved += len(rows)


async def _archive_exports(pool: AsyncConnectionPool, storage: Storage, cutoff: dt.datetime, keep_days: int,
                           why: str, now: dt.datetime) -> int:
    async with pool.connection() as conn:
        await as_system(conn, "archive")
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("""
            select id, storage_key, export_sha256, head_pos from audit_attestations
             where created_at < %s and storage_key like 'audit/attestations/%%'
               and id <> (select max(id) from audit_attestations)
             order by id for update skip locked""", (cutoff,))
        old = await cur.fetchall()
        copied: list[str] = []
        try:
            for a in old:
                name = a["storage_key"].rpartition("/")[2]
                copied.append(await storage.put(await storage.get(a["storage_key"]), prefix=ARCHIVED_EXPORTS,
                                                name=name, content_type="application/x-ndjson"))
                if a["storage_key"] + ANCHOR_SUFFIX in await storage.list(a["storage_key"].rpartition("/")[0]):
                    copied.append(await storage.put(await storage.get(a["storage_key"] + ANCHOR_SUFFIX),
                                                    prefix=ARCHIVED_EXPORTS, name=name + ANCHOR_SUFFIX,
                                                    content_type="application/json"))
                copied.append(await storage.put(_note(attestation=a["id"], head_pos=a["head_pos"],
                                                      sha256=a["export_sha256"], archived_at=now,
                                                      keep_until=now + dt.timedelta(days=keep_days), why=why),
                                                prefix=ARCHIVED_EXPORTS, name=name + ".note.json",
                                                content_type="application/json"))
                await conn.execute("update audit_attestations set storage_key = %s where id = %s",
                                   (f"{ARCHIVED_EXPORTS}/{name}", a["id"]))
            if old:
                await conn.execute("select app.audit('archive.audit_exports', 'audit', null, "
                                   "jsonb_build_object('attestations', %s::bigint[]))", ([a["id"] for a in old],))
            await conn.commit()
        except BaseException:
            await conn.rollback()
            for k in copied:
                await storage.delete(k)
            raise
    for a in old:  # the copies are committed; the originals go
        await storage.delete(a["storage_key"])
        await storage.delete(a["storage_key"] + ANCHOR_SUFFIX)
    return len(old)

"""The privacy jobs: work approved data-subject requests (export as the person, or erase),
watch their deadlines, delete expired exports, and remove erased objects from storage. Each
step commits on its own and is safe to run again: a request whose run failed or stalled is
taken again (up to 5 attempts; the deadline alerts cover the rest)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from samia.core.ports import Storage
from samia.privacy import export

log = structlog.get_logger("samia.privacy")


async def as_system(conn: AsyncConnection, actor: str) -> None:
    await conn.execute("select set_config('role', 'service_role', true), set_config('request.jwt.claims', %s, true)",
                       (json.dumps({"role": "service_role", "actor": f"system:{actor}"}),))


async def system(pool: AsyncConnectionPool, actor: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        await as_system(conn, actor)
        cur = await conn.execute(query, params)
        rows = await cur.fetchall() if cur.description else []
        await conn.commit()
        return rows


async def process_requests(pool: AsyncConnectionPool, storage: Storage, limit: int = 20) -> int:
    """Take approved requests one at a time until none is left (or `limit`)."""
    done = 0
    while done < limit:
        claimed = await system(pool, "dsr", "select id, user_id::text, kind from app.dsr_claim()")
        if not claimed:
            break
        request_id, user_id, kind = claimed[0]
        try:
            if kind == "export":
                await _export(pool, storage, request_id, user_id)
            else:
                await system(pool, "dsr", "select app.dsr_finish_delete(%s)", (request_id,))
                await drain_deletions(pool, storage)
        except Exception as e:  # recorded on the request; the next run takes it again
            log.error("dsr_failed", request_id=request_id, kind=kind, error_class=type(e).__name__)
            await system(pool, "dsr", "select app.dsr_fail(%s, %s)", (request_id, type(e).__name__))
        done += 1
    return done


async def _export(pool: AsyncConnectionPool, storage: Storage, request_id: int, user_id: str) -> None:
    async with pool.connection() as conn:
        await conn.set_read_only(True)
        try:
            built = await export.build(conn, storage, user_id)
        finally:
            await conn.rollback()
            await conn.set_read_only(False)
    key = await storage.put(built.data, prefix=f"exports/{request_id}", content_type="application/zip")
    try:
        await system(pool, "dsr", "select app.dsr_finish_export(%s, %s, %s, %s, %s)",
                     (request_id, key, hashlib.sha256(built.data).hexdigest(), len(built.data),
                      json.dumps({**built.counts, "files": len(built.files)})))
    except BaseException:
        await storage.delete(key)
        raise


async def sweep(pool: AsyncConnectionPool, storage: Storage, at: str | None = None) -> dict[str, int]:
    """Deadline alerts and expired exports; then the storage deletions they queued."""
    rows = await system(pool, "dsr_sweep", "select app.dsr_sweep(coalesce(%s::timestamptz, now()))", (at,))
    out: dict[str, int] = dict(rows[0][0])
    out["objects_deleted"] = await drain_deletions(pool, storage)
    return out


async def drain_deletions(pool: AsyncConnectionPool, storage: Storage) -> int:
    """Remove the objects app_private.storage_deletions lists; what storage refuses stays listed
    (its attempts counted) for the next run."""
    deleted = 0
    while True:
        keys = [k for (k,) in await system(pool, "storage", "select app.storage_deletions_due(500)")]
        if not keys:
            return deleted
        done, failed = [], []
        for key in keys:
            try:
                await storage.delete(key)
                done.append(key)
            except Exception:
                log.warning("storage_delete_failed", error_class="storage")
                failed.append(key)
        await system(pool, "storage", "select app.storage_deletion_done(%s, %s)", (done, failed))
        deleted += len(done)
        if failed:
            return deleted

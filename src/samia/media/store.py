"""Accept an upload and record it: validated from its bytes first, then stored, then a
media_assets row in the request's transaction. If anything after the write fails, the
stored object is removed when the transaction rolls back, so a refused upload leaves
nothing behind."""

from __future__ import annotations

import json

from samia.core.access import Ctx
from samia.media.files import accept


async def store_upload(ctx: Ctx, data: bytes, *, kinds: set[str], prefix: str, purpose: str) -> int:
    up = await accept(ctx.platform.settings, data, kinds)
    storage = ctx.platform.storage
    key = await storage.put(up.data, prefix=prefix, content_type=up.content_type)
    ctx.on_rollback.append(lambda: storage.delete(key))
    cur = await ctx.conn.execute(
        "insert into media_assets (owner_id, kind, storage_key, content_type, bytes, sha256, duration_sec, meta) "
        "values (auth.uid(), %s, %s, %s, %s, %s, %s, %s) returning id",
        (up.kind, key, up.content_type, up.bytes, up.sha256, up.duration_sec, json.dumps({"purpose": purpose})))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])

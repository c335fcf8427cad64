"""Media in and out: an upload is validated from its bytes first, then stored, then a
media_assets row in the request's transaction (if anything after the write fails, the stored
object is removed when the transaction rolls back, so a refused upload leaves nothing behind);
a file goes out only through a short-lived URL that signs its id, exact sha256 and expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from samia.config import Settings
from samia.core.access import Ctx
from samia.media.files import accept


def url_signature(settings: Settings, media_id: int, sha: str, exp: int) -> str:
    mac = hmac.new(settings.subkey("media-url-v1"), f"{media_id}:{sha}:{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def signed_url(settings: Settings, media_id: int, sha: str, now: float | None = None) -> tuple[str, int]:
    exp = int(now if now is not None else time.time()) + settings.media_url_ttl_seconds
    return f"/media/{media_id}/content?sha={sha}&exp={exp}&sig={url_signature(settings, media_id, sha, exp)}", exp


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

"""Media reaches people only through short-lived signed URLs.

`GET /media/{id}/url` decides who may have a file: a client only the audio a monitor
approved for their own delivered order (pinned by its sha256) and their own uploads; a
reader what belongs to the orders assigned to them; monitors and admins everything (all
under RLS). The URL signs the media id, the exact sha256 and the expiry; the content route
checks the signature, then re-hashes the bytes it serves, so a file swapped in storage
after approval is never delivered."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, allow
from samia.core.models import Id
from samia.core.problems import AppError, not_found
from samia.media import service
from samia.media.store import url_signature

router = APIRouter(tags=["media"])
log = structlog.get_logger("samia.media")


class MediaUrl(BaseModel):
    url: str
    expires_at: dt.datetime
    sha256: str


@router.get("/media/{media_id}/url", response_model=MediaUrl)
async def media_url(media_id: Id, ctx: Ctx = allow(AUTHENTICATED, readonly=False)) -> dict[str, Any]:
    """A URL valid for MEDIA_URL_TTL_SECONDS for a file you may have; 404 otherwise."""
    url, exp, sha = await service.issue_url(ctx.conn, ctx.platform.settings, ctx.role, media_id)
    return {"url": url, "expires_at": dt.datetime.fromtimestamp(exp, dt.UTC), "sha256": sha}


Sha = Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")]


@router.get("/media/{media_id}/content", response_class=Response,
            responses={200: {"content": {"audio/mpeg": {}, "image/png": {}, "application/pdf": {}},
                             "description": "the file's bytes"}})
async def media_content(media_id: Id, sha: Sha, exp: Annotated[int, Query(ge=0, le=2**40)],
                        sig: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{10,64}$")],
                        ctx: Ctx = allow(PUBLIC)) -> Response:
    """The bytes behind a signed URL. Expired or tampered URLs answer 403."""
    settings = ctx.platform.settings
    if not hmac.compare_digest(sig.encode(), url_signature(settings, media_id, sha, exp).encode()):
        raise AppError(403, "invalid_signature", "this media URL is not valid")
    if exp < time.time():
        raise AppError(403, "url_expired", "this media URL has expired; ask for a new one")
    cur = await ctx.conn.execute("select storage_key, content_type from app.media_object(%s, %s)", (media_id, sha))
    row = await cur.fetchone()
    if row is None:
        raise not_found("media")
    data = await ctx.platform.storage.get(row[0])
    if hashlib.sha256(data).hexdigest() != sha:
        log.error("media_hash_mismatch", media_id=media_id)
        raise AppError(409, "media_changed", "the stored file no longer matches what was approved")
    return Response(data, media_type=row[1] or "application/octet-stream",
                    headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
                             "Content-Disposition": "inline"})

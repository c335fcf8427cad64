"""Who may have which file (a client only the audio approved for their own delivered order,
and their own uploads) and the signed, expiring URL they get for it (signed by media.store)."""

from __future__ import annotations

from psycopg import AsyncConnection

from samia.config import Settings
from samia.core.problems import not_found
from samia.media.store import signed_url


async def grantable_sha(conn: AsyncConnection, role: str | None, media_id: int) -> str | None:
    """The sha256 of a file the caller may have (RLS decides), else None."""
    if role == "client":
        cur = await conn.execute(
            "select approved_sha256 from orders where approved_media_id = %s and status in ('delivered', 'archived') "
            "union all select sha256 from media_assets where id = %s and owner_id = auth.uid() limit 1",
            (media_id, media_id))
    else:
        cur = await conn.execute("select sha256 from media_assets where id = %s", (media_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def issue_url(conn: AsyncConnection, settings: Settings, role: str | None, media_id: int) -> tuple[str, int, str]:
    """(url, expiry, sha256) valid for MEDIA_URL_TTL_SECONDS for a file the caller may have;
    404 otherwise. Audited."""
    sha = await grantable_sha(conn, role, media_id)
    if sha is None:
        raise not_found("media")
    url, exp = signed_url(settings, media_id, sha)
    await conn.execute("select app.audit('media.url_issued', 'media', %s, '{}'::jsonb)", (str(media_id),))
    return url, exp, sha

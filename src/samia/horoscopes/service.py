"""Daily horoscopes: what the public reads (published items only, through app.horoscopes_public),
the caption table's classification, the assistant's drafts, and the ingest step the fetch job
runs. Rules (who may, the guard, publishing once) are in schema/08_horoscopes.sql."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from samia.config import Settings
from samia.core.ports import Storage
from samia.horoscopes import audio
from samia.providers.ai import LABEL as DRAFT_LABEL

log = structlog.get_logger("samia.horoscopes")

BEIRUT = ZoneInfo("Asia/Beirut")
SIGNS = ("Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo", "Libra", "Scorpio", "Sagittarius", "Capricorn",
         "Aquarius", "Pisces")


# ─── time ───────────────────────────────────────────────────────────────────────────────
def beirut_day(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(BEIRUT).date()


def next_midnight(now: dt.datetime | None = None) -> dt.datetime:
    """The next start of a Beirut day (on the day the clocks skip midnight, 01:00 local)."""
    day = beirut_day(now) + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=BEIRUT).astimezone(dt.UTC)


def seconds_to_midnight(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    return max(1, int((next_midnight(now) - now).total_seconds()))


# ─── reading ────────────────────────────────────────────────────────────────────────────
def audio_path(scope: str, day: dt.date, sign: str) -> str:
    return f"/horoscopes/audio/{scope}/{day.isoformat()}/{sign}"


async def published(conn: AsyncConnection, scope: str, day: dt.date, *, exact: bool) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select * from app.horoscopes_public(%s, %s, %s)", (scope, day, exact))
    return await cur.fetchall()


def public_items(rows: list[dict[str, Any]], sign: str | None) -> list[dict[str, Any]]:
    """The client's view of each row: nothing but the final text and the audio's URL."""
    return [{"sign": r["zodiac"], "text_en": r["text_en"], "text_ar": r["text_ar"], "audio_lang": r["audio_lang"],
             "duration_sec": r["duration_sec"],
             "audio_url": f"{audio_path(r['scope'], r['ref_date'], r['zodiac'])}?v={r['audio_sha256'][:16]}"}
            for r in rows if sign is None or r["zodiac"] == sign]


def etag(*parts: object) -> str:
    return '"' + hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:32] + '"'


def etag_matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or tag in [t.strip().removeprefix("W/") for t in header.split(",")]


async def own_sign(conn: AsyncConnection) -> str | None:
    cur = await conn.execute("select zodiac from profiles where id = auth.uid()")
    row = await cur.fetchone()
    return row[0] if row else None


# ─── the daily push: the caller's own opt-in (RLS: their row only) ───────────────────────
LOCAL_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


async def subscription(conn: AsyncConnection) -> str | None:
    """The caller's daily push time (HH:MM), or None when not opted in."""
    cur = await conn.execute("select to_char(local_time, 'HH24:MI') from horoscope_subscriptions "
                             "where user_id = auth.uid()")
    row = await cur.fetchone()
    return row[0] if row else None


async def subscribe(conn: AsyncConnection, local_time: str) -> None:
    """Opt in (or move the time): "your horoscope is ready" once a day at HH:MM local time."""
    await conn.execute("insert into horoscope_subscriptions (user_id, local_time) values (auth.uid(), %s::time) "
                       "on conflict (user_id) do update set local_time = excluded.local_time", (local_time,))


async def unsubscribe(conn: AsyncConnection) -> None:
    await conn.execute("delete from horoscope_subscriptions where user_id = auth.uid()")


# ─── classification by the caption table ────────────────────────────────────────────────
@dataclass(frozen=True)
class Classified:
    zodiac: str
    scope: str
    ref_date: dt.date
    lang: str


DATE_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
DATE_DMY = re.compile(r"\b(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2,4}))?\b")
ARABIC = re.compile(r"[\u0600-\u06ff]")
TODAY = {"today", "اليوم"}


def caption_date(caption: str, submitted: dt.date) -> dt.date | None:
    """An ISO date, or day/month[/year] as written in Lebanon; else "today" words mean the day
    the clip was submitted (Beirut)."""
    try:
        if m := DATE_ISO.search(caption):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := DATE_DMY.search(caption):
            year = int(m[3]) if m[3] else submitted.year
            return dt.date(year + 2000 if year < 100 else year, int(m[2]), int(m[1]))
    except ValueError:
        return None
    words = set(re.split(r"[\W_]+", caption.lower()))
    return submitted if words & TODAY else None


async def classify_caption(conn: AsyncConnection, caption: str | None, submitted: dt.date) -> Classified | None:
    """Exactly one sign named (any of its spellings), a date, and a scope (daily unless a
    monthly word is there); otherwise None: the clip waits for a person."""
    if not caption:
        return None
    words = [w for w in re.split(r"[\W_]+", caption.lower()) if len(w) >= 2]
    if not words:
        return None
    cur = await conn.execute("select term, kind, value, lang from horoscope_captions where term = any(%s)", (words,))
    rows = await cur.fetchall()
    signs = {r[2] for r in rows if r[1] == "sign"}
    scopes = {r[2] for r in rows if r[1] == "scope"}
    day = caption_date(caption, submitted)
    if len(signs) != 1 or day is None:
        return None
    scope = "monthly" if "monthly" in scopes else "daily"
    lang = "ar" if any(r[3] == "ar" for r in rows if r[1] == "sign") or ARABIC.search(caption) else "en"
    return Classified(signs.pop(), scope, day.replace(day=1) if scope == "monthly" else day, lang)


# ─── the fetch job ──────────────────────────────────────────────────────────────────────
SYSTEM = json.dumps({"role": "service_role", "actor": "system:horoscope_fetch"})


async def as_system(conn: AsyncConnection, actor: str) -> None:
    await conn.execute("select set_config('role', 'service_role', true), set_config('request.jwt.claims', %s, true)",
                       (json.dumps({"role": "service_role", "actor": f"system:{actor}"}),))


async def fetch_clip(pool: AsyncConnectionPool, storage: Storage, settings: Settings, clip_id: int,
                     *, final: bool) -> str:
    """Fetch or read the clip's source, normalise it, store it privately, register it and
    classify it by its caption. A failure is recorded on the clip and raised for the retry; on
    the final attempt the clip is marked failed (admins see it) instead."""
    async with pool.connection() as conn:
        await as_system(conn, "horoscope_fetch")
        cur = await conn.execute("select source, source_url, caption, source_media_id, created_at from horoscope_clips "
                                 "where id = %s and state = 'fetching' for update skip locked", (clip_id,))
        row = await cur.fetchone()
        if row is None:
            return "nothing to do"
        source, url, caption, source_media, created = row
        key: str | None = None
        try:
            with tempfile.TemporaryDirectory(prefix="samia-ingest-") as tmp:
                folder = Path(tmp)
                if source == "url":
                    fetched = await audio.fetch(settings, url, folder)
                    src, caption = fetched.path, caption or fetched.caption
                else:
                    cur = await conn.execute("select storage_key from media_assets where id = %s", (source_media,))
                    found = await cur.fetchone()
                    if found is None:
                        raise audio.AudioError("the uploaded file is gone")
                    src = folder / "upload"
                    src.write_bytes(await storage.get(found[0]))
                processed = await audio.normalise(src)
            key = await storage.put(processed.data, prefix="horoscopes", content_type=audio.CONTENT_TYPE)
            cur = await conn.execute(
                "insert into media_assets (kind, storage_key, content_type, bytes, sha256, duration_sec, meta) "
                "values ('audio', %s, %s, %s, %s, %s, %s) returning id",
                (key, audio.CONTENT_TYPE, len(processed.data), processed.sha256, max(1, round(processed.seconds)),
                 json.dumps(processed.meta)))
            media = await cur.fetchone()
            assert media is not None
            await conn.execute("update horoscope_clips set state = 'unclassified', media_id = %s, caption = %s, "
                               "attempts = attempts + 1, last_error = null, updated_at = now() where id = %s",
                               (media[0], caption, clip_id))
            found_class = await classify_caption(conn, caption, beirut_day(created))
            if found_class is not None:
                await conn.execute("select app.horoscope_classify(%s, %s, %s, %s, %s, 'caption')",
                                   (clip_id, found_class.scope, found_class.zodiac, found_class.ref_date,
                                    found_class.lang))
            await conn.commit()
            return "classified" if found_class else "unclassified"
        except Exception as exc:
            await conn.rollback()
            if key is not None:
                await storage.delete(key)
            message = str(exc)[:200] if isinstance(exc, audio.AudioError) else type(exc).__name__
            log.warning("horoscope_fetch_failed", clip_id=clip_id, error=message, final=final)
            await as_system(conn, "horoscope_fetch")
            await conn.execute("update horoscope_clips set attempts = attempts + 1, last_error = %s, "
                               "state = case when %s then 'failed' else state end, updated_at = now() where id = %s",
                               (message, final, clip_id))
            await conn.commit()
            if final:
                return "failed"
            raise


# ─── the assistant's draft (deterministic template drafter: no provider configured) ─────
SIGN_AR = dict(zip(SIGNS, ("الحمل", "الثور", "الجوزاء", "السرطان", "الأسد", "العذراء", "الميزان", "العقرب",
                           "القوس", "الجدي", "الدلو", "الحوت"), strict=True))
THEMES_EN = ("patience opens a door you thought was closed", "a conversation brings clarity",
             "rest is part of the work today", "trust what your intuition keeps repeating")
THEMES_AR = ("الصبر يفتح بابًا ظننته مغلقًا", "حديث صادق يجلب الوضوح", "الراحة جزء من العمل اليوم",
             "ثق بما يكرره حدسك")


def draft_text(sign: str, day: dt.date) -> dict[str, str]:
    i = (SIGNS.index(sign) + day.toordinal()) % len(THEMES_EN)
    return {"en": f"{sign}, {day:%d %B}: {THEMES_EN[i]}.",
            "ar": f"برج {SIGN_AR[sign]}، {day:%d/%m}: {THEMES_AR[i]}."}


async def write_drafts(conn: AsyncConnection, horoscope_id: int) -> list[dict[str, str]]:
    cur = await conn.execute("select zodiac, ref_date from horoscopes where id = %s", (horoscope_id,))
    row = await cur.fetchone()
    if row is None:
        from samia.core.problems import not_found

        raise not_found("horoscope")
    texts = draft_text(row[0], row[1])
    for lang, body in texts.items():
        await conn.execute("insert into horoscope_drafts (horoscope_id, lang, body) values (%s, %s, %s) "
                           "on conflict (horoscope_id, lang) do update set body = excluded.body, created_at = now()",
                           (horoscope_id, lang, body))
    return [{"lang": lang, "label": DRAFT_LABEL, "body": body} for lang, body in texts.items()]


async def staff_day(conn: AsyncConnection, scope: str, day: dt.date) -> list[dict[str, Any]]:
    """The twelve signs of a day as staff see them: state, texts, drafts, audio, the guard."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select g.zodiac as sign, g.reasons as guard, h.id, h.status, h.text_en, h.text_ar, h.audio_lang,
               h.audio_media_id, h.audio_sha256, h.reject_reason, h.clip_id, m.duration_sec,
               (m.meta->>'lufs')::float as lufs, m.sha256 as media_sha256,
               coalesce((select jsonb_agg(jsonb_build_object('lang', d.lang, 'label', d.label, 'body', d.body)
                                          order by d.lang)
                           from horoscope_drafts d where d.horoscope_id = h.id), '[]'::jsonb) as drafts
          from app.horoscope_guard(%s, %s) g
          left join horoscopes h on h.id = g.horoscope_id
          left join media_assets m on m.id = h.audio_media_id
         order by array_position(%s::text[], g.zodiac)""", (scope, day, list(SIGNS)))
    return await cur.fetchall()

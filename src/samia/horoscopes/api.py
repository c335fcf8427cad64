"""Daily horoscopes over HTTP. Public: today's (or a day's) published signs and their audio,
cached until the next Beirut midnight (ETag, If-None-Match → 304, Range → 206), listen events.
Staff: ingest (a post URL or an upload), the clip queue, classification, the assistant's
drafts, the final text, speech, approval and rejection; admins: the caption table and the
explicit (partial) publish. Rules: schema/08_horoscopes.sql; the steps: service.py, audio.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from samia.core.access import ADMIN_PROBE, ADMINS, AUTHENTICATED, PUBLIC, STAFF, Ctx, Probe, allow
from samia.core.models import Id, Input
from samia.core.problems import AppError, invalid, not_found
from samia.horoscopes import audio, service
from samia.horoscopes.service import SIGNS
from samia.media.files import sniff

router = APIRouter(tags=["horoscopes"])

Sign = Literal["Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo", "Libra", "Scorpio", "Sagittarius", "Capricorn",
               "Aquarius", "Pisces"]
Scope = Literal["daily", "monthly"]
Lang = Literal["en", "ar"]
# staff of horoscopes: captions are seeded rows only staff read
STAFF_PROBE = Probe("select 1 from horoscope_captions limit 1", "monitors and admins read the caption table")
# readers work on the text too (the same helper the policies use)
TEXT_PROBE = Probe("select 1 where app.horoscope_staff()", "readers, monitors and admins work on horoscope text")
TEXT_ROLES = ("reader", *STAFF)


# ─── public reading ─────────────────────────────────────────────────────────────────────
class Item(BaseModel):
    sign: str
    text_en: str
    text_ar: str
    audio_url: str = Field(description="the approved audio (cached; Range requests supported)")
    audio_lang: str | None
    duration_sec: int | None


class Day(BaseModel):
    scope: str
    date: dt.date | None = Field(description="the Beirut day (monthly: the first of the month); null: none yet")
    items: list[Item]
    your_sign: str | None = Field(None, description="signed-in callers: their own sign (from the profile)")


def _cached_json(request: Request, body: dict[str, Any], *, private: bool) -> Response:
    tag = service.etag(body)
    headers = {"ETag": tag, "Vary": "Authorization",
               "Cache-Control": f"{'private' if private else 'public'}, max-age={service.seconds_to_midnight()}"}
    if service.etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(json.loads(json.dumps(body, default=str)), headers=headers)


async def _day(ctx: Ctx, request: Request, scope: str, day: dt.date, exact: bool, sign: str | None) -> Response:
    rows = await service.published(ctx.conn, scope, day, exact=exact)
    body: dict[str, Any] = {"scope": scope, "date": rows[0]["ref_date"] if rows else None,
                            "items": service.public_items(rows, sign)}
    if ctx.claims is not None:
        body["your_sign"] = await service.own_sign(ctx.conn)
    return _cached_json(request, body, private=ctx.claims is not None)


@router.get("/horoscopes/today", response_model=Day, responses={304: {"description": "not modified"}})
async def today(request: Request, sign: Sign | None = None, scope: Scope = "daily",
                ctx: Ctx = allow(PUBLIC)) -> Response:
    """The current Beirut day's published horoscopes (the newest published day while today's is
    held back), or this month's. Cached until the next Beirut midnight."""
    return await _day(ctx, request, scope, service.beirut_day(), False, sign)


@router.get("/horoscopes/{day}", response_model=Day, responses={304: {"description": "not modified"}})
async def on_day(day: dt.date, request: Request, sign: Sign | None = None, scope: Scope = "daily",
                 ctx: Ctx = allow(PUBLIC)) -> Response:
    """One day's (or, monthly, that month's) published horoscopes; 404 when none are published."""
    resp = await _day(ctx, request, scope, day, True, sign)
    if resp.status_code == 200 and not json.loads(bytes(resp.body))["items"]:
        raise not_found("horoscopes")
    return resp


def _range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clamped; None when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size > 0 else None
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    return (start, end) if 0 <= start <= end else None


# Published audio by its pinned sha256, per process and bounded: the key is the content's own
# hash, checked when the bytes were read, so a cached entry can only ever be the approved file.
_AUDIO: OrderedDict[str, bytes] = OrderedDict()
AUDIO_CACHE_BYTES = 64 * 1_048_576


async def _pinned_bytes(ctx: Ctx, key: str, sha: str) -> bytes:
    if (data := _AUDIO.get(sha)) is not None:
        _AUDIO.move_to_end(sha)
        return data
    data = await ctx.platform.storage.get(key)
    if hashlib.sha256(data).hexdigest() != sha:
        raise AppError(409, "media_changed", "the stored file no longer matches what was approved")
    _AUDIO[sha] = data
    while sum(len(v) for v in _AUDIO.values()) > AUDIO_CACHE_BYTES and len(_AUDIO) > 1:
        _AUDIO.popitem(last=False)
    return data


@router.get("/horoscopes/audio/{scope}/{day}/{sign}", response_class=Response,
            responses={200: {"content": {"audio/mpeg": {}}, "description": "the approved audio"},
                       206: {"description": "the requested byte range"}, 304: {"description": "not modified"},
                       416: {"description": "range not satisfiable"}})
async def audio_file(scope: Scope, day: dt.date, sign: Sign, request: Request, ctx: Ctx = allow(PUBLIC)) -> Response:
    """The approved, published audio of one sign (only the pinned file: its sha256 is the ETag)."""
    cur = await ctx.conn.execute("select * from app.horoscope_audio(%s, %s, %s)", (scope, day, sign))
    row = await cur.fetchone()
    if row is None:
        raise not_found("horoscope audio")
    key, ctype, sha, _ = row
    tag = f'"{sha}"'
    headers = {"ETag": tag, "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff",
               "Cache-Control": f"public, max-age={service.seconds_to_midnight()}"}
    if service.etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    data = await _pinned_bytes(ctx, key, sha)
    rng = request.headers.get("range")
    if rng and (request.headers.get("if-range") in (None, tag)):
        span = _range(rng, len(data))
        if span is None:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
        start, end = span
        return Response(data[start:end + 1], status_code=206, media_type=ctype,
                        headers={**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
    return Response(data, media_type=ctype or audio.CONTENT_TYPE, headers=headers)


class ListenIn(Input):
    scope: Scope = "daily"
    date: dt.date
    sign: Sign
    event: Literal["started", "finished"]
    seconds: Annotated[int, Field(ge=0, le=3600)] | None = None


@router.post("/horoscopes/listen", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def listen(body: ListenIn, ctx: Ctx = allow(PUBLIC, readonly=False, rate="horoscope_listen")) -> Response:
    """A player started or finished a published horoscope: an analytics event, no PII (a
    signed-in user's id only as analytics consent allows)."""
    await ctx.conn.execute("select app.horoscope_listen(%s, %s, %s, %s, %s)",
                           (body.scope, body.date, body.sign, body.event, body.seconds))
    return Response(status_code=204)


class SubscriptionIn(Input):
    # HH:MM, not a JSON-Schema "time" (that one requires a UTC offset; this is wall-clock time)
    local_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = Field(
        "08:00", description="when, HH:MM in your time zone (profile tz, else Beirut)")


@router.put("/me/horoscope-subscription", response_model=SubscriptionIn)
async def subscribe(body: SubscriptionIn, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, str]:
    """Opt in to "your horoscope is ready", once a day at your local time."""
    await service.subscribe(ctx.conn, body.local_time)
    return {"local_time": body.local_time}


@router.delete("/me/horoscope-subscription", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def unsubscribe(ctx: Ctx = allow(AUTHENTICATED)) -> Response:
    await service.unsubscribe(ctx.conn)
    return Response(status_code=204)


# ─── ingest (monitors and admins) ───────────────────────────────────────────────────────
class IngestIn(Input):
    url: Annotated[str, Field(min_length=10, max_length=2000)]
    caption: Annotated[str, Field(max_length=4000)] | None = None


class Submitted(BaseModel):
    clip_id: int


@router.post("/monitor/horoscopes/ingest", status_code=status.HTTP_202_ACCEPTED, response_model=Submitted)
async def ingest(body: IngestIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, int]:
    """Queue a TikTok post (or another allowed host's) for fetching; 503 naming YTDLP_BIN
    without yt-dlp, 422 for a host outside HOROSCOPE_INGEST_HOSTS."""
    audio.require_ytdlp(ctx.platform.settings)
    if not audio.host_allowed(ctx.platform.settings, body.url):
        raise invalid(["body", "url"], "host not allowed", code="host_not_allowed",
                      detail="only posts from the hosts in HOROSCOPE_INGEST_HOSTS are fetched")
    cur = await ctx.conn.execute("select app.horoscope_submit('url', %s, %s, null)", (body.url, body.caption))
    row = await cur.fetchone()
    assert row is not None
    return {"clip_id": row[0]}


@router.post("/monitor/horoscopes/upload", status_code=status.HTTP_202_ACCEPTED, response_model=Submitted)
async def upload(request: Request, caption: Annotated[str | None, Query(max_length=4000)] = None,
                 ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, int]:
    """Upload a video or audio file (the request body); the same job extracts and normalises it."""
    data = await request.body()
    found = sniff(data)
    if not ((found and found[0] == "audio") or data[4:8] == b"ftyp"):
        raise invalid(["body"], "unsupported content", code="unsupported_media",
                      detail="expected an audio or MP4/MOV/WebM video file")
    if len(data) > ctx.platform.settings.max_upload_bytes:
        raise AppError(413, "body_too_large", "the file is too large")
    storage = ctx.platform.storage
    key = await storage.put(data, prefix="horoscopes/sources", content_type="application/octet-stream")
    ctx.on_rollback.append(lambda: storage.delete(key))
    cur = await ctx.conn.execute(
        "insert into media_assets (owner_id, kind, storage_key, content_type, bytes, sha256, meta) "
        "values (auth.uid(), 'other', %s, 'application/octet-stream', %s, %s, %s) returning id",
        (key, len(data), hashlib.sha256(data).hexdigest(), json.dumps({"purpose": "horoscope_source"})))
    media = await cur.fetchone()
    assert media is not None
    cur = await ctx.conn.execute("select app.horoscope_submit('upload', null, %s, %s)", (caption, media[0]))
    row = await cur.fetchone()
    assert row is not None
    return {"clip_id": row[0]}


class Clip(BaseModel):
    id: int
    source: str
    source_url: str | None
    caption: str | None
    state: str
    attempts: int
    last_error: str | None
    media_id: int | None
    scope: str | None
    zodiac: str | None
    ref_date: dt.date | None
    lang: str | None
    classified_by: str | None
    created_at: dt.datetime


@router.get("/monitor/horoscopes/clips", response_model=list[Clip])
async def clips(state: Literal["fetching", "failed", "unclassified", "classified", "discarded"] | None = None,
                ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> list[dict[str, Any]]:
    """The ingest queue: unclassified clips wait here for a person; failed fetches show their error."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select id, source, source_url, caption, state, attempts, last_error, media_id, scope, zodiac, "
                      "ref_date, lang, classified_by, created_at from horoscope_clips "
                      "where %(s)s::text is null or state = %(s)s order by id desc limit 200", {"s": state})
    return await cur.fetchall()


class ClassifyIn(Input):
    scope: Scope = "daily"
    sign: Sign
    date: dt.date
    lang: Lang = "ar"


@router.post("/monitor/horoscopes/clips/{clip_id}/classify")
async def classify(clip_id: Id, body: ClassifyIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, int]:
    """Classify a clip by hand: it becomes the audio of that sign's horoscope (back to draft)."""
    cur = await ctx.conn.execute("select app.horoscope_classify(%s, %s, %s, %s, %s, 'hand')",
                                 (clip_id, body.scope, body.sign, body.date, body.lang))
    row = await cur.fetchone()
    assert row is not None
    return {"horoscope_id": row[0]}


# ─── text, speech, approval ─────────────────────────────────────────────────────────────
@router.get("/monitor/horoscopes/day/{day}")
async def staff_day(day: dt.date, scope: Scope = "daily",
                    ctx: Ctx = allow(*TEXT_ROLES, probe=TEXT_PROBE)) -> list[dict[str, Any]]:
    """The twelve signs of a day for staff: state, final texts, the assistant's drafts
    (labelled), the audio, and what the publishing guard would say."""
    return await service.staff_day(ctx.conn, scope, day)


class Draft(BaseModel):
    lang: str
    label: str
    body: str


@router.post("/monitor/horoscopes/{horoscope_id}/draft", response_model=list[Draft])
async def draft(horoscope_id: Id, ctx: Ctx = allow(*TEXT_ROLES, probe=TEXT_PROBE, readonly=False)) -> Any:
    """The assistant's draft per language, labelled as an assistant draft not for client
    delivery (staff only; never the final text)."""
    return await service.write_drafts(ctx.conn, horoscope_id)


class TextIn(Input):
    text_en: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    text_ar: Annotated[str, Field(min_length=1, max_length=4000)] | None = None


@router.patch("/monitor/horoscopes/{horoscope_id}")
async def edit_text(horoscope_id: Id, body: TextIn,
                    ctx: Ctx = allow(*TEXT_ROLES, probe=TEXT_PROBE)) -> dict[str, Any]:
    """The final text (an approved one goes back to draft and needs approval again)."""
    cur = await ctx.conn.execute(
        "update horoscopes set text_en = coalesce(%s, text_en), text_ar = coalesce(%s, text_ar) "
        "where id = %s returning id, status", (body.text_en, body.text_ar, horoscope_id))
    row = await cur.fetchone()
    if row is None:
        raise not_found("horoscope")
    return {"id": row[0], "status": row[1]}


class SpeakIn(Input):
    lang: Lang = "ar"


@router.post("/monitor/horoscopes/{horoscope_id}/speak")
async def speak(horoscope_id: Id, body: SpeakIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Speech from the final text where no recording exists (TTS_PROVIDER: local espeak-ng, or
    ElevenLabs with TTS_API_KEY; 503 naming a missing setting). Needs approval like a recording."""
    cur = await ctx.conn.execute("select scope, zodiac, ref_date, text_en, text_ar from horoscopes where id = %s",
                                 (horoscope_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("horoscope")
    text = row[3] if body.lang == "en" else row[4]
    if not text:
        raise invalid(["body", "lang"], "no final text in that language", code="text_missing")
    spoken = await audio.speak(ctx.platform.settings, text, body.lang)
    storage = ctx.platform.storage
    key = await storage.put(spoken.data, prefix="horoscopes", content_type=audio.CONTENT_TYPE)
    ctx.on_rollback.append(lambda: storage.delete(key))
    cur = await ctx.conn.execute(
        "with m as (insert into media_assets (owner_id, kind, storage_key, content_type, bytes, sha256, duration_sec, "
        "meta) values (auth.uid(), 'audio', %s, %s, %s, %s, %s, %s) returning id) "
        "insert into horoscope_clips (source, state, media_id, lang, submitted_by) "
        "select 'tts', 'unclassified', id, %s, auth.uid() from m returning id, media_id",
        (key, audio.CONTENT_TYPE, len(spoken.data), spoken.sha256, max(1, round(spoken.seconds)),
         json.dumps(spoken.meta), body.lang))
    clip = await cur.fetchone()
    assert clip is not None
    await ctx.conn.execute("select app.horoscope_classify(%s, %s, %s, %s, %s, 'hand')",
                           (clip[0], row[0], row[1], row[2], body.lang))
    return {"clip_id": clip[0], "media_id": clip[1], "seconds": round(spoken.seconds, 2), "lufs": spoken.lufs}


@router.post("/monitor/horoscopes/{horoscope_id}/approve")
async def approve(horoscope_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Approve the audio and both texts: the file's sha256 is pinned; only it is ever served."""
    cur = await ctx.conn.execute("select app.horoscope_approve(%s)", (horoscope_id,))
    row = await cur.fetchone()
    assert row is not None
    return {"id": horoscope_id, "status": "approved", "sha256": row[0]}


class RejectIn(Input):
    reason: Annotated[str, Field(min_length=3, max_length=2000)]


@router.post("/monitor/horoscopes/{horoscope_id}/reject")
async def reject(horoscope_id: Id, body: RejectIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Send it back with a reason."""
    await ctx.conn.execute("select app.horoscope_reject(%s, %s)", (horoscope_id, body.reason))
    return {"id": horoscope_id, "status": "rejected"}


# ─── admins: publishing by hand, the caption table ──────────────────────────────────────
class PublishIn(Input):
    scope: Scope = "daily"
    date: dt.date
    partial: bool = Field(False, description="publish the signs that pass the guard even if not all 12 do")


@router.post("/admin/horoscopes/publish")
async def publish(body: PublishIn, ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> Any:
    """Publish a halted day: all 12 once they pass, or (partial) the passing signs. Audited."""
    cur = await ctx.conn.execute("select app.horoscope_publish(%s, %s, %s)", (body.scope, body.date, body.partial))
    row = await cur.fetchone()
    assert row is not None
    return row[0]


class CaptionIn(Input):
    term: Annotated[str, Field(min_length=2, max_length=60)]
    kind: Literal["sign", "scope"] = "sign"
    value: str
    lang: Lang


@router.get("/admin/horoscopes/captions")
async def captions(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> list[dict[str, Any]]:
    """The caption table: each word or spelling and the sign or scope it means."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select term, kind, value, lang from horoscope_captions order by kind, value, term")
    return await cur.fetchall()


@router.put("/admin/horoscopes/captions", status_code=status.HTTP_200_OK)
async def put_caption(body: CaptionIn, ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> dict[str, str]:
    if body.value not in (SIGNS if body.kind == "sign" else ("daily", "monthly")):
        raise invalid(["body", "value"], "not a sign or scope", code="validation_error")
    await ctx.conn.execute(
        "insert into horoscope_captions (term, kind, value, lang, updated_by) "
        "values (lower(%s), %s, %s, %s, auth.uid()) "
        "on conflict (term) do update set kind = excluded.kind, value = excluded.value, lang = excluded.lang, "
        "updated_by = excluded.updated_by, updated_at = now()", (body.term, body.kind, body.value, body.lang))
    return {"term": body.term.lower(), "value": body.value}

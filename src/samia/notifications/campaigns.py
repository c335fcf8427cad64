"""Campaigns, the verbs the API and the admin's campaigns page share: create a draft, schedule
it into time-zone cohorts (idempotent), read one with its cohorts and stats, list them. The
rules (who may, the cohorts, the stats) live in schema/13_notifications.sql."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import Field, field_validator

from samia.core.models import Input
from samia.core.problems import AppError, not_found

CHANNELS = ("email", "push", "sms", "whatsapp")
ROLES = ("client", "reader", "monitor", "admin", "superadmin")


class Audience(Input):
    roles: list[Literal["client", "reader", "monitor", "admin", "superadmin"]] | None = None
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] | None = None
    languages: list[Literal["en", "ar"]] | None = None
    zodiac: list[Annotated[str, Field(max_length=20)]] | None = None
    segment: Literal["listened_7d"] | None = None


class CampaignIn(Input):
    name: Annotated[str, Field(min_length=3, max_length=120)]
    channel: Literal["email", "push", "sms", "whatsapp"]
    audience: Audience = Audience()
    title_en: Annotated[str, Field(min_length=1, max_length=200)]
    body_en: Annotated[str, Field(min_length=1, max_length=2000)]
    title_ar: Annotated[str, Field(min_length=1, max_length=200)]
    body_ar: Annotated[str, Field(min_length=1, max_length=2000)]
    send_on: dt.date
    local_time: dt.time

    @field_validator("local_time")
    @classmethod
    def _naive(cls, v: dt.time) -> dt.time:
        if v.tzinfo is not None:
            raise ValueError("a local time of day, without an offset")
        return v


async def create_campaign(conn: AsyncConnection, *, name: str, channel: str, audience: dict[str, Any],
                          title_en: str, body_en: str, title_ar: str, body_ar: str, send_on: dt.date,
                          local_time: dt.time) -> dict[str, Any]:
    """A draft: audience by role, country, language, zodiac sign and engagement segment; one
    channel; the text in English and Arabic; the send time in each recipient's local time."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        insert into campaigns (name, channel, audience, title_en, body_en, title_ar, body_ar, send_on, local_time,
                               created_by)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, auth.uid())
        returning id, name, channel, audience, send_on, local_time, status""",
                      (name, channel, json.dumps(audience), title_en, body_en, title_ar, body_ar, send_on,
                       local_time))
    row = await cur.fetchone()
    assert row is not None
    await conn.execute("select app.audit('campaign.created', 'campaign', %s)", (str(row["id"]),))
    return row


async def schedule_campaign(conn: AsyncConnection, campaign_id: int) -> dict[str, Any]:
    """Computes the time-zone cohorts and queues each recipient's send at their local time.
    Idempotent: scheduling again answers the same cohorts and queues nothing."""
    cur = await conn.execute("select app.flag_on('messaging.campaigns')")
    if not (await cur.fetchone() or [False])[0]:
        raise AppError(503, "feature_disabled", "campaigns are switched off (flag messaging.campaigns)",
                       extra={"flag": "messaging.campaigns"})
    await conn.execute("select app.schedule_campaign(%s)", (campaign_id,))
    return await get_campaign(conn, campaign_id)


async def get_campaign(conn: AsyncConnection, campaign_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, name, channel, audience, status, send_on, local_time, scheduled_at from campaigns "
                      "where id = %s", (campaign_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("campaign")
    await cur.execute("select tz, send_at, recipients from campaign_cohorts where campaign_id = %s "
                      "order by send_at, tz", (campaign_id,))
    row["cohorts"] = await cur.fetchall()
    return row


async def campaign_stats(conn: AsyncConnection, campaign_id: int) -> dict[str, Any]:
    """Sends, delivered, opened, clicked, bounced, failed, cancelled, and opted out since."""
    out = await get_campaign(conn, campaign_id)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select * from app.campaign_stats(%s)", (campaign_id,))
    out["stats"] = await cur.fetchone()
    return out


async def list_campaigns(conn: AsyncConnection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest campaigns, each with its stats."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""select c.id, c.name, c.channel, c.audience, c.status, c.send_on, c.local_time,
               c.scheduled_at, s.*
          from campaigns c cross join lateral app.campaign_stats(c.id) s
         order by c.id desc limit %s""", (limit,))
    return await cur.fetchall()

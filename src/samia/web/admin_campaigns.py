"""The admin console's campaigns: the newest campaigns with their stats, a form for a new
draft (audience by role, country and language; one channel; the text in English and Arabic;
the send time in each recipient's local time), and scheduling after a confirmation step. The
same functions and the same validation as /admin/campaigns; scheduling twice queues nothing."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from samia.core.access import ADMIN_PROBE, ADMINS, Ctx, allow
from samia.core.models import Id
from samia.notifications import campaigns
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal, posted
from samia.web.session import pages

router = pages("web", "admin")
CAMPAIGNS = f"{CONSOLE}/campaigns"
TEXTS = ("name", "title_en", "body_en", "title_ar", "body_ar", "send_on", "local_time")
# the message for a field the model refused: its own where one exists, else "fill in this field"
CODES = {"countries": "bad_countries", "send_on": "invalid_date", "local_time": "invalid_time"}


async def _page(request: Request, ctx: Ctx, refusal: Refusal | None = None, form: dict[str, str] | None = None,
                picked: dict[str, list[str]] | None = None) -> Response:
    return console(request, ctx, "campaigns.html", campaigns=await campaigns.list_campaigns(ctx.conn),
                   channels=campaigns.CHANNELS, roles=campaigns.ROLES, picked=picked or {}, refusal=refusal,
                   form=form or {"channel": "push"})


@router.get(CAMPAIGNS, response_class=HTMLResponse)
async def campaigns_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)) -> Response:
    return await _page(request, ctx)


def _draft(form: dict[str, str], picked: dict[str, list[str]]) -> campaigns.CampaignIn | Refusal:
    """The posted form as the API's own input model; its complaints name the fields."""
    countries = [c for c in re.split(r"[\s,]+", form.get("countries", "").upper()) if c]
    audience = {"roles": picked["roles"] or None, "languages": picked["languages"] or None,
                "countries": countries or None}
    try:
        return campaigns.CampaignIn.model_validate({
            **{k: form.get(k, "").strip() for k in TEXTS}, "channel": form.get("channel", ""),
            "audience": {k: v for k, v in audience.items() if v}})
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for e in exc.errors():
            loc = [str(x) for x in e["loc"]]
            name = "countries" if "countries" in loc else "roles" if "roles" in loc else \
                "languages" if "languages" in loc else loc[0]
            fields.setdefault(name, CODES.get(name, "required"))
        return Refusal("validation_error", 422, fields)


@router.post(CAMPAIGNS, response_class=HTMLResponse)
async def create(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)) -> Response:
    raw = await request.form()
    form = await posted(request)
    picked = {k: [str(v) for v in raw.getlist(k)] for k in ("roles", "languages")}
    draft = _draft(form, picked)
    if isinstance(draft, Refusal):
        return await _page(request, ctx, draft, form, picked)
    row, refusal = await act(ctx, lambda: campaigns.create_campaign(
        ctx.conn, **draft.model_dump(exclude={"audience"}), audience=draft.audience.model_dump(exclude_none=True)))
    if refusal or row is None:
        return await _page(request, ctx, refusal, form, picked)
    return done(f"{CAMPAIGNS}#campaign-{row['id']}", "campaign_created")


async def _confirm(request: Request, ctx: Ctx, campaign_id: int, refusal: Refusal | None = None) -> Response:
    row = await campaigns.campaign_stats(ctx.conn, campaign_id)
    return console(request, ctx, "campaign_schedule.html", campaign=row, refusal=refusal)


@router.get(f"{CAMPAIGNS}/{{campaign_id}}/schedule", response_class=HTMLResponse)
async def schedule_form(campaign_id: Id, request: Request,
                        ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)) -> Response:
    return await _confirm(request, ctx, campaign_id)


@router.post(f"{CAMPAIGNS}/{{campaign_id}}/schedule", response_class=HTMLResponse)
async def schedule(campaign_id: Id, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)
                   ) -> Response:
    """Only with the confirmation box ticked; scheduling again answers the same cohorts."""
    form = await posted(request)
    if form.get("confirm") != "yes":
        return await _confirm(request, ctx, campaign_id, Refusal("confirm_required", 422, {"confirm": "required"}))
    _, refusal = await act(ctx, lambda: campaigns.schedule_campaign(ctx.conn, campaign_id))
    if refusal:
        return await _confirm(request, ctx, campaign_id, refusal)
    return done(f"{CAMPAIGNS}#campaign-{campaign_id}", "campaign_scheduled")

"""The admin console's operations (seeds 000 M32/M33): incidents (declare, timeline,
acknowledge, status), the on-call rota, the runbooks of RUNBOOKS/ rendered as safe HTML, and
observability (each SLO's error ratio and remaining error budget as small SVG charts). The
same functions as /admin/incident…, /admin/oncall, /admin/runbooks and /admin/observability."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup

from samia.core.access import ADMIN_PROBE, ADMINS, Ctx, allow
from samia.core.models import Id
from samia.core.problems import not_found
from samia.ops import incidents, metrics, runbooks
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal, posted
from samia.web.render import zone_of
from samia.web.session import pages

router = pages("web", "admin")
# monitors follow incidents from their own console; these pages are the admins'
ADMIN_OPS = incidents.DECLARE_PROBE
OPS = f"{CONSOLE}/ops"
SEVERITIES = ("SEV1", "SEV2", "SEV3")
STATUSES = ("open", "mitigated", "resolved")
# CommonMark with tables; raw HTML in a runbook is shown as text, and markdown-it refuses
# javascript:, vbscript:, file: and data: links
MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def render_markdown(text: str) -> Markup:
    """A runbook as HTML: links to the API's runbook paths point at their console pages."""
    html = MARKDOWN.render(text)
    return Markup(re.sub(r'href="/admin/runbooks/', f'href="{OPS}/runbooks/', html))


def console_runbook(path: str) -> str:
    return path.replace("/admin/runbooks/", f"{OPS}/runbooks/", 1)


async def _ops(request: Request, ctx: Ctx, refusal: Refusal | None = None, form: dict[str, str] | None = None
               ) -> Response:
    cur = await ctx.conn.execute("select p.id::text, coalesce(nullif(trim(coalesce(p.first_name, '') || ' ' || "
                                 "coalesce(p.last_name, '')), ''), p.email::text), r.code from profiles p "
                                 "join roles r on r.id = p.role_id where r.code in ('monitor', 'admin', 'superadmin') "
                                 "and p.deleted_at is null order by r.code, 2 limit 200")
    staff = [{"id": i, "name": n, "role": r} for i, n, r in await cur.fetchall()]
    return console(request, ctx, "ops.html", incidents=await incidents.list_incidents(ctx.conn),
                   rota=await incidents.rota(ctx.conn), staff=staff, severities=SEVERITIES, refusal=refusal,
                   form=form or {"severity": "SEV3", "level": "1"})


@router.get(OPS, response_class=HTMLResponse)
async def ops_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_OPS)) -> Response:
    return await _ops(request, ctx)


@router.post(f"{OPS}/incidents", response_class=HTMLResponse)
async def declare(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_OPS)
                  ) -> Response:
    form = await posted(request)
    title, note = form.get("title", "").strip(), form.get("note", "").strip()[:2000] or None
    fields = {}
    if not 3 <= len(title) <= 200:
        fields["title"] = "title_length"
    if form.get("severity") not in SEVERITIES:
        fields["severity"] = "required"
    if fields:
        return await _ops(request, ctx, Refusal("validation_error", 422, fields), form)
    row, refusal = await act(ctx, lambda: incidents.declare_incident(ctx.conn, title, form["severity"], note))
    if refusal or row is None:
        return await _ops(request, ctx, refusal, form)
    return done(f"{OPS}/incidents/{row['id']}", "declared")


async def _incident(request: Request, ctx: Ctx, incident_id: int, refusal: Refusal | None = None) -> Response:
    row = await incidents.get_incident(ctx.conn, incident_id)
    return console(request, ctx, "incident.html", incident=row, statuses=STATUSES, refusal=refusal,
                   runbook_link=console_runbook)


@router.get(f"{OPS}/incidents/{{incident_id}}", response_class=HTMLResponse)
async def incident_page(incident_id: Id, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_OPS)
                        ) -> Response:
    return await _incident(request, ctx, incident_id)


@router.post(f"{OPS}/incidents/{{incident_id}}/ack", response_class=HTMLResponse)
async def ack(incident_id: Id, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_OPS)
              ) -> Response:
    _, refusal = await act(ctx, lambda: incidents.ack_incident(ctx.conn, incident_id))
    if refusal:
        return await _incident(request, ctx, incident_id, refusal)
    return done(f"{OPS}/incidents/{incident_id}", "acknowledged")


@router.post(f"{OPS}/incidents/{{incident_id}}/status", response_class=HTMLResponse)
async def set_status(incident_id: Id, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_OPS)
                     ) -> Response:
    form = await posted(request)
    if form.get("status") not in STATUSES:
        return await _incident(request, ctx, incident_id, Refusal("validation_error", 422, {"status": "required"}))
    note = form.get("note", "").strip()[:2000] or None
    _, refusal = await act(ctx, lambda: incidents.set_incident_status(ctx.conn, incident_id, form["status"], note))
    if refusal:
        return await _incident(request, ctx, incident_id, refusal)
    return done(f"{OPS}/incidents/{incident_id}", "status")


def _local(text: str, request: Request) -> dt.datetime | None:
    """A datetime-local field's value in the admin's own time zone."""
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=zone_of(request))
    except ValueError:
        return None


@router.post(f"{OPS}/rota", response_class=HTMLResponse)
async def add_shift(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=incidents.ROTA_PROBE)
                    ) -> Response:
    form = await posted(request)
    starts, ends = _local(form.get("starts_at", ""), request), _local(form.get("ends_at", ""), request)
    fields = {k: "invalid_date" for k, v in (("starts_at", starts), ("ends_at", ends)) if v is None}
    if form.get("level") not in ("1", "2", "3"):
        fields["level"] = "required"
    if not re.fullmatch(r"[0-9a-f-]{36}", form.get("user_id", "")):
        fields["user_id"] = "required"
    if fields or starts is None or ends is None:
        return await _ops(request, ctx, Refusal("validation_error", 422, fields), form)
    _, refusal = await act(ctx, lambda: incidents.add_shift(ctx.conn, int(form["level"]), form["user_id"], starts,
                                                            ends))
    if refusal:
        return await _ops(request, ctx, refusal, form)
    return done(f"{OPS}#rota", "shift")


# ---- runbooks and observability -------------------------------------------------------------

@router.get(f"{OPS}/runbooks", response_class=HTMLResponse)
async def runbooks_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=runbooks.ADMIN_READ)
                        ) -> Response:
    return console(request, ctx, "runbooks.html", runbooks=runbooks.list_runbooks(ctx.platform.settings),
                   current=None, body=None)


@router.get(f"{OPS}/runbooks/{{slug}}", response_class=HTMLResponse)
async def runbook_page(slug: str, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=runbooks.ADMIN_READ)
                       ) -> Response:
    if not re.fullmatch(r"[a-z0-9-]{1,60}", slug):
        raise not_found("runbook")
    book = runbooks.read_runbook(ctx.platform.settings, slug)
    return console(request, ctx, "runbooks.html", runbooks=runbooks.list_runbooks(ctx.platform.settings),
                   current=book, body=render_markdown(book["markdown"]))


def _chart(slo: dict[str, Any]) -> dict[str, Any]:
    """What the SVG draws: the share of the error budget left (0-100) and the error ratio
    against what the objective allows."""
    remaining = max(0.0, min(1.0, float(slo["budget_remaining"])))
    allowed = 1 - float(slo["objective"])
    spent = min(1.0, float(slo["error_ratio"]) / allowed) if allowed else 0.0
    return {**slo, "left_pct": round(remaining * 100), "spent_pct": round(spent * 100),
            "runbook_page": console_runbook(slo["runbook"])}


@router.get(f"{OPS}/observability", response_class=HTMLResponse)
async def observability(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)) -> Response:
    report = await metrics.observability_report(ctx.platform)
    return console(request, ctx, "observability.html", report=report, slos=[_chart(s) for s in report["slos"]])

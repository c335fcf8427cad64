"""The monitor's appeals: the submitted, in-review and decided appeals, opening one for review
and deciding it with a rationale. They go through the same moderation functions as the API, so
a second decision is refused ("already decided") and every step is audited the same way.
Clients never reach this page: the guard and the appeals table's policies both refuse them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.core.access import STAFF, STAFF_PROBE, Ctx, allow
from samia.core.models import Id
from samia.core.problems import AppError
from samia.moderation import service as moderation
from samia.web.forms import Refusal, attempt, posted
from samia.web.render import Translator, lang_of, render
from samia.web.session import pages

router = pages("floor")
STATUSES = ("submitted", "under_review", "decided")
DECISIONS = ("upheld", "overturned")


async def _appeals(request: Request, ctx: Ctx, status: str, refusal: Refusal | None = None,
                   form: dict[str, str] | None = None, decided: int | None = None) -> Response:
    errors = refusal.messages(Translator(lang_of(request))) if refusal and decided is None else {}
    return render(request, "floor/appeals.html", status=refusal.status if refusal else 200, role=ctx.role,
                  appeals=await moderation.list_appeals(ctx.conn, status), current=status, statuses=STATUSES,
                  decisions=DECISIONS, errors=errors, form=form or {}, decided=decided,
                  done=request.query_params.get("done"))


@router.get("/staff/appeals", response_class=HTMLResponse)
async def appeals(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    status = request.query_params.get("status", "submitted")
    return await _appeals(request, ctx, status if status in STATUSES else "submitted")


@router.post("/staff/appeals/{appeal_id}/open", response_class=HTMLResponse)
async def open_appeal(appeal_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)
                      ) -> Response:
    _, refusal = await attempt(ctx.conn, lambda: moderation.open_appeal(ctx.conn, appeal_id))
    if refusal:   # another monitor opened it first, or it is gone
        return await _appeals(request, ctx, "submitted", refusal)
    return RedirectResponse(f"/staff/appeals?status=under_review&done=opened#appeal-{appeal_id}", status_code=303)


async def _status(ctx: Ctx, appeal_id: int) -> str | None:
    try:
        return str((await moderation.one(ctx.conn, moderation.APPEAL_BY_ID, (appeal_id,), "appeal"))["status"])
    except AppError:
        return None


@router.post("/staff/appeals/{appeal_id}/resolve", response_class=HTMLResponse)
async def resolve_appeal(appeal_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)
                         ) -> Response:
    """Decide once. The loser of a race, or a repeated post, is told it was already decided."""
    form = await posted(request)
    decision, rationale = form.get("decision", ""), form.get(f"rationale-{appeal_id}", "").strip()
    fields = {**({f"decision-{appeal_id}": "required"} if decision not in DECISIONS else {}),
              **({f"rationale-{appeal_id}": "note_required"} if not 3 <= len(rationale) <= 2000 else {})}
    if fields:
        return await _appeals(request, ctx, "under_review", Refusal("required", 422, fields), form)
    _, refusal = await attempt(ctx.conn, lambda: moderation.decide_appeal(ctx.conn, appeal_id, decision, rationale))
    if refusal:
        if refusal.code == "conflict" and await _status(ctx, appeal_id) == "decided":
            return await _appeals(request, ctx, "decided", refusal, decided=appeal_id)
        return await _appeals(request, ctx, "under_review", refusal, form)
    return RedirectResponse(f"/staff/appeals?status=decided&done={decision}#appeal-{appeal_id}", status_code=303)

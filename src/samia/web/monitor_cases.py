"""The monitor's cases and live calls: claim and resolve a case, block a user (duration, reason,
evidence) after an explicit confirmation step, drop a live call after one too, and read the
safety flags raised from transcripts (redacted text only). Every action goes through the same
feature functions as the API, so it is audited the same way."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.calls import service as calls
from samia.core.access import STAFF, STAFF_PROBE, Ctx, allow
from samia.core.models import Id
from samia.core.problems import AppError
from samia.moderation import service as moderation
from samia.profiles.service import get_profile
from samia.web.forms import Refusal, attempt, posted
from samia.web.render import Translator, lang_of, render
from samia.web.session import pages

router = pages("floor")
DURATIONS = ("60", "1440", "10080", "43200", "")   # an hour, a day, a week, 30 days, until an admin lifts it


def _errors(request: Request, refusal: Refusal | None) -> dict[str, str]:
    return refusal.messages(Translator(lang_of(request))) if refusal else {}


# ---- cases -------------------------------------------------------------------------------

async def _cases(request: Request, ctx: Ctx, refusal: Refusal | None = None, form: dict[str, str] | None = None
                 ) -> Response:
    rows = await moderation.list_cases(ctx.conn, limit=100)
    return render(request, "floor/cases.html", status=refusal.status if refusal else 200, role=ctx.role, cases=rows,
                  me=ctx.user_id, errors=_errors(request, refusal), form=form or {},
                  done=request.query_params.get("done"))


@router.get("/staff/cases", response_class=HTMLResponse)
async def cases(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    return await _cases(request, ctx)


@router.post("/staff/cases/{case_id}/claim", response_class=HTMLResponse)
async def claim(case_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    _, refusal = await attempt(ctx.conn, lambda: moderation.claim_case(ctx.conn, case_id))
    if refusal:
        return await _cases(request, ctx, refusal)
    return RedirectResponse(f"/staff/cases?done=claimed#case-{case_id}", status_code=303)


@router.post("/staff/cases/{case_id}/resolve", response_class=HTMLResponse)
async def resolve(case_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)
                  ) -> Response:
    form = await posted(request)
    outcome, note = form.get("outcome", ""), form.get(f"note-{case_id}", "").strip()
    if outcome not in ("resolved", "dismissed") or not 3 <= len(note) <= 2000:
        return await _cases(request, ctx, Refusal("note_required", 422, {f"note-{case_id}": "note_required"}), form)
    _, refusal = await attempt(ctx.conn, lambda: moderation.resolve_case(ctx.conn, case_id, outcome, note))
    if refusal:
        return await _cases(request, ctx, refusal, form)
    return RedirectResponse(f"/staff/cases?done={outcome}", status_code=303)


# ---- blocking, with a confirmation step ---------------------------------------------------------

async def _who(ctx: Ctx, user_id: str) -> dict[str, Any] | None:
    try:
        return await get_profile(ctx.conn, user_id)
    except AppError:   # an unknown or hidden profile: the form says so, and the block is refused
        return None


def _block_fields(form: dict[str, str]) -> tuple[dict[str, Any] | None, Refusal | None]:
    fields: dict[str, str] = {}
    try:
        user = str(uuid.UUID(form.get("user", "")))
    except ValueError:
        user = ""
        fields["user"] = "not_found"
    if form.get("reason") not in moderation.REASONS:
        fields["reason"] = "required"
    if form.get("duration", "") not in DURATIONS:
        fields["duration"] = "required"
    note = form.get("note", "").strip()
    if not 3 <= len(note) <= 2000:
        fields["note"] = "note_required"
    evidence = [line.strip()[:200] for line in form.get("evidence", "").splitlines() if line.strip()][:20]
    case = form.get("case", "")
    if fields:
        return None, Refusal("required", 422, fields)
    return {"user_id": user, "reason": form["reason"], "note": note, "evidence": evidence,
            "duration_minutes": int(form["duration"]) if form.get("duration") else None,
            "case_id": int(case) if case.isdigit() else None}, None


@router.get("/staff/block", response_class=HTMLResponse)
async def block_form(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=moderation.BLOCK_PROBE)
                     ) -> Response:
    form = {"user": request.query_params.get("user", ""), "case": request.query_params.get("case", ""),
            "duration": "1440"}
    return render(request, "floor/block.html", role=ctx.role, form=form, step="form", reasons=moderation.REASONS,
                  durations=DURATIONS, who=await _who(ctx, form["user"]) if form["user"] else None)


@router.post("/staff/block", response_class=HTMLResponse)
async def block(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=moderation.BLOCK_PROBE)) -> Response:
    """First post: check the form and show what will happen. Second post (confirm=yes): block."""
    form = await posted(request)
    fields, refusal = _block_fields(form)
    who = await _who(ctx, form.get("user", "")) if fields else None
    if fields and who is None:
        refusal = Refusal("not_found", 404, {"user": "not_found"})
    context: dict[str, Any] = {"form": form, "reasons": moderation.REASONS, "durations": DURATIONS, "who": who}
    if refusal or fields is None:
        return render(request, "floor/block.html", status=refusal.status if refusal else 422, role=ctx.role,
                      step="form", errors=_errors(request, refusal), **context)
    if form.get("confirm") != "yes" or form.get("edit"):
        return render(request, "floor/block.html", role=ctx.role, step="form" if form.get("edit") else "confirm",
                      **context)
    _, refusal = await attempt(ctx.conn, lambda: moderation.block_user(ctx.conn, **fields))
    if refusal:
        return render(request, "floor/block.html", status=refusal.status, role=ctx.role, step="form",
                      errors=_errors(request, refusal), **context)
    return RedirectResponse("/staff/cases?done=blocked", status_code=303)


# ---- live calls and safety flags ---------------------------------------------------------------

async def _calls(request: Request, ctx: Ctx, refusal: Refusal | None = None,
                 joined: dict[str, Any] | None = None) -> Response:
    return render(request, "floor/calls.html", status=refusal.status if refusal else 200, role=ctx.role,
                  calls=await calls.live_calls(ctx.conn), flags=await calls.recent_flags(ctx.conn, 30),
                  reasons=moderation.REASONS, joined=joined,
                  errors=_errors(request, refusal), done=request.query_params.get("done"))


@router.get("/staff/calls", response_class=HTMLResponse)
async def live(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    return await _calls(request, ctx)


@router.post("/staff/calls/{call_id}/join", response_class=HTMLResponse)
async def join(call_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    """Listen in, muted and unannounced (the API's join); the page shows what the provider answered."""
    joined, refusal = await attempt(ctx.conn, lambda: calls.join_silent(ctx, call_id))
    return await _calls(request, ctx, refusal, joined)


@router.post("/staff/calls/{call_id}/drop", response_class=HTMLResponse)
async def drop(call_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    """First post: a confirmation page that asks for the note. Second post (confirm=yes): drop."""
    form = await posted(request)
    call = await calls.fetch_call(ctx.conn, call_id)
    note = form.get("note", "").strip()
    if form.get("confirm") != "yes" or not 3 <= len(note) <= 2000:
        refusal = Refusal("note_required", 422, {"note": "note_required"}) if form.get("confirm") == "yes" else None
        return render(request, "floor/drop.html", status=422 if refusal else 200, role=ctx.role, call=call,
                      form=form, errors=_errors(request, refusal))
    _, refusal = await attempt(ctx.conn, lambda: calls.drop_call(ctx, call_id, note))
    if refusal:
        return await _calls(request, ctx, refusal)
    return RedirectResponse("/staff/calls?done=dropped", status_code=303)


@router.get("/staff/calls/{call_id}/safety", response_class=HTMLResponse)
async def safety(call_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    call = await calls.fetch_call(ctx.conn, call_id)
    return render(request, "floor/safety.html", role=ctx.role, call=call, safety=await calls.call_safety(ctx.conn,
                                                                                                         call_id))


@router.post("/staff/calls/{call_id}/flag", response_class=HTMLResponse)
async def flag(call_id: Id, request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    form = await posted(request)
    category = form.get("category", "")
    if category not in moderation.REASONS:
        return await _calls(request, ctx, Refusal("required", 422, {f"category-{call_id}": "required"}))
    _, refusal = await attempt(ctx.conn, lambda: calls.flag_call(ctx, call_id, category, None))
    if refusal:
        return await _calls(request, ctx, refusal)
    return RedirectResponse("/staff/calls?done=flagged", status_code=303)

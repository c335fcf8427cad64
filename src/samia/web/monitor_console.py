"""The monitor's console: the approval queue (the audio player and the order's context, approve
or reject with a reason; of two monitors deciding the same item at once, the second is told it
was already decided) and the emergency board (open sirens and their escalation trace)."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.calls import service as calls
from samia.core.access import STAFF, STAFF_PROBE, Ctx, allow
from samia.core.models import Id
from samia.media import service as media
from samia.orders import service as orders
from samia.readings import service as readings
from samia.web.cards import face
from samia.web.forms import Refusal, attempt, posted
from samia.web.render import Translator, lang_of, render
from samia.web.session import pages

router = pages("floor")
DECIDED = ("illegal_transition", "conflict")   # the item moved on under us: someone decided first


@router.get("/staff/review", response_class=HTMLResponse)
async def review_queue(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    rows = await orders.review_queue(ctx)
    return render(request, "floor/review_queue.html", role=ctx.role, orders=rows,
                  done=request.query_params.get("done"))


async def item(request: Request, ctx: Ctx, order_id: int, refusal: Refusal | None = None,
               form: dict[str, str] | None = None) -> Response:
    order = await orders.get_order(ctx, order_id)
    lang = lang_of(request)
    reading = await readings.get_reading(ctx.conn, order["reading_id"]) if order["reading_id"] else None
    if reading:
        for p in reading["positions"]:
            p["face"] = face(p["card"], lang) if p["card"] else None
    audio = sha = None
    if order["output_media_id"]:
        audio, _, sha = await media.issue_url(ctx.conn, ctx.platform.settings, ctx.role, order["output_media_id"])
    decided = refusal is not None and refusal.code in DECIDED
    errors = {} if decided or refusal is None else refusal.messages(Translator(lang))
    return render(request, "floor/review_item.html", status=refusal.status if refusal else 200, role=ctx.role,
                  order=order, reading=reading, audio=audio, sha=sha, errors=errors, form=form or {}, decided=decided)


@router.get("/staff/review/{order_id}", response_class=HTMLResponse)
async def review_item(order_id: Id, request: Request,
                      ctx: Ctx = allow(*STAFF, cookie=True, readonly=False, probe=STAFF_PROBE)) -> Response:
    return await item(request, ctx, order_id)


@router.post("/staff/review/{order_id}/approve", response_class=HTMLResponse)
async def approve(order_id: Id, request: Request,
                  ctx: Ctx = allow(*STAFF, cookie=True, probe=orders.APPROVE_PROBE)) -> Response:
    """Approve the file under review and deliver it. The loser of a race changes nothing and
    is told the item was already decided."""
    _, refusal = await attempt(ctx.conn, lambda: orders.approve(ctx, order_id))
    if refusal:
        return await item(request, ctx, order_id, refusal)
    return RedirectResponse(f"/staff/review?done=approved&order={order_id}", status_code=303)


@router.post("/staff/review/{order_id}/reject", response_class=HTMLResponse)
async def reject(order_id: Id, request: Request,
                 ctx: Ctx = allow(*STAFF, cookie=True, probe=orders.REJECT_PROBE)) -> Response:
    form = await posted(request)
    reason = form.get("reason", "").strip()
    if not 3 <= len(reason) <= 2000:
        return await item(request, ctx, order_id, Refusal("reason_required", 422, {"reason": "reason_required"}), form)
    _, refusal = await attempt(ctx.conn, lambda: orders.reject(ctx, order_id, reason))
    if refusal:
        return await item(request, ctx, order_id, refusal, form)
    return RedirectResponse(f"/staff/review?done=rejected&order={order_id}", status_code=303)


# ---- the emergency board -------------------------------------------------------------------

@router.get("/staff/emergency", response_class=HTMLResponse)
async def emergency_board(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    board = await calls.emergency_board(ctx.conn)
    for siren in board:
        for event in siren["trace"]:
            event["at"] = dt.datetime.fromisoformat(event["at"])
    return render(request, "floor/emergency.html", role=ctx.role, board=board, done=request.query_params.get("done"))


@router.post("/staff/emergency/{request_id}/ack", response_class=HTMLResponse)
async def acknowledge(request_id: Id, request: Request,
                      ctx: Ctx = allow(*STAFF, cookie=True, probe=STAFF_PROBE)) -> Response:
    _, refusal = await attempt(ctx.conn, lambda: calls.acknowledge_emergency(ctx, request_id))
    return RedirectResponse(f"/staff/emergency?done={'decided' if refusal else 'acknowledged'}", status_code=303)

"""The reader's console: the queue (golden first, with the time left on each clock), the order
workspace (the question, the cards drawn, the cup's photos, the natal chart as a wheel and a
table, the assistant's internal drafts), recording or uploading the audio, listening back and
submitting it; and the ringing overlay of an emergency call, polled every few seconds."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from samia.calls import service as calls
from samia.core.access import Ctx, allow
from samia.core.models import Id
from samia.media import service as media
from samia.orders import service as orders
from samia.readings import service as readings
from samia.web.cards import face
from samia.web.floor_chart import wheel
from samia.web.forms import Refusal, attempt
from samia.web.headers import PAGE_HEADERS
from samia.web.render import Translator, lang_of, render
from samia.web.session import pages

router = pages("floor")
# the workspace records from the microphone (MediaRecorder); every other page keeps it off
MIC_ALLOWED = {"Permissions-Policy": PAGE_HEADERS["Permissions-Policy"].replace("microphone=()", "microphone=(self)")}


@router.get("/staff/queue", response_class=HTMLResponse)
async def queue(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=orders.READER_PROBE)) -> Response:
    rows = await orders.reader_queue(ctx)
    return render(request, "floor/queue.html", role=ctx.role, orders=rows)


async def _urls(ctx: Ctx, media_ids: list[int]) -> list[str]:
    return [(await media.issue_url(ctx.conn, ctx.platform.settings, ctx.role, m))[0] for m in media_ids]


async def workspace(request: Request, ctx: Ctx, order_id: int, refusal: Refusal | None = None) -> Response:
    order = await orders.get_order(ctx, order_id)   # RLS: an order not assigned to the reader is a 404
    lang = lang_of(request)
    reading = await readings.get_reading(ctx.conn, order["reading_id"]) if order["reading_id"] else None
    if reading:
        for p in reading["positions"]:
            p["face"] = face(p["card"], lang) if p["card"] else None
    photos = await _urls(ctx, order["photo_media_ids"])
    audio = (await _urls(ctx, [order["output_media_id"]]))[0] if order["output_media_id"] else None
    chart = order.get("chart")
    drafts = await readings.list_drafts(ctx.conn, order_id)
    errors = refusal.messages(Translator(lang)) if refusal else {}
    response = render(request, "floor/workspace.html", status=refusal.status if refusal else 200, role=ctx.role,
                      order=order, reading=reading, photos=photos, audio=audio, chart=chart,
                      wheel=wheel(chart) if chart else None, drafts=drafts, errors=errors,
                      done=request.query_params.get("done"))
    response.headers.update(MIC_ALLOWED)
    return response


@router.get("/staff/orders/{order_id}", response_class=HTMLResponse)
async def order_page(order_id: Id, request: Request,
                     ctx: Ctx = allow("reader", cookie=True, readonly=False, probe=orders.READER_PROBE)) -> Response:
    return await workspace(request, ctx, order_id)


def _back(order_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/staff/orders/{order_id}?done={done}#work", status_code=303)


@router.post("/staff/orders/{order_id}/start", response_class=HTMLResponse)
async def start(order_id: Id, request: Request,
                ctx: Ctx = allow("reader", cookie=True, probe=orders.START_PROBE)) -> Response:
    _, refusal = await attempt(ctx.conn, lambda: orders.move(ctx, order_id, "in_progress"))
    return await workspace(request, ctx, order_id, refusal) if refusal else _back(order_id, "started")


@router.post("/staff/orders/{order_id}/audio", response_class=HTMLResponse)
async def upload(order_id: Id, request: Request,
                 ctx: Ctx = allow("reader", cookie=True, probe=orders.OUTPUT_PROBE)) -> Response:
    """The recording (made in the page or chosen from a file), checked like the API's upload."""
    file = (await request.form()).get("audio")
    if not (isinstance(file, UploadFile) and file.filename):
        return await workspace(request, ctx, order_id, Refusal("audio_required", 422, {"audio": "audio_required"}))
    data = await file.read()
    _, refusal = await attempt(ctx.conn, lambda: orders.upload_output(ctx, order_id, data))
    if refusal:
        refusal.fields = refusal.fields or {"audio": refusal.code}
        return await workspace(request, ctx, order_id, refusal)
    return _back(order_id, "uploaded")


@router.post("/staff/orders/{order_id}/submit", response_class=HTMLResponse)
async def submit(order_id: Id, request: Request,
                 ctx: Ctx = allow("reader", cookie=True, probe=orders.SUBMIT_PROBE)) -> Response:
    _, refusal = await attempt(ctx.conn, lambda: orders.move(ctx, order_id, "awaiting_approval"))
    if refusal:
        return await workspace(request, ctx, order_id, refusal)
    return RedirectResponse("/staff/queue?done=submitted", status_code=303)


@router.post("/staff/orders/{order_id}/draft", response_class=HTMLResponse)
async def draft(order_id: Id, request: Request,
                ctx: Ctx = allow("reader", cookie=True, rate="assist_draft", probe=readings.DRAFT_PROBE)) -> Response:
    _, refusal = await attempt(ctx.conn, lambda: readings.create_draft(ctx, order_id))
    return await workspace(request, ctx, order_id, refusal) if refusal else _back(order_id, "drafted")


# ---- the ringing overlay -------------------------------------------------------------------

@router.get("/staff/ring", response_class=HTMLResponse)
async def ring(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=calls.ANSWER_PROBE)) -> Response:
    """What rings for this reader now: the open sirens (readers see the ringing ones only). The
    console polls this every few seconds; an empty answer takes the overlay down."""
    sirens = await calls.open_emergencies(ctx.conn)
    return render(request, "floor/ring.html", role=ctx.role, sirens=sirens[:1])


@router.post("/staff/emergency/{request_id}/answer", response_class=HTMLResponse)
async def answer(request_id: Id, request: Request,
                 ctx: Ctx = allow("reader", cookie=True, probe=calls.ANSWER_PROBE)) -> Response:
    call: dict[str, Any] | None
    call, refusal = await attempt(ctx.conn, lambda: calls.answer_emergency(ctx, request_id))
    if refusal or call is None:
        # another reader was faster or staff acknowledged it (said calmly), or this reader cannot take it
        taken = refusal is None or refusal.code in ("conflict", "not_found")
        t = Translator(lang_of(request))
        reason = None if taken or refusal is None else t.maybe(f"floor.answer_error.{refusal.code}",
                                                               t.maybe(f"error.{refusal.code}", refusal.code))
        return render(request, "floor/answered.html", status=409, role=ctx.role, call=None, taken=taken,
                      reason=reason)
    return render(request, "floor/answered.html", role=ctx.role, call=call, taken=False, reason=None)

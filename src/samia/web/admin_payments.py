"""The admin console's payments: bank-transfer approvals with each proof shown inline from
its signed URL (a decline asks for a reason and a confirmation first; a transfer already
decided says so), the daily reconciliation with its mismatches, and where each payment method
is offered. Same functions as /admin/payments/… and /admin/finance/reconciliation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from samia.core.access import ADMINS, Ctx, allow
from samia.core.models import Id
from samia.core.problems import AppError
from samia.finance import service as finance
from samia.media import service as media
from samia.payments import admin as payments
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal, posted
from samia.web.session import pages

router = pages("web", "admin")
PAYMENTS = f"{CONSOLE}/payments"
COUNTRIES = re.compile(r"[A-Z]{2}")


async def _with_proofs(ctx: Ctx, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each transfer with a fresh signed URL for its proof (issuing one is audited)."""
    out = []
    for row in rows:
        proof = None
        if row["proof_media_id"]:
            url, _, _ = await media.issue_url(ctx.conn, ctx.platform.settings, ctx.role, row["proof_media_id"])
            cur = await ctx.conn.execute("select content_type from media_assets where id = %s",
                                         (row["proof_media_id"],))
            kind = await cur.fetchone()
            proof = {"url": url, "image": bool(kind and str(kind[0]).startswith("image/"))}
        out.append({**row, "proof": proof})
    return out


async def _transfers(request: Request, ctx: Ctx, refusal: Refusal | None = None) -> Response:
    rows = await _with_proofs(ctx, await payments.transfer_queue(ctx.conn))
    return console(request, ctx, "transfers.html", transfers=rows, refusal=refusal)


@router.get(PAYMENTS, response_class=HTMLResponse)
async def transfers_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, readonly=False,
                                                            probe=payments.TRANSFERS_PROBE)) -> Response:
    return await _transfers(request, ctx)


@router.post(f"{PAYMENTS}/{{payment_id}}/approve", response_class=HTMLResponse)
async def approve(payment_id: Id, request: Request,
                  ctx: Ctx = allow(*ADMINS, cookie=True, probe=payments.TRANSFERS_PROBE)) -> Response:
    _, refusal = await act(ctx, lambda: payments.approve_transfer(ctx, payment_id))
    if refusal:
        return await _transfers(request, ctx, refusal)
    return done(PAYMENTS, "approved")


async def _decline_form(request: Request, ctx: Ctx, payment_id: int, form: dict[str, str] | None = None,
                        refusal: Refusal | None = None) -> Response:
    row = next((r for r in await payments.transfer_queue(ctx.conn) if r["id"] == payment_id), None)
    if row is None and refusal is None:
        raise AppError(404, "not_found")
    return console(request, ctx, "transfer_decline.html", transfer=row, payment_id=payment_id, form=form,
                   refusal=refusal)


@router.get(f"{PAYMENTS}/{{payment_id}}/decline", response_class=HTMLResponse)
async def decline_form(payment_id: Id, request: Request,
                       ctx: Ctx = allow(*ADMINS, cookie=True, probe=payments.TRANSFERS_PROBE)) -> Response:
    """The confirmation step: the reason the client will read, and a box to tick."""
    return await _decline_form(request, ctx, payment_id)


@router.post(f"{PAYMENTS}/{{payment_id}}/decline", response_class=HTMLResponse)
async def decline(payment_id: Id, request: Request,
                  ctx: Ctx = allow(*ADMINS, cookie=True, probe=payments.TRANSFERS_PROBE)) -> Response:
    form = await posted(request)
    reason = form.get("reason", "").strip()
    fields = {}
    if not 3 <= len(reason) <= 500:
        fields["reason"] = "reason_required"
    if form.get("confirm") != "yes":
        fields["confirm"] = "confirm_required"
    if fields:
        return await _decline_form(request, ctx, payment_id, form, Refusal("validation_error", 422, fields))
    _, refusal = await act(ctx, lambda: payments.decline_transfer(ctx, payment_id, reason))
    if refusal:
        return await _decline_form(request, ctx, payment_id, form, refusal)
    return done(PAYMENTS, "declined")


# ---- reconciliation ---------------------------------------------------------------------------

@router.get(f"{PAYMENTS}/reconciliation", response_class=HTMLResponse)
async def reconciliation(request: Request, date: Annotated[dt.date | None, Query()] = None,
                         ctx: Ctx = allow(*ADMINS, cookie=True, probe=finance.PROBE)) -> Response:
    day = date or finance.default_day()
    report = await finance.reconciliation(ctx.conn, day)
    return console(request, ctx, "reconciliation.html", report=report, day=day,
                   previous=day - dt.timedelta(days=1), following=day + dt.timedelta(days=1))


# ---- payment methods per country --------------------------------------------------------------

async def _methods(request: Request, ctx: Ctx, refusal: Refusal | None = None,
                   form: dict[str, str] | None = None) -> Response:
    return console(request, ctx, "methods.html", methods=await payments.method_policies(ctx.conn), refusal=refusal,
                   form=form)


@router.get(f"{PAYMENTS}/methods", response_class=HTMLResponse)
async def methods_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=payments.METHODS_PROBE)
                       ) -> Response:
    return await _methods(request, ctx)


@router.post(f"{PAYMENTS}/methods/{{code}}", response_class=HTMLResponse)
async def save_method(code: str, request: Request,
                      ctx: Ctx = allow(*ADMINS, cookie=True, probe=payments.METHODS_PROBE)) -> Response:
    form = await posted(request)
    listed = form.get("countries", "").upper().replace(",", " ").split()
    if code not in payments.METHODS or any(not COUNTRIES.fullmatch(c) for c in listed) or len(listed) > 250:
        return await _methods(request, ctx, Refusal("validation_error", 422, {f"{code}-countries": "bad_countries"}),
                              form)
    _, refusal = await act(ctx, lambda: payments.set_method_policy(
        ctx.conn, code, enabled=form.get("enabled") == "yes", all_countries=form.get("scope") == "all",
        countries=listed))
    if refusal:
        return await _methods(request, ctx, refusal, form)
    return done(f"{PAYMENTS}/methods", "saved")

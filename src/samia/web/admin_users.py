"""The admin console's people and work: find users, edit them and their role within the M45
guardrails (stated on the page, enforced by the database), block one after a confirmation,
lift a block; and assign waiting orders to a reader, or to the least-loaded one. The same
functions as /admin/users, /monitor/block-user and /orders/{id}/assign."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from samia.core.access import ADMINS, Ctx, allow
from samia.core.models import Id
from samia.moderation import service as moderation
from samia.orders import assignment
from samia.profiles.service import get_profile, update_profile
from samia.users import service as users
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal, posted
from samia.web.session import pages

router = pages("web", "admin")
USERS = f"{CONSOLE}/users"
ORDERS = f"{CONSOLE}/orders"
Role = Annotated[str | None, Query(pattern=r"^(superadmin|admin|reader|monitor|client)?$")]


@router.get(USERS, response_class=HTMLResponse)
async def users_page(request: Request, q: Annotated[str | None, Query(max_length=100)] = None, role: Role = None,
                     after: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
                     ctx: Ctx = allow(*ADMINS, cookie=True, probe=users.EDIT_PROBE)) -> Response:
    found = await users.find_users(ctx.conn, role=role or None, query=q, after=after, limit=50)
    return console(request, ctx, "users.html", found=found, form={"q": q or "", "role": role or ""},
                   roles=users.ROLES)


async def _user(request: Request, ctx: Ctx, user_id: str, refusal: Refusal | None = None,
                form: dict[str, str] | None = None, template: str = "user.html") -> Response:
    profile = await get_profile(ctx.conn, user_id)
    # an admin may not grant the superadmin role: the form offers only what the database allows
    roles = users.ROLES if ctx.role == "superadmin" else tuple(r for r in users.ROLES if r != "superadmin")
    return console(request, ctx, template, user=profile, blocks=await users.blocks_of(ctx.conn, user_id),
                   roles=roles, reasons=moderation.REASONS, refusal=refusal,
                   form=form or {"first_name": profile["first_name"] or "", "last_name": profile["last_name"] or "",
                                 "role": profile["role"]})


@router.get(f"{USERS}/{{user_id}}", response_class=HTMLResponse)
async def user_page(user_id: uuid.UUID, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True,
                                                                         probe=users.EDIT_PROBE)) -> Response:
    return await _user(request, ctx, str(user_id))


@router.post(f"{USERS}/{{user_id}}", response_class=HTMLResponse)
async def save_user(user_id: uuid.UUID, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True,
                                                                         probe=users.EDIT_PROBE)) -> Response:
    form = await posted(request)
    changes: dict[str, Any] = {k: form[k].strip() for k in ("first_name", "last_name") if form.get(k, "").strip()}
    if form.get("role") in users.ROLES:
        changes["role"] = form["role"]
    too_long = {k: "too_long" for k, v in changes.items() if len(str(v)) > 100}
    if too_long:
        return await _user(request, ctx, str(user_id), Refusal("too_long", 422, too_long), form)
    _, refusal = await act(ctx, lambda: update_profile(ctx.conn, str(user_id), changes))
    if refusal:
        return await _user(request, ctx, str(user_id), refusal, form)
    return done(f"{USERS}/{user_id}", "user")


@router.get(f"{USERS}/{{user_id}}/block", response_class=HTMLResponse)
async def block_form(user_id: uuid.UUID, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True,
                                                                          probe=users.EDIT_PROBE)) -> Response:
    """The confirmation step: reason, duration, evidence, and a box to tick."""
    return await _user(request, ctx, str(user_id), form={"duration": "1440"}, template="user_block.html")


@router.post(f"{USERS}/{{user_id}}/block", response_class=HTMLResponse)
async def block(user_id: uuid.UUID, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True,
                                                                     probe=users.EDIT_PROBE)) -> Response:
    # monitors block too, from their own console; this page is the admins' (hence its probe)
    form = await posted(request)
    fields = {}
    if form.get("reason") not in moderation.REASONS:
        fields["reason"] = "required"
    duration = form.get("duration", "").strip()
    minutes = int(duration) if duration.isdigit() else None
    if duration and (minutes is None or not 5 <= minutes <= 525_600):
        fields["duration"] = "invalid_duration_block"
    note = form.get("note", "").strip()
    if not 3 <= len(note) <= 2000:
        fields["note"] = "reason_required"
    evidence = [line.strip()[:200] for line in form.get("evidence", "").splitlines() if line.strip()][:20]
    if form.get("confirm") != "yes":
        fields["confirm"] = "confirm_required"
    if fields:
        return await _user(request, ctx, str(user_id), Refusal("validation_error", 422, fields), form,
                           "user_block.html")
    _, refusal = await act(ctx, lambda: moderation.block_user(
        ctx.conn, str(user_id), reason=form["reason"], note=note, evidence=evidence, duration_minutes=minutes))
    if refusal:
        return await _user(request, ctx, str(user_id), refusal, form, "user_block.html")
    return done(f"{USERS}/{user_id}", "blocked")


@router.post(f"{USERS}/{{user_id}}/unblock", response_class=HTMLResponse)
async def unblock(user_id: uuid.UUID, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True,
                                                                       probe=moderation.UNBLOCK_PROBE)) -> Response:
    form = await posted(request)
    note = form.get("lift_note", "").strip()
    if not 3 <= len(note) <= 2000:
        return await _user(request, ctx, str(user_id), Refusal("validation_error", 422,
                                                               {"lift_note": "reason_required"}), form)
    _, refusal = await act(ctx, lambda: moderation.unblock_user(ctx.conn, str(user_id), note))
    if refusal:
        return await _user(request, ctx, str(user_id), refusal, form)
    return done(f"{USERS}/{user_id}", "unblocked")


# ---- orders waiting for a reader ------------------------------------------------------------

async def _orders(request: Request, ctx: Ctx, refusal: Refusal | None = None) -> Response:
    return console(request, ctx, "orders.html", orders=await assignment.unassigned(ctx),
                   readers=await assignment.readers_with_load(ctx.conn), refusal=refusal)


@router.get(ORDERS, response_class=HTMLResponse)
async def orders_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=assignment.ASSIGN_PROBE)
                      ) -> Response:
    return await _orders(request, ctx)


@router.post(f"{ORDERS}/{{order_id}}/assign", response_class=HTMLResponse)
async def assign(order_id: Id, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True,
                                                                  probe=assignment.ASSIGN_PROBE)) -> Response:
    form = await posted(request)
    reader = form.get("reader", "")
    try:
        chosen = str(uuid.UUID(reader)) if reader != "least_loaded" else None
    except ValueError:
        return await _orders(request, ctx, Refusal("validation_error", 422, {f"reader-{order_id}": "required"}))
    _, refusal = await act(ctx, lambda: assignment.assign(ctx, order_id, chosen))
    if refusal:
        return await _orders(request, ctx, refusal)
    return done(ORDERS, "assigned")

"""The super admin's page: everything an admin has, plus creating admins, deleting a user
(after a confirmation) and rotating the encrypted config store's secrets (after a
confirmation). The database admits the superadmin alone to each; the same functions as
POST/DELETE /admin/users and /admin/secrets…"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from samia.core.access import Ctx, allow
from samia.ops import secrets
from samia.profiles.service import get_profile
from samia.users import service as users
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal, posted, required
from samia.web.session import pages

router = pages("web", "admin")
SUPER = f"{CONSOLE}/super"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


async def _page(request: Request, ctx: Ctx, refusal: Refusal | None = None, form: dict[str, str] | None = None
                ) -> Response:
    return console(request, ctx, "super.html", secrets=await secrets.secret_names(ctx.conn), refusal=refusal,
                   form=form or {"role": "admin"})


@router.get(SUPER, response_class=HTMLResponse)
async def super_page(request: Request, ctx: Ctx = allow("superadmin", cookie=True, probe=secrets.SUPER)
                     ) -> Response:
    return await _page(request, ctx)


@router.post(f"{SUPER}/admins", response_class=HTMLResponse)
async def create_admin(request: Request, ctx: Ctx = allow("superadmin", cookie=True, probe=secrets.SUPER)
                       ) -> Response:
    """Staff accounts from the owner's page (the database also lets admins create non-owner
    accounts through the API; this page is the owner's, hence its probe)."""
    form = await posted(request)
    refusal = required(form, "email", "password", "first_name", "last_name", "dob")
    fields = dict(refusal.fields) if refusal else {}
    if form.get("email") and not EMAIL.match(form["email"]):
        fields["email"] = "invalid_email"
    if form.get("password") and not 10 <= len(form["password"]) <= 128:
        fields["password"] = "password_length"
    try:
        dob = dt.date.fromisoformat(form.get("dob", ""))
    except ValueError:
        dob = None
        fields.setdefault("dob", "invalid_date")
    role = form.get("role") if form.get("role") in ("admin", "monitor", "reader") else None
    if role is None:
        fields["role"] = "required"
    if fields or dob is None or role is None:
        form.pop("password", None)
        return await _page(request, ctx, Refusal("validation_error", 422, fields), form)
    _, refusal = await act(ctx, lambda: users.create_user(
        ctx.conn, ctx.platform, email=form["email"].strip(), password=form["password"], role=role,
        first_name=form["first_name"].strip()[:100], last_name=form["last_name"].strip()[:100], dob=dob))
    if refusal:
        form.pop("password", None)
        return await _page(request, ctx, refusal, form)
    return done(SUPER, "created")


@router.post(f"{SUPER}/secrets/rotate", response_class=HTMLResponse)
async def rotate(request: Request, ctx: Ctx = allow("superadmin", cookie=True, probe=secrets.SUPER)) -> Response:
    """Re-seal every stored secret under the newest master key, and/or store a new value for
    one; only after the confirmation box is ticked."""
    form = await posted(request)
    name, value = form.get("name", "").strip() or None, form.get("value", "") or None
    fields = {}
    if form.get("confirm") != "yes":
        fields["confirm"] = "confirm_required"
    if (name is None) != (value is None) or (name and not NAME.match(name)) or (value and len(value) > 4096):
        fields["name"] = "secret_pair"
    if fields:
        return await _page(request, ctx, Refusal("validation_error", 422, fields), {"name": name or ""})
    _, refusal = await act(ctx, lambda: secrets.rotate_secrets(ctx, name, value, reencrypt=True))
    if refusal:
        return await _page(request, ctx, refusal, {"name": name or ""})
    return done(SUPER, "rotated")


async def _delete_form(request: Request, ctx: Ctx, user_id: str, refusal: Refusal | None = None) -> Response:
    return console(request, ctx, "user_delete.html", user=await get_profile(ctx.conn, user_id), refusal=refusal)


@router.get(f"{SUPER}/users/{{user_id}}/delete", response_class=HTMLResponse)
async def delete_form(user_id: uuid.UUID, request: Request,
                      ctx: Ctx = allow("superadmin", cookie=True, probe=users.DELETE_PROBE)) -> Response:
    return await _delete_form(request, ctx, str(user_id))


@router.post(f"{SUPER}/users/{{user_id}}/delete", response_class=HTMLResponse)
async def delete(user_id: uuid.UUID, request: Request,
                 ctx: Ctx = allow("superadmin", cookie=True, probe=users.DELETE_PROBE)) -> Response:
    form = await posted(request)
    if form.get("confirm") != "yes":
        return await _delete_form(request, ctx, str(user_id), Refusal("validation_error", 422,
                                                                      {"confirm": "confirm_required"}))
    _, refusal = await act(ctx, lambda: users.erase_user(ctx.conn, str(user_id)))
    if refusal:
        return await _delete_form(request, ctx, str(user_id), refusal)
    return done(f"{CONSOLE}/users", "deleted")

"""The admin console's frame and its first pages: the dashboard (the few numbers an admin on
duty acts on, with runbooks and observability a click away) and the catalogue (services and
their prices). Pages live under /admin (the landing) and /admin/console/… (never a path of the
JSON API); each is guarded by the same allow() and runs in the same RLS transaction as the
API, calling the same feature functions."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import psycopg
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.catalogue import service as catalogue
from samia.core.access import ADMINS, Ctx, allow
from samia.core.problems import AppError, from_db_error
from samia.ops import dashboard
from samia.web.forms import Refusal, attempt, posted
from samia.web.render import Translator, lang_of, render
from samia.web.session import pages

T = TypeVar("T")
router = pages("web", "admin")
HOME = "/admin"
CONSOLE = "/admin/console"


def console(request: Request, ctx: Ctx, template: str, *, refusal: Refusal | None = None,
            form: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A console page: the admin section's frame, the form's refusal as messages, and the
    `done` notice of the action that redirected here."""
    t = Translator(lang_of(request))
    errors = refusal.messages(t) if refusal else {}
    return render(request, f"admin/{template}", status=refusal.status if refusal else 200, role=ctx.role,
                  form=form or {}, errors=errors, done=request.query_params.get("done", ""),
                  age=lambda seconds: age(t, seconds), **context)


def age(t: Translator, seconds: float | None) -> str:
    """A duration as a person says it: 45 s, 12 min, 3 h, 2 days."""
    s = int(seconds or 0)
    if s < 90:
        return t("admin.age.seconds", n=s)
    if s < 90 * 60:
        return t("admin.age.minutes", n=round(s / 60))
    if s < 48 * 3600:
        return t("admin.age.hours", n=round(s / 3600))
    return t("admin.age.days", n=round(s / 86400))


async def act(ctx: Ctx, action: Callable[[], Awaitable[T]]) -> tuple[T | None, Refusal | None]:
    """`forms.attempt`, and for a refusal: the outside effects the attempt registered to undo
    (stored files) undone with its savepoint, and for one the database guards (a 403 the API
    would audit after its rollback) the same `access.denied` row."""
    audit: dict[str, Any] | None = None

    async def run() -> T:
        nonlocal audit
        try:
            return await action()
        except psycopg.Error as exc:
            err = from_db_error(exc)
            audit = err.audit
            raise err from exc
        except AppError as err:
            audit = err.audit
            raise

    undo_from = len(ctx.on_rollback)
    result, refusal = await attempt(ctx.conn, run)
    if refusal is not None:  # the savepoint is undone: so are the files the attempt stored
        while len(ctx.on_rollback) > undo_from:
            await ctx.on_rollback.pop()()
    if refusal is not None and audit:
        route = getattr(ctx.request.scope.get("route"), "path", ctx.request.url.path)
        meta = {"reason": refusal.code, "method": ctx.request.method, "route": route,
                **{k: v for k, v in audit.items() if k != "event"}}
        await ctx.conn.execute("select app.audit(%s, 'route', %s, %s)",
                               (audit.get("event", "access.denied"), route, json.dumps(meta)))
    return result, refusal


def done(url: str, what: str) -> RedirectResponse:
    path, _, fragment = url.partition("#")
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}done={what}" + (f"#{fragment}" if fragment else ""), status_code=303)


def to_minor(text: str) -> int | None:
    """"15", "15.5" or "15.50" (major units, at most 2 decimals) → 1550; None when not money."""
    try:
        amount = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None
    if amount < 0 or amount > 1_000_000 or amount != amount.quantize(Decimal("0.01")):
        return None
    return int(amount * 100)


def major(minor: int | None) -> str:
    return f"{(minor or 0) / 100:.2f}"


# ---- dashboard ----------------------------------------------------------------------------

@router.get(HOME, response_class=HTMLResponse)
async def dashboard_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=dashboard.PROBE)
                         ) -> Response:
    numbers = await dashboard.admin_numbers(ctx.conn)
    return console(request, ctx, "dashboard.html", n=numbers)


# ---- catalogue ----------------------------------------------------------------------------

async def _catalogue(request: Request, ctx: Ctx, refusal: Refusal | None = None,
                     form: dict[str, str] | None = None, failed: str = "") -> Response:
    services = await catalogue.admin_services(ctx.conn)
    return console(request, ctx, "catalogue.html", services=services, major=major, refusal=refusal, form=form,
                   failed=failed)


@router.get(f"{CONSOLE}/catalogue", response_class=HTMLResponse)
async def catalogue_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=catalogue.ADMIN_PROBE)
                         ) -> Response:
    return await _catalogue(request, ctx)


MONEY_FIELDS = ("price", "per_minute", "gold_surcharge")


@router.post(f"{CONSOLE}/catalogue/{{code}}", response_class=HTMLResponse)
async def save_service(code: str, request: Request,
                       ctx: Ctx = allow(*ADMINS, cookie=True, probe=catalogue.ADMIN_PROBE)) -> Response:
    """One service's price, rates, length and state (audited by the same trigger as the API's
    PUT /admin/services/{code}); the storefront shows the new price on its next request."""
    form = await posted(request)
    changes: dict[str, Any] = {"is_active": form.get("is_active") == "yes"}
    bad: dict[str, str] = {}
    for name in MONEY_FIELDS:
        if name in form:
            minor = to_minor(form[name])
            if minor is None:
                bad[f"{code}-{name}"] = "invalid_amount"
            else:
                changes[f"{name}_minor"] = minor
    if "duration" in form:
        if form["duration"].isdigit() and 5 <= int(form["duration"]) <= 480:
            changes["duration_minutes"] = int(form["duration"])
        else:
            bad[f"{code}-duration"] = "invalid_duration"
    if bad:
        return await _catalogue(request, ctx, Refusal("validation_error", 422, bad), form, code)
    _, refusal = await act(ctx, lambda: catalogue.update_service(ctx.conn, code, changes, None))
    if refusal:
        return await _catalogue(request, ctx, refusal, form, code)
    return done(f"{CONSOLE}/catalogue#svc-{code}", "saved")

"""The admin console's platform controls: feature flags (on/off and rollout %), rate limits,
providers (health and the on/off switch) and their monthly budgets. The same functions as
/admin/flags, /api/ops/rate_limits, /admin/providers and /admin/budget; every change is
audited there, and the next request reads it."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from samia.core.access import ADMIN_PROBE, ADMINS, Ctx, allow
from samia.ops import flags, incidents, limits, providers
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal, posted
from samia.web.session import pages

router = pages("web", "admin")
CONTROLS = f"{CONSOLE}/controls"
KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.]{1,63}$")


def _int(text: str | None, low: int, high: int) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and low <= int(text) <= high else None


async def _page(request: Request, ctx: Ctx, refusal: Refusal | None = None, form: dict[str, str] | None = None,
                failed: str = "") -> Response:
    return console(request, ctx, "controls.html", flags=await flags.all_flags(ctx.conn),
                   limits=(await limits.limits(ctx.conn))["limits"], providers=await providers.provider_health(ctx),
                   budgets=await incidents.budgets(ctx.conn), refusal=refusal, form=form, failed=failed)


@router.get(CONTROLS, response_class=HTMLResponse)
async def controls_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=flags.ADMIN)) -> Response:
    return await _page(request, ctx)


@router.post(f"{CONTROLS}/flags/{{key}}", response_class=HTMLResponse)
async def save_flag(key: str, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=flags.ADMIN)
                    ) -> Response:
    form = await posted(request)
    pct = _int(form.get("rollout_pct"), 0, 100)
    if not KEY.match(key) or pct is None:
        return await _page(request, ctx, Refusal("validation_error", 422, {f"flag-{key}": "invalid_percent"}), form,
                           key)
    _, refusal = await act(ctx, lambda: flags.update_flag(
        ctx.conn, key, {"enabled": form.get("enabled") == "yes", "rollout_pct": pct}))
    if refusal:
        return await _page(request, ctx, refusal, form, key)
    return done(f"{CONTROLS}#flags", "flag")


@router.post(f"{CONTROLS}/limits", response_class=HTMLResponse)
async def save_limit(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=limits.WRITE_PROBE)
                     ) -> Response:
    form = await posted(request)
    name, value = form.get("name", ""), _int(form.get("limit"), 1, 1_000_000)
    if value is None or not re.fullmatch(r"[a-z_]{1,60}", name):
        return await _page(request, ctx, Refusal("validation_error", 422, {f"limit-{name}": "invalid_limit"}), form)
    _, refusal = await act(ctx, lambda: limits.set_limits(ctx.conn, {f"rate_{name}": value}))
    if refusal:
        return await _page(request, ctx, refusal, form)
    return done(f"{CONTROLS}#limits", "limit")


@router.post(f"{CONTROLS}/providers/{{provider}}", response_class=HTMLResponse)
async def switch_provider(provider: str, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)
                          ) -> Response:
    form = await posted(request)
    reason = form.get("reason", "").strip()[:300] or None
    _, refusal = await act(ctx, lambda: providers.toggle(ctx, provider, enabled=form.get("enabled") == "yes",
                                                                  reason=reason))
    if refusal:
        return await _page(request, ctx, refusal, form)
    return done(f"{CONTROLS}#providers", "provider")


@router.post(f"{CONTROLS}/budgets/{{provider}}", response_class=HTMLResponse)
async def save_budget(provider: str, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)
                      ) -> Response:
    form = await posted(request)
    calls, pct = _int(form.get("monthly_calls"), 1, 10**12), _int(form.get("alert_pct"), 1, 100)
    if calls is None or pct is None or not re.fullmatch(r"[a-z_]{2,20}", provider):
        return await _page(request, ctx, Refusal("validation_error", 422, {f"budget-{provider}": "invalid_budget"}),
                           form)
    _, refusal = await act(ctx, lambda: incidents.set_provider_budget(
        ctx.conn, provider, calls, pct, form.get("degrade") == "yes"))
    if refusal:
        return await _page(request, ctx, refusal, form)
    return done(f"{CONTROLS}#budgets", "budget")

"""Outside providers: their health (configured, switched on, this process's circuit breaker)
and the admin switch (audited by trigger; every process reads it on each call)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from samia.config import Settings
from samia.core.access import ADMIN_PROBE, Ctx, allow
from samia.core.models import Input
from samia.core.problems import not_found

router = APIRouter(tags=["ops"])

Provider = Literal["stripe", "square", "usdt", "twilio", "email", "testcard", "ai"]


def configured(settings: Settings, provider: str) -> bool:
    return {
        "stripe": settings.stripe_api_key is not None,
        "square": settings.square_access_token is not None and settings.square_location_id is not None,
        "usdt": settings.usdt_api_key is not None,
        "twilio": bool(settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_verify_sid),
        "email": True,
        "testcard": settings.env != "prod",
        "ai": settings.ai_provider == "local" or settings.ai_api_key is not None,
    }.get(provider, False)


class ProviderHealth(BaseModel):
    provider: str
    enabled: bool
    reason: str | None
    configured: bool
    breaker: str
    failures: int
    updated_at: dt.datetime


class ToggleIn(Input):
    provider: Provider
    enabled: bool
    reason: Annotated[str, Field(max_length=300)] | None = None


async def provider_health(ctx: Ctx, only: str | None = None) -> list[dict[str, Any]]:
    cur = await ctx.conn.execute("select provider, enabled, reason, updated_at from provider_toggles "
                                 "where %(p)s::text is null or provider = %(p)s order by provider", {"p": only})
    out = []
    for provider, enabled, reason, updated in await cur.fetchall():
        b = ctx.platform.breakers.get(provider)
        out.append({"provider": provider, "enabled": enabled, "reason": reason, "updated_at": updated,
                    "configured": configured(ctx.platform.settings, provider),
                    "breaker": b.state if b else "closed", "failures": b.failures if b else 0})
    return out


@router.get("/admin/providers/health", response_model=list[ProviderHealth])
async def providers_health(ctx: Ctx = allow("admin", "superadmin", probe=ADMIN_PROBE)) -> list[dict[str, Any]]:
    return await provider_health(ctx)


@router.post("/admin/providers/toggle", response_model=ProviderHealth)
async def toggle_provider(body: ToggleIn, ctx: Ctx = allow("admin", "superadmin", probe=ADMIN_PROBE)) -> dict[str, Any]:
    """Switch a provider off (its calls answer 503 provider_disabled at once) or back on."""
    return await toggle(ctx, body.provider, enabled=body.enabled, reason=body.reason)


async def toggle(ctx: Ctx, provider: str, *, enabled: bool, reason: str | None) -> dict[str, Any]:
    """The admin switch (audited by trigger); every process reads it on each call."""
    cur = await ctx.conn.execute("update provider_toggles set enabled = %s, reason = %s where provider = %s "
                                 "returning provider", (enabled, reason, provider))
    if await cur.fetchone() is None:
        raise not_found("provider")
    return (await provider_health(ctx, provider))[0]

"""Health, readiness and the admin-tunable rate limits (seeds 004)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import Field

from samia.core.access import ANON_CLAIMS, PRELUDE, PUBLIC, Ctx, allow
from samia.db.migrate import available
from samia.ops import limits as rate_limits

router = APIRouter(tags=["ops"])


async def _state(ctx: Ctx) -> dict[str, Any]:
    platform = ctx.platform
    report: dict[str, Any] = {"status": "ok", "database": "ok", "migrations": {}, "providers": {}}
    try:
        async with platform.pool.connection(timeout=3) as conn:
            await conn.set_read_only(True)
            await conn.execute(PRELUDE, ("anon", ANON_CLAIMS, ctx.request.state.request_id))
            cur = await conn.execute("select name, checksum from app.migration_state()")
            applied: dict[str, str] = dict(await cur.fetchall())
            await conn.rollback()
    except Exception as e:
        report.update(status="unavailable", database=f"unreachable ({type(e).__name__})")
        return report
    code = {m.name: m.checksum for m in available()}
    pending = sorted(set(code) - set(applied))
    changed = sorted(n for n in code if n in applied and applied[n] != code[n])
    report["migrations"] = {"current": not pending and not changed, "applied": len(applied),
                            "pending": pending, "changed": changed}
    if pending or changed:
        report["status"] = "degraded"
    s = platform.settings
    report["providers"] = {
        "phone": {"provider": s.phone_provider,
                  "configured": (s.phone_provider == "local" and s.env != "prod")
                  or bool(s.twilio_account_sid and s.twilio_auth_token and s.twilio_verify_sid)},
        "email": {"provider": platform.mailer.name, "configured": True},
    }
    pool = platform.pool.get_stats()
    report["pool"] = {"size": pool.get("pool_size"), "available": pool.get("pool_available"),
                      "waiting": pool.get("requests_waiting", 0)}
    return report


@router.get("/api/ops/health")
async def health(ctx: Ctx = allow(PUBLIC, db=False)) -> JSONResponse:
    """Database reachable, migrations current, providers' state. 503 when not serving."""
    report = await _state(ctx)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


@router.get("/api/ops/ready")
async def ready(ctx: Ctx = allow(PUBLIC, db=False)) -> JSONResponse:
    """Readiness for a load balancer: 200 only with the database up and migrations current."""
    report = await _state(ctx)
    ok = report["status"] == "ok"
    return JSONResponse({"ready": ok, "status": report["status"]}, status_code=200 if ok else 503)


@router.get("/api/ops/live")
async def live(ctx: Ctx = allow(PUBLIC, db=False)) -> dict[str, bool]:
    """Liveness: the process answers. No dependencies."""
    return {"live": True}


@router.get("/api/ops/rate_limits")
async def get_rate_limits(ctx: Ctx = allow("admin", "superadmin", probe=rate_limits.READ_PROBE)) -> dict[str, Any]:
    return await rate_limits.limits(ctx.conn)


@router.post("/api/ops/rate_limits")
async def set_rate_limits(
    body: Annotated[dict[str, Annotated[int, Field(ge=1, le=1_000_000, strict=True)]],
                    Body(examples=[{"rate_orders_per_hour": 15, "rate_phone_verify_per_hour": 3}])],
    ctx: Ctx = allow("admin", "superadmin", probe=rate_limits.WRITE_PROBE),
) -> dict[str, Any]:
    """Keys as in seeds 004: `rate_<name>_per_hour` (sets an hourly window) or `rate_<name>`
    (keeps the limit's window). Every change is audited."""
    return await rate_limits.set_limits(ctx.conn, body)

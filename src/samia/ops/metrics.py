"""The metrics routes: Prometheus exposition (GET /metrics) and the admins' live SLO view.
The registry itself is core.metrics; this module fills the saturation gauges before each read."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from samia.core.access import ADMIN_PROBE, ANON_CLAIMS, PRELUDE, PUBLIC, Ctx, allow, machine_token
from samia.core.platform import Platform

router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=Response)
async def metrics(authorization: str | None = Header(None), ctx: Ctx = allow(PUBLIC, db=False)) -> Response:
    """Prometheus exposition (Bearer METRICS_TOKEN)."""
    platform: Platform = ctx.platform
    machine_token(authorization, platform.settings.metrics_token, "METRICS_TOKEN")
    await _collect(platform)
    return Response(generate_latest(platform.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _collect(platform: Platform) -> None:
    m = platform.metrics
    stats: dict[str, Any] = platform.pool.get_stats()
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    m.pool.labels("in_use").set(size - available)
    m.pool.labels("idle").set(available)
    m.pool.labels("waiting").set(stats.get("requests_waiting", 0))
    for name, breaker in platform.breakers.items():
        m.breaker_open.labels(name).set(0 if breaker.state == "closed" else 1)
    try:
        async with platform.pool.connection(timeout=2) as conn:
            await conn.set_read_only(True)
            await conn.execute(PRELUDE, ("anon", ANON_CLAIMS, f"metrics-{time.time_ns()}"))
            cur = await conn.execute("select status, jobs, oldest_seconds from app.queue_stats()")
            rows = {s: (n, age) for s, n, age in await cur.fetchall()}
            await conn.rollback()
    except Exception:
        return  # the pool gauges above still tell the story
    for status in ("todo", "doing"):
        n, age = rows.get(status, (0, 0.0))
        m.queue.labels(status).set(n)
        m.queue_age.labels(status).set(age)


@router.get("/admin/observability")
async def observability(ctx: Ctx = allow("admin", "superadmin", probe=ADMIN_PROBE)) -> dict[str, Any]:
    """SLO status and error budget from this API process's live metrics (since it started;
    the fleet-wide view is Prometheus with ops/prometheus/slo_rules.yml and ops/grafana/)."""
    return await observability_report(ctx.platform)


async def observability_report(platform: Platform) -> dict[str, Any]:
    from samia.ops import slo

    await _collect(platform)
    breakers = {name: b.state for name, b in platform.breakers.items()}
    return {"scope": "this API process since start", "slos": slo.status(platform.metrics.registry),
            "breakers": breakers, "dashboards": sorted(p.name for p in (slo.ROOT / "ops" / "grafana").glob("*.json"))}

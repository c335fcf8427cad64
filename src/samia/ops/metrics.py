"""Prometheus metrics: golden signals (latency, traffic, errors by route template and status
class, saturation of the pool and the job queue) and business counters. One registry per
process; for several uvicorn workers set PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode) or scrape each worker."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from samia.core.access import ANON_CLAIMS, PRELUDE, PUBLIC, Ctx, allow, machine_token
from samia.ops.providers import ADMIN

if TYPE_CHECKING:
    from samia.app import Platform

router = APIRouter(tags=["ops"])

# buckets around the SLO thresholds: API p95 < 2 s
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("samia_http_requests", "HTTP requests", ["method", "route", "status_class"], registry=r)
        self.latency = Histogram("samia_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.payments = Counter("samia_payments", "payment attempts by provider and outcome",
                                ["provider", "outcome"], registry=r)
        self.holds = Counter("samia_booking_holds", "booking hold attempts by outcome", ["outcome"], registry=r)
        self.pool = Gauge("samia_db_pool_connections", "database pool connections", ["state"], registry=r)
        self.queue = Gauge("samia_job_queue_jobs", "jobs waiting or running", ["status"], registry=r)
        self.queue_age = Gauge("samia_job_queue_oldest_seconds", "age of the oldest job by status", ["status"],
                               registry=r)
        self.breaker_open = Gauge("samia_provider_breaker_open", "1 while a provider's circuit is not closed",
                                  ["provider"], registry=r)
        self.db_tx = Histogram("samia_db_transaction_seconds", "a request's database transaction, open to commit",
                               buckets=LATENCY_BUCKETS, registry=r)
        self.orders = Counter("samia_orders", "order workflow events", ["event"], registry=r)
        self.siren_answer = Histogram("samia_siren_answer_seconds", "emergency raised → answered or acknowledged",
                                      buckets=(5, 10, 15, 30, 60, 120, 300), registry=r)
        self.call_setup = Histogram("samia_call_setup_seconds", "call created → connected",
                                    buckets=(1, 2, 5, 10, 15, 30, 60), registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, f"{status // 100}xx").inc()
        self.latency.labels(method, route).observe(seconds)


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
async def observability(ctx: Ctx = allow("admin", "superadmin", probe=ADMIN)) -> dict[str, Any]:
    """SLO status and error budget from this API process's live metrics (since it started;
    the fleet-wide view is Prometheus with ops/prometheus/slo_rules.yml and ops/grafana/)."""
    from samia.ops import slo

    await _collect(ctx.platform)
    breakers = {name: b.state for name, b in ctx.platform.breakers.items()}
    return {"scope": "this API process since start", "slos": slo.status(ctx.platform.metrics.registry),
            "breakers": breakers, "dashboards": sorted(p.name for p in (slo.ROOT / "ops" / "grafana").glob("*.json"))}

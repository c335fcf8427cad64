"""Prometheus metrics: golden signals (latency, traffic, errors by route template and status
class, saturation of the pool and the job queue) and business counters. One registry per
process; for several uvicorn workers set PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode) or scrape each worker."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

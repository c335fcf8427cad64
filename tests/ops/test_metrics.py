"""Prometheus metrics: golden signals by route template, saturation, business counters."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from samia.app import create_app
from tests.conftest import make_settings
from tests.helpers import problem

TOKEN = "metrics-token-" + "m" * 20


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_by_route_template_and_status_class(dsns, api) -> None:
    app = create_app(make_settings(METRICS_TOKEN=TOKEN), dsns=dsns)
    u = api.user("client")
    with TestClient(app) as c:
        for _ in range(3):
            assert c.get("/me", headers=u.h).status_code == 200
        c.get("/me")  # 401
        problem(c.get("/admin/users/does-not-matter", headers=u.h), 405)
        api.sql("select app.defer('purge_old')")
        problem(c.get("/metrics"), 401)
        r = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        got = samples(r.text)
    me = (("method", "GET"), ("route", "/me"), ("status_class", "2xx"))
    assert got[("samia_http_requests_total", me)] == 3
    assert got[("samia_http_requests_total", (("method", "GET"), ("route", "/me"), ("status_class", "4xx")))] == 1
    assert got[("samia_http_request_duration_seconds_count", (("method", "GET"), ("route", "/me")))] == 4
    under_2s = (("le", "2.0"), ("method", "GET"), ("route", "/me"))
    assert got[("samia_http_request_duration_seconds_bucket", under_2s)] == 4
    assert got[("samia_job_queue_jobs", (("status", "todo"),))] >= 1
    pool = got[("samia_db_pool_connections", (("state", "idle"),))] + got[("samia_db_pool_connections",
                                                                          (("state", "in_use"),))]
    assert pool >= 2, "the pool holds at least DB_POOL_MIN connections"
    assert not any("does-not-matter" in str(k) for k in got), "routes are templates, never raw paths"


def test_metrics_need_their_token(dsns) -> None:
    with TestClient(create_app(make_settings(), dsns=dsns)) as c:
        assert problem(c.get("/metrics"), 503, "provider_not_configured")["setting"] == "METRICS_TOKEN"

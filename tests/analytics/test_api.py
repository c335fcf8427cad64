"""The KPI routes beside Prometheus, their parameters, their Beirut days and their scoping."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import Api, User, ok, problem


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, User]:
    return {role: api.user(role) for role in ("client", "reader", "monitor", "admin", "superadmin")}


def test_prometheus_keeps_get_metrics_and_the_kpis_are_sub_paths(api: Api, people: dict[str, User]) -> None:
    # METRICS_TOKEN is unset here: Prometheus's route answers, naming the setting
    assert problem(api.client.get("/metrics"), 503, "provider_not_configured")["setting"] == "METRICS_TOKEN"
    body = ok(api.client.get("/metrics/overview", headers=people["admin"].h))
    assert body["timezone"] == "Asia/Beirut" and set(body) >= {"fulfillment", "payments", "operations"}
    problem(api.client.get("/metrics/nonsense", headers=people["admin"].h), 404)
    problem(api.client.get("/metrics/overview"), 401)


def test_prometheus_still_exposes_its_metrics(served: str, api: Api) -> None:
    import httpx

    admin = api.user("admin")
    r = httpx.get(f"{served}/metrics", headers={"Authorization": "Bearer served-metrics-token-x"})
    assert r.status_code == 200 and "samia_http_requests" in r.text
    assert httpx.get(f"{served}/metrics/payments", headers=admin.h).json()["timezone"] == "Asia/Beirut"


def test_days_are_beirut_days_with_a_default_week(api: Api, people: dict[str, User]) -> None:
    body = ok(api.client.get("/metrics/calls", headers=people["admin"].h))
    yesterday = dt.datetime.now(ZoneInfo("Asia/Beirut")).date() - dt.timedelta(days=1)
    assert (body["from"], body["to"]) == ((yesterday - dt.timedelta(days=6)).isoformat(), yesterday.isoformat())
    one = ok(api.client.get("/metrics/overview", params={"date": "2026-10-25"}, headers=people["admin"].h))
    assert one["from"] == one["to"] == "2026-10-25"


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
    ({"from": "1999-12-31"}, "from"),
    ({"to": "2026-13-01"}, "to"),
])
def test_bad_ranges_are_refused(api: Api, people: dict[str, User], params: dict[str, str], field: str) -> None:
    body = problem(api.client.get("/metrics/fulfillment", params=params, headers=people["admin"].h), 422)
    assert field in str(body)


def test_each_role_reaches_what_it_may(api: Api, people: dict[str, User]) -> None:
    allowed = {
        "/metrics/overview": {"reader", "monitor", "admin", "superadmin"},
        "/metrics/fulfillment": {"reader", "admin", "superadmin"},
        "/metrics/payments": {"admin", "superadmin"},
        "/metrics/calls": {"reader", "monitor", "admin", "superadmin"},
        "/metrics/engagement": {"admin", "superadmin"},
        "/metrics/content": {"reader", "monitor", "admin", "superadmin"},
        "/metrics/operations": {"admin", "superadmin"},
        "/metrics/reports/payments-funnel": {"admin", "superadmin"},
        "/metrics/reports/reader-utilisation": {"reader", "admin", "superadmin"},
        "/personalization/metrics": {"admin", "superadmin"},
    }
    for path, roles in allowed.items():
        got = {role for role, who in people.items() if api.client.get(path, headers=who.h).status_code == 200}
        assert got == roles, path
    # a reader's overview is their own: the sections for them, null for the rest
    mine = ok(api.client.get("/metrics/overview", headers=people["reader"].h))
    assert mine["reader_id"] == people["reader"].id
    assert [s for s in ("fulfillment", "payments", "calls", "content", "engagement", "operations")
            if mine[s] is not None] == ["fulfillment", "calls", "content"]


def test_reports_download_as_csv(api: Api, people: dict[str, User]) -> None:
    reader = people["reader"]
    api.sql("insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
            "values (%s, 1, '10:00', '12:00', 'Asia/Beirut')", (reader.id,))
    params = {"from": "2026-11-02", "to": "2026-11-08", "format": "csv"}
    r = api.client.get("/metrics/reports/reader-utilisation", params=params, headers=reader.h)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="reader_utilisation_2026-11-02_2026-11-08.csv"'
    assert r.text.splitlines() == ["reader_id,week,available_minutes,booked_minutes,utilisation",
                                   f"{reader.id},2026-11-02,120,0,0.0"]
    funnel = api.client.get("/metrics/reports/payments-funnel", params=params, headers=people["admin"].h)
    assert funnel.text.splitlines()[:2] == ["method,chosen,action_required,succeeded,failed,refunded,success_rate",
                                            "all,0,0,0,0,0,"]
    problem(api.client.get("/metrics/reports/reader-utilisation", params={"format": "xml"}, headers=reader.h), 422)

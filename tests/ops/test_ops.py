"""Health, readiness, admin-tunable rate limits, and claims isolation on a pooled connection."""

from __future__ import annotations

from fastapi.testclient import TestClient

from samia.app import create_app
from tests.conftest import make_settings
from tests.helpers import problem


def test_health_and_readiness(client) -> None:
    r = client.get("/api/ops/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["database"] == "ok" and body["migrations"]["current"] is True
    assert body["providers"]["phone"] == {"provider": "local", "configured": True}
    assert client.get("/api/ops/ready").json() == {"ready": True, "status": "ok"}
    assert client.get("/api/ops/live").json() == {"live": True}


def test_health_reports_pending_migrations(client, api) -> None:
    name = "schema/07_orders.sql"
    checksum = api.sql("select checksum from _migrations where name = %s", (name,))[0][0]
    api.sql("delete from _migrations where name = %s", (name,))
    try:
        body = client.get("/api/ops/health").json()
        assert body["status"] == "degraded" and body["migrations"]["pending"] == [name]
        assert client.get("/api/ops/ready").status_code == 503
    finally:
        api.sql("insert into _migrations (name, checksum) values (%s, %s)", (name, checksum))
    assert client.get("/api/ops/health").json()["migrations"]["current"] is True


def test_health_without_database_is_503_not_500(settings, dsns) -> None:
    from samia.db import Dsns
    broken = Dsns(owner=dsns.owner, app=dsns.app.replace("dbname=", "dbname=nosuchdb_") if "dbname=" in dsns.app
                  else dsns.app + "_nosuch")
    app = create_app(make_settings(DB_POOL_MIN=0), dsns=broken)
    with TestClient(app) as c:
        r = c.get("/api/ops/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert c.get("/api/ops/live").status_code == 200


def test_rate_limits_admin_only_and_audited(client, api) -> None:
    admin, monitor = api.user("admin"), api.user("monitor")
    r = client.get("/api/ops/rate_limits", headers=admin.h)
    assert r.status_code == 200
    body = r.json()
    assert (body["rate_orders_per_hour"], body["rate_phone_verify_per_hour"], body["rate_assist_draft_per_hour"],
            body["rate_assist_search_per_hour"], body["rate_knowledge_add_per_hour"]) == (10, 5, 10, 20, 5)
    problem(client.get("/api/ops/rate_limits", headers=monitor.h), 403)
    problem(client.get("/api/ops/rate_limits"), 401)

    r = client.post("/api/ops/rate_limits", json={"rate_orders_per_hour": 15, "rate_phone_verify_per_hour": 3},
                    headers=admin.h)
    assert r.status_code == 200 and r.json()["rate_orders_per_hour"] == 15
    meta = api.audit_rows("rate_limit.change", "orders")[-1][5]
    assert meta == {"before": 10, "after": 15, "window_seconds": 3600}
    b = problem(client.post("/api/ops/rate_limits", json={"rate_orders_per_hour": 20, "rate_bogus": 1},
                            headers=admin.h), 422)
    assert b["errors"][0]["loc"] == ["body", "rate_bogus"]
    assert client.get("/api/ops/rate_limits", headers=admin.h).json()["rate_orders_per_hour"] == 15, \
        "a rejected batch changes nothing"
    problem(client.post("/api/ops/rate_limits", json={"rate_orders_per_hour": 0}, headers=admin.h), 422)
    problem(client.post("/api/ops/rate_limits", json={"rate_orders_per_hour": 5}, headers=monitor.h), 403)
    # the new phone limit is in force at once
    u = api.user("client")
    codes = [client.post("/api/verify/phone/start", json={"phone": "+96171000111"}, headers=u.h).status_code
             for _ in range(4)]
    assert codes == [202, 202, 202, 429]


def test_claims_never_leak_between_requests_on_one_pooled_connection(dsns, api) -> None:
    app = create_app(make_settings(DB_POOL_MIN=1, DB_POOL_MAX=1), dsns=dsns)
    a, b = api.user("client"), api.user("client")
    with TestClient(app) as c:
        for _ in range(3):
            for u in (a, b):
                me = c.get("/me", headers=u.h).json()
                assert me["id"] == u.id
            # anonymous in between sees nothing of either
            assert c.get("/me").status_code == 401
        assert app.state.platform.pool.get_stats()["pool_size"] == 1
    # and on the raw connection the settings are gone after commit
    import psycopg
    with psycopg.connect(dsns.app) as conn:
        conn.execute("select set_config('request.jwt.claims', '{\"sub\": \"x\"}', true)")
        conn.commit()
        leftover = conn.execute("select current_setting('request.jwt.claims', true)").fetchone()
        assert leftover in ((None,), ("",))


def test_runbooks_are_served_to_admins(client, api) -> None:
    admin, monitor = api.user("admin"), api.user("monitor")
    listing = client.get("/admin/runbooks", headers=admin.h).json()
    slugs = {r["slug"] for r in listing}
    assert {"deploy", "rollback", "incident-sev1", "incident-sev2", "incident-sev3", "triage-checklist",
            "comms-templates", "postmortem-template"} <= slugs
    rb = client.get("/admin/runbooks/rollback", headers=admin.h).json()
    assert rb["title"].startswith("Rollback") and "PATCH /admin/flags" in rb["markdown"]
    problem(client.get("/admin/runbooks/rollback", headers=monitor.h), 403)
    problem(client.get("/admin/runbooks/nope", headers=admin.h), 404)
    problem(client.get("/admin/runbooks/..%2F..%2Fpyproject", headers=admin.h), 404)

"""Incidents and on-call, Alertmanager's receiver, the secrets store and the cost guards."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os

import psycopg
import pytest
from fastapi.testclient import TestClient

from samia.app import create_app

from ..conftest import make_settings
from ..helpers import ok, problem, run_jobs

UTC = dt.UTC
TOKEN = "alertmanager-token-for-tests"


@pytest.fixture(scope="module")
def settings():  # type: ignore[no-untyped-def]
    return make_settings(ALERTMANAGER_TOKEN=TOKEN)


def escalate(settings, dsns, at: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    run_jobs(settings, dsns, "incident_escalate", at=at)


def test_declared_incident_pages_the_rota_and_climbs_until_acknowledged(client, api, settings, dsns) -> None:
    admin, monitor, other_monitor = api.user("admin"), api.user("monitor"), api.user("monitor")
    owner = api.user("superadmin")
    now = dt.datetime.now(UTC)
    ok(client.post("/admin/oncall", json={"level": 1, "user_id": monitor.id,
                                          "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
                                          "ends_at": (now + dt.timedelta(hours=8)).isoformat()}, headers=admin.h), 201)
    problem(client.post("/admin/incident/declare", json={"title": "Payments failing", "severity": "SEV2"},
                        headers=monitor.h), 403)
    inc = ok(client.post("/admin/incident/declare", json={"title": "Payments failing", "severity": "SEV2",
                                                          "note": "Stripe 5xx"}, headers=admin.h), 201)
    assert inc["runbooks"] == ["/admin/runbooks/incident-sev2"] and inc["status"] == "open"
    assert [p["user_id"] for p in inc["pages"]] == [monitor.id]  # the rota, not every monitor
    assert other_monitor.id not in [p["user_id"] for p in inc["pages"]]
    # nobody acknowledges: after the SEV2 window (15 min) the admins are paged, then the super admin
    (created,) = api.sql("select created_at from incidents where id = %s", (inc["id"],))[0]
    escalate(settings, dsns, created + dt.timedelta(minutes=16))
    escalate(settings, dsns, created + dt.timedelta(minutes=32))
    got = ok(client.get(f"/admin/incidents/{inc['id']}", headers=admin.h))
    climbs = [(e["level"], dt.datetime.fromisoformat(e["at"]) - created) for e in got["timeline"]
              if e["kind"] == "escalated"]
    assert climbs == [(2, dt.timedelta(minutes=15)), (3, dt.timedelta(minutes=30))]  # each on its due time
    assert {p["level"] for p in got["pages"]} == {1, 2, 3}
    assert admin.id in {p["user_id"] for p in got["pages"] if p["level"] == 2}
    assert owner.id in {p["user_id"] for p in got["pages"] if p["level"] == 3}
    # acknowledging stops the climb
    ok(client.post(f"/admin/incidents/{inc['id']}/ack", headers=admin.h))
    pages = len(got["pages"])
    escalate(settings, dsns, created + dt.timedelta(hours=3))
    assert len(ok(client.get(f"/admin/incidents/{inc['id']}", headers=admin.h))["pages"]) == pages
    ok(client.post(f"/admin/incidents/{inc['id']}/status", json={"status": "resolved", "note": "processor back"},
                   headers=admin.h))
    assert api.audit_rows("incident.resolved", str(inc["id"]))
    problem(client.get(f"/admin/incidents/{inc['id']}", headers=api.user("client").h), 403)


def test_sev3_pages_wait_for_quiet_hours_sev1_does_not(client, api) -> None:
    admin = api.user("admin")
    api.sql("delete from oncall_rota")
    monitors = [api.user("monitor") for _ in range(2)]
    now = dt.datetime.now(UTC)
    # the first monitor's quiet hours cover now (in their zone), the second's do not
    start = (now - dt.timedelta(hours=1)).time().replace(microsecond=0)
    end = (now + dt.timedelta(hours=2)).time().replace(microsecond=0)
    ok(client.put("/me/quiet-hours", json={"starts": start.isoformat(), "ends": end.isoformat(), "tz": "UTC"},
                  headers=monitors[0].h))
    # every user has quiet hours since issue 12; a zone the database would not know is refused
    ok(client.put("/me/quiet-hours", json={"starts": "22:00", "ends": "07:00", "tz": "UTC"},
                  headers=api.user("client").h))
    problem(client.put("/me/quiet-hours", json={"starts": "22:00", "ends": "07:00", "tz": "Nowhere/Else"},
                       headers=monitors[1].h), 422)
    low = ok(client.post("/admin/incident/declare", json={"title": "Slow thumbnails", "severity": "SEV3"},
                         headers=admin.h), 201)
    pages = {p["user_id"]: p for p in low["pages"]}
    assert dt.datetime.fromisoformat(pages[monitors[0].id]["send_after"]) > now + dt.timedelta(minutes=50)
    assert dt.datetime.fromisoformat(pages[monitors[1].id]["send_after"]) <= dt.datetime.now(UTC)
    held = api.sql("select not_before from notification_outbox where recipient_id = %s and template = 'incident_page'",
                   (monitors[0].id,))
    assert held[0][0] is not None
    high = ok(client.post("/admin/incident/declare", json={"title": "Site down", "severity": "SEV1"},
                          headers=admin.h), 201)
    for p in high["pages"]:
        assert dt.datetime.fromisoformat(p["send_after"]) <= dt.datetime.now(UTC)  # SEV1 ignores quiet hours


ALERT = {"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"SLOErrorBudgetBurn\"}",
         "alerts": [{"status": "firing", "fingerprint": "a1b2c3d4",
                     "labels": {"alertname": "SLOErrorBudgetBurn", "severity": "page", "slo": "api_availability",
                                "long_window": "1h"},
                     "annotations": {"summary": "api_availability: error budget burning 14.4x over 1h",
                                     "runbook_url": "/admin/runbooks/incident-sev2"}}]}


def test_alertmanager_opens_updates_and_mitigates_an_incident(client, api) -> None:
    problem(client.post("/webhooks/alertmanager", json=ALERT), 401)
    problem(client.post("/webhooks/alertmanager", json=ALERT, headers={"Authorization": "Bearer wrong-token-xx"}),
            401)
    assert api.sql("select count(*) from incidents where source = 'alert' and dedupe_key = 'alert:a1b2c3d4'") == [
        (0,)]
    h = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/webhooks/alertmanager", json=ALERT, headers=h).status_code == 204
    assert client.post("/webhooks/alertmanager", json=ALERT, headers=h).status_code == 204  # repeated: same one
    rows = api.sql("select id, severity, status, runbooks from incidents where dedupe_key = 'alert:a1b2c3d4'")
    assert len(rows) == 1 and rows[0][1:3] == ("SEV2", "open") and "/admin/runbooks/incident-sev2" in rows[0][3]
    iid = rows[0][0]
    resolved = {**ALERT, "status": "resolved", "alerts": [{**ALERT["alerts"][0], "status": "resolved"}]}
    assert client.post("/webhooks/alertmanager", json=resolved, headers=h).status_code == 204
    assert api.sql("select status from incidents where id = %s", (iid,)) == [("mitigated",)]
    kinds = [k for (k,) in api.sql("select kind from incident_events where incident_id = %s order by id", (iid,))]
    assert kinds[0] == "alert_firing" and kinds.count("alert_firing") == 2 and kinds[-1] == "alert_resolved"
    problem(client.post("/webhooks/alertmanager", json={"version": "4"}, headers=h), 422)


def test_missing_alertmanager_token_answers_503_naming_it(dsns) -> None:
    with TestClient(create_app(make_settings(), dsns=dsns), raise_server_exceptions=False) as http:
        body = problem(http.post("/webhooks/alertmanager", json=ALERT, headers={"Authorization": "Bearer x"}), 503)
        assert body["setting"] == "ALERTMANAGER_TOKEN"


def test_secrets_are_sealed_versioned_and_survive_a_master_key_rotation(api, dsns) -> None:
    from samia.ops.secrets import master_keys, open_

    k1 = base64.b64encode(os.urandom(32)).decode()
    k2 = base64.b64encode(os.urandom(32)).decode()
    sa = api.user("superadmin")
    with TestClient(create_app(make_settings(SECRETS_MASTER_KEYS=f"v1:{k1}"), dsns=dsns),
                    raise_server_exceptions=False) as http:
        problem(http.post("/admin/secrets", json={"name": "STRIPE_API_KEY", "value": "sk_live_x"},
                          headers=api.user("admin").h), 403)
        first = ok(http.post("/admin/secrets", json={"name": "STRIPE_API_KEY", "value": "sk_test_first"},
                             headers=sa.h), 201)
        assert (first["version"], first["key_id"]) == (1, "v1")
        raw = api.sql("select ciphertext from app_private.config_secrets where name = 'STRIPE_API_KEY'")[0][0]
        assert b"sk_test_first" not in bytes(raw)  # encrypted at rest
        assert "sk_test_first" not in json.dumps(ok(http.get("/admin/secrets", headers=sa.h)))
    # the new master key arrives next to the old one: old values still open, new ones use v2
    both = make_settings(SECRETS_MASTER_KEYS=f"v2:{k2},v1:{k1}")
    with TestClient(create_app(both, dsns=dsns), raise_server_exceptions=False) as http:
        second = ok(http.post("/admin/secrets/rotate", json={"name": "STRIPE_API_KEY", "value": "sk_test_second",
                                                             "reencrypt": False}, headers=sa.h))
        assert second["new_version"] == {"name": "STRIPE_API_KEY", "version": 2}
        rows = api.sql("select version, key_id, nonce, ciphertext from app_private.config_secrets "
                       "where name = 'STRIPE_API_KEY' order by version")
        assert [r[1] for r in rows] == ["v1", "v2"]
        keys = master_keys(both)
        assert open_(keys, "STRIPE_API_KEY", 1, "v1", bytes(rows[0][2]), bytes(rows[0][3])) == "sk_test_first"
        ok(http.post("/admin/secrets", json={"name": "USDT_API_KEY", "value": "old-usdt"}, headers=sa.h), 201)
        api.sql("update app_private.config_secrets set key_id = 'v1', nonce = %s, ciphertext = %s "
                "where name = 'USDT_API_KEY'", (*_seal_v1(k1, "USDT_API_KEY", 1, "old-usdt"),))
        done = ok(http.post("/admin/secrets/rotate", json={}, headers=sa.h))
        assert done == {"reencrypted": 1, "key_id": "v2"}
        assert api.audit_rows("secrets.rotated")
        assert all("old-usdt" not in json.dumps(r[5]) for r in api.audit_rows("secrets.rotated"))
    # with v1 gone, everything current still opens
    only2 = master_keys(make_settings(SECRETS_MASTER_KEYS=f"v2:{k2}"))
    for name, version, kid, nonce, ct in api.sql("select distinct on (name) name, version, key_id, nonce, ciphertext "
                                                 "from app_private.config_secrets order by name, version desc"):
        assert kid == "v2" and open_(only2, name, version, kid, bytes(nonce), bytes(ct))
    with pytest.raises(psycopg.Error, match="super admin"):
        api.sql_as(api.user("admin").id, "select * from app.secret_all()")


def _seal_v1(k1: str, name: str, version: int, value: str) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce, AESGCM(base64.b64decode(k1)).encrypt(nonce, value.encode(), f"{name}:{version}".encode())


def test_a_provider_over_its_monthly_budget_degrades_to_503_and_alerts(client, api) -> None:
    admin = api.user("admin")
    ok(client.put("/admin/budget/ai", json={"monthly_calls": 3, "alert_pct": 60}, headers=admin.h))
    platform = client.app.state.platform

    async def call() -> str:
        async with platform.pool.connection() as conn:  # as a request's connection is: authenticated
            await conn.execute("select set_config('role', 'authenticated', true)")
            try:
                return await platform.guarded(conn, "ai", lambda: asyncio.sleep(0, result="answer"))
            finally:
                await conn.rollback()

    assert [client.portal.call(call) for _ in range(3)] == ["answer"] * 3
    with pytest.raises(Exception, match="monthly budget") as exc:
        client.portal.call(call)
    assert getattr(exc.value, "status", None) == 503 and exc.value.code == "budget_exhausted"  # type: ignore[attr-defined]
    row = next(b for b in ok(client.get("/admin/budget", headers=admin.h)) if b["provider"] == "ai")
    assert (row["calls"], row["monthly_calls"], row["within_budget"]) == (3, 3, False)
    # the alert threshold (60 %) opened one SEV3 incident for the month
    assert api.sql("select count(*), min(severity) from incidents where dedupe_key like 'budget:ai:%%'") == [
        (1, "SEV3")]
    overview = ok(client.get("/admin/health/overview", headers=admin.h))
    assert overview["status"] in ("degraded", "critical") and overview["open_incidents"]
    ok(client.put("/admin/budget/ai", json={"monthly_calls": 1000}, headers=admin.h))
    assert client.portal.call(call) == "answer"


def test_a_stored_secret_fills_an_unset_setting_and_the_environment_wins(api, dsns) -> None:
    import stripe

    sa = api.user("superadmin")
    with TestClient(create_app(make_settings(), dsns=dsns), raise_server_exceptions=False) as http:
        problem(http.post("/webhooks/stripe", content=b"{}"), 503, "provider_not_configured")
        ok(http.post("/admin/secrets", json={"name": "STRIPE_WEBHOOK_SECRET", "value": "whsec_from_store"},
                     headers=sa.h), 201)
        payload = json.dumps({"id": "evt_store_1", "object": "event", "type": "customer.created",
                              "data": {"object": {"id": "cus_1", "object": "customer"}}})
        sig = stripe.WebhookSignature.generate_signature_header(payload, "whsec_from_store")
        r = http.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": sig,
                                                                     "Content-Type": "application/json"})
        assert r.status_code == 200 and r.json() == {"status": "ignored"}, r.text
    # a new process reads it at start-up; a value from the environment is never overridden
    with TestClient(create_app(make_settings(STRIPE_WEBHOOK_SECRET="whsec_from_env"), dsns=dsns),
                    raise_server_exceptions=False) as http:
        assert http.app.state.platform.settings.stripe_webhook_secret.get_secret_value() == "whsec_from_env"
    with TestClient(create_app(make_settings(), dsns=dsns), raise_server_exceptions=False) as http:
        assert http.app.state.platform.settings.stripe_webhook_secret.get_secret_value() == "whsec_from_store"

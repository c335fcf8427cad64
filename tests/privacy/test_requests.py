"""Data-subject requests: filed by the person, decided once by an admin (approve, or decline with
a reason, which changes nothing else), a deadline as data and the alerts before and after it."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest

from ..helpers import Api, ok, problem, run_jobs
from .conftest import person, png

UTC = dt.UTC


@pytest.fixture(scope="module")
def admins(api: Api):  # type: ignore[no-untyped-def]
    return api.user("admin"), api.user("superadmin")


def state_of(api: Api, user_id: str, data_dir) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    """Everything a decision must not touch: the profile, the person's files and their rows."""
    storage = sorted(p.relative_to(data_dir) for p in (data_dir / "storage").rglob("*") if p.is_file()) \
        if (data_dir / "storage").exists() else []
    return (api.sql("select to_jsonb(p) - 'updated_at' from profiles p where id = %s", (user_id,)),
            api.sql("select id, storage_key, removed_at from media_assets where owner_id = %s order by id", (user_id,)),
            api.sql("select count(*) from app_auth.credentials where user_id = %s", (user_id,)),
            api.sql("select count(*) from app_private.storage_deletions"), storage)


def test_a_decline_needs_a_reason_and_leaves_everything_as_it_was(client, api, admins, data_dir, settings,
                                                                   dsns) -> None:
    admin, _ = admins
    user = person(api)
    o = ok(client.post("/orders", json={"service": "coffee", "question": "my cup"}, headers=user.h), 201)["id"]
    ok(client.post(f"/orders/{o}/photos", content=png(user.first), headers={**user.h, "Content-Type": "image/png"}))
    req = ok(client.post("/me/data-requests", json={"kind": "delete", "note": "please"}, headers=user.h), 201)
    assert (req["status"], req["kind"], req["overdue"]) == ("pending", "delete", False)
    due = dt.datetime.fromisoformat(req["due_at"]) - dt.datetime.fromisoformat(req["created_at"])
    assert due == dt.timedelta(days=30)
    problem(client.post("/me/data-requests", json={"kind": "delete"}, headers=user.h), 409, "request_open")
    assert api.sql("select count(*) from notification_outbox where template = 'data_request_filed' "
                   "and params->>'request' = %s", (str(req["id"]),))[0][0] >= 2  # every admin hears of it
    before = state_of(api, user.id, data_dir)
    problem(client.post(f"/admin/data-requests/{req['id']}/decline", json={}, headers=admin.h), 422)
    problem(client.post(f"/admin/data-requests/{req['id']}/decline", json={"reason": "x"}, headers=admin.h), 422)
    problem(client.post(f"/admin/data-requests/{req['id']}/decline", json={"reason": "no"}, headers=user.h), 403)
    done = ok(client.post(f"/admin/data-requests/{req['id']}/decline",
                          json={"reason": "an open payment dispute must be settled first"}, headers=admin.h))
    assert (done["status"], done["decision_reason"]) == ("declined", "an open payment dispute must be settled first")
    run_jobs(settings, dsns, "dsr_process", "dsr_sweep")
    assert state_of(api, user.id, data_dir) == before
    assert ok(client.get("/me", headers=user.h))["email"] == user.email
    problem(client.post(f"/admin/data-requests/{req['id']}/approve", json={}, headers=admin.h), 409,
            "already_decided")
    assert [r[5] for r in api.audit_rows("dsr.declined", str(req["id"]))] == [{"kind": "delete", "subject": user.id}]
    assert api.sql("select template from notification_outbox where recipient_id = %s and template like 'data_%%'",
                   (user.id,)) == [("data_request_declined",)]
    assert [r["status"] for r in ok(client.get("/me/data-requests", headers=user.h))] == ["declined"]
    # declined, it is no longer open: the person may ask again
    ok(client.post("/me/data-requests", json={"kind": "delete"}, headers=user.h), 201)


def test_nobody_decides_their_own_request_and_only_admins_see_the_queue(client, api, admins) -> None:
    admin, boss = admins
    mine = ok(client.post("/me/data-requests", json={"kind": "export"}, headers=admin.h), 201)
    problem(client.post(f"/admin/data-requests/{mine['id']}/approve", json={}, headers=admin.h), 403, "own_request")
    queue = ok(client.get("/admin/data-requests?status=pending", headers=boss.h))
    assert mine["id"] in [r["id"] for r in queue] and all(r["status"] == "pending" for r in queue)
    for role in ("client", "reader", "monitor"):
        problem(client.get("/admin/data-requests", headers=api.user(role).h), 403)
    ok(client.post(f"/admin/data-requests/{mine['id']}/approve", json={}, headers=boss.h))


def test_a_request_is_approved_once_under_concurrent_approvals(served, api, admins) -> None:
    user = person(api)
    rid = api.sql_as(user.id, "select app.dsr_file('export', null)")[0][0]
    tokens = [a.h for a in admins] * 4

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=served, timeout=30) as http:
            replies = await asyncio.gather(*(http.post(f"/admin/data-requests/{rid}/approve", json={}, headers=h)
                                             for h in tokens))
        return sorted(r.status_code for r in replies)

    statuses = asyncio.run(race())
    assert statuses == [200] + [409] * (len(tokens) - 1), statuses
    assert len(api.audit_rows("dsr.approved", str(rid))) == 1
    assert api.sql("select status, decided_by is not null from data_requests where id = %s", (rid,)) == [
        ("approved", True)]
    assert api.sql("select count(*) from notification_outbox where template = 'data_request_approved' "
                   "and params->>'request' = %s", (str(rid),)) == [(1,)]


def test_each_approved_request_is_taken_by_one_worker(api, admins) -> None:
    """Two workers claiming at the same time, in open transactions: each gets a different
    request (SKIP LOCKED), and a third finds nothing left."""
    import threading

    import psycopg

    admin, _ = admins
    api.sql("update data_requests set status = 'completed' where status in ('approved', 'failed', 'processing')")
    ids = sorted(api.sql_as(person(api).id, "select app.dsr_file('export', null)")[0][0] for _ in range(2))
    for rid in ids:
        api.sql_as(admin.id, "select app.dsr_decide(%s, 'approved', null)", (rid,))
    got: list[int | None] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        with psycopg.connect(api.owner_dsn) as conn:
            conn.execute("select set_config('role', 'service_role', true)")
            row = conn.execute("select id from app.dsr_claim()").fetchone()
            got.append(row[0] if row else None)
            barrier.wait(timeout=10)  # both claims are in flight, uncommitted, together
    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(x for x in got if x is not None) == ids, got
    assert api.sql("select count(*) from data_requests where status = 'approved'") == [(0,)]
    assert api.sql("select count(*) from audit_log where event = 'dsr.started' and entity_id = any(%s)",
                   ([str(i) for i in ids],)) == [(2,)]


def incidents_for(api: Api, rid: int) -> list[tuple[object, ...]]:
    return api.sql("select severity, dedupe_key, runbooks from incidents where dedupe_key like %s order by id",
                   (f"dsr:{rid}:%",))


def test_the_deadline_is_data_and_alerts_before_and_after_it_passes(client, api, admins, settings, dsns) -> None:
    admin, _ = admins
    api.user("monitor")  # the first level paged
    api.sql("update privacy_settings set value = 10 where name = 'dsr_deadline_days'")
    try:
        user = person(api)
        req = ok(client.post("/me/data-requests", json={"kind": "export"}, headers=user.h), 201)
    finally:
        api.sql("update privacy_settings set value = 30 where name = 'dsr_deadline_days'")
    due = dt.datetime.fromisoformat(req["due_at"])
    assert due - dt.datetime.fromisoformat(req["created_at"]) == dt.timedelta(days=10)
    rid = req["id"]
    run_jobs(settings, dsns, "dsr_sweep", at=due - dt.timedelta(days=8))  # far from it: nothing
    assert incidents_for(api, rid) == []
    run_jobs(settings, dsns, "dsr_sweep", at=due - dt.timedelta(days=3))  # within the warning window
    assert incidents_for(api, rid) == [("SEV3", f"dsr:{rid}:due", ["/admin/runbooks/data-requests"])]
    run_jobs(settings, dsns, "dsr_sweep", at=due - dt.timedelta(days=2))  # once only
    assert len(incidents_for(api, rid)) == 1
    run_jobs(settings, dsns, "dsr_sweep", at=due + dt.timedelta(minutes=5))  # past it: the alert
    assert incidents_for(api, rid)[-1] == ("SEV2", f"dsr:{rid}:overdue", ["/admin/runbooks/data-requests"])
    assert api.sql("select count(*) from incident_pages p join incidents i on i.id = p.incident_id "
                   "where i.dedupe_key = %s", (f"dsr:{rid}:overdue",))[0][0] >= 1  # someone was paged
    assert [r[5] for r in api.audit_rows("dsr.deadline_passed", str(rid))] == [{"kind": "export"}]
    run_jobs(settings, dsns, "dsr_sweep", at=due + dt.timedelta(days=1))
    assert len(incidents_for(api, rid)) == 2
    # the admins' queue shows it as overdue once the deadline has really passed
    api.sql("update data_requests set due_at = now() - interval '1 hour' where id = %s", (rid,))
    row = next(r for r in ok(client.get("/admin/data-requests", headers=admin.h)) if r["id"] == rid)
    assert row["overdue"] is True
    assert api.audit_rows("dsr.deadline_near", str(rid))

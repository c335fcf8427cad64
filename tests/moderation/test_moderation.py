"""Moderation: who sees cases, atomic claims, blocks that bite at once and lift themselves,
unblock for admins only, order moderation, appeals, sweeps and retention."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from ..helpers import ok, problem, run_jobs


@pytest.fixture(scope="module")
def staff(api):  # type: ignore[no-untyped-def]
    return {"monitor": api.user("monitor"), "monitor2": api.user("monitor"), "admin": api.user("admin")}


def test_cases_are_visible_to_staff_and_to_their_reporter_only(client, api, staff) -> None:
    alice, bob, reader = api.user("client"), api.user("client"), api.user("reader")
    r = ok(client.post("/reports", json={"subject_kind": "profile", "subject_id": reader.id, "reason": "harassment",
                                         "details": "rude on a call"}, headers=alice.h), 201)
    assert r["status"] == "open"
    assert [x["id"] for x in ok(client.get("/reports", headers=alice.h))] == [r["id"]]
    assert ok(client.get("/reports", headers=bob.h)) == []
    problem(client.get("/monitor/cases", headers=alice.h), 403)
    problem(client.get("/monitor/cases", headers=reader.h), 403)
    assert r["id"] in [c["id"] for c in ok(client.get("/monitor/cases", headers=staff["monitor"].h))]
    assert r["id"] in [c["id"] for c in ok(client.get("/monitor/cases", headers=staff["admin"].h))]
    # the same through SQL under each role: RLS is the guard
    assert api.sql_as(bob.id, "select count(*) from moderation_cases") == [(0,)]
    assert api.sql_as(reader.id, "select count(*) from moderation_cases") == [(0,)]
    assert api.sql_as(alice.id, "select count(*) from moderation_cases") == [(1,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(None, "select count(*) from moderation_cases")
    # a reporter cannot forge a sweep case or claim one
    with pytest.raises(psycopg.Error, match="row-level security"):
        api.sql_as(alice.id, "insert into moderation_cases (source, reason, severity, subject_kind, subject_id, "
                   "reporter_id) values ('sweep', 'fraud', 4, 'profile', 'x', auth.uid())")


def test_critical_and_golden_cases_come_first(client, api, staff) -> None:
    c = api.user("client")
    spam = ok(client.post("/reports", json={"subject_kind": "profile", "subject_id": c.id, "reason": "spam"},
                          headers=api.user("client").h), 201)["id"]
    fraud = ok(client.post("/reports", json={"subject_kind": "profile", "subject_id": c.id, "reason": "fraud"},
                           headers=api.user("client").h), 201)["id"]
    ids = [x["id"] for x in ok(client.get("/monitor/cases", headers=staff["monitor"].h))]
    assert ids.index(fraud) < ids.index(spam)
    only = ok(client.get("/monitor/cases?reason=spam&min_severity=1", headers=staff["monitor"].h))
    assert {x["reason"] for x in only} == {"spam"}


def test_two_monitors_never_hold_the_same_case(served, api, staff) -> None:
    c = api.user("client")
    with httpx.Client(base_url=served, timeout=30) as http:
        for _ in range(3):
            case = http.post("/reports", json={"subject_kind": "profile", "subject_id": c.id, "reason": "abuse"},
                             headers=api.user("client").h).json()["id"]
            with ThreadPoolExecutor(2) as pool:
                rs = list(pool.map(lambda m, case=case: http.post(f"/monitor/cases/{case}/claim", headers=m.h),
                                   (staff["monitor"], staff["monitor2"])))
            assert sorted(r.status_code for r in rs) == [200, 409], [r.text for r in rs]
            holder = api.sql("select claimed_by::text from moderation_cases where id = %s", (case,))[0][0]
            winner = staff["monitor"] if rs[0].status_code == 200 else staff["monitor2"]
            assert holder == winner.id
            loser = staff["monitor2"] if winner is staff["monitor"] else staff["monitor"]
            # the loser cannot act under it either
            r = http.post(f"/monitor/cases/{case}/resolve", json={"outcome": "dismissed", "note": "not mine"},
                          headers=loser.h)
            assert r.status_code == 409 and r.json()["code"] == "claim_required"
    # an expired claim is free again
    api.sql("update moderation_cases set claim_expires_at = now() - interval '1 second' where id = %s", (case,))
    assert api.sql_as(loser.id, "select app.claim_case(%s)", (case,)) == [(True,)]


def test_block_bites_at_once_and_only_an_admin_unblocks(client, api, staff) -> None:
    victim = api.user("client")
    assert client.get("/me", headers=victim.h).status_code == 200
    b = ok(client.post("/monitor/block-user", json={"user_id": victim.id, "reason": "harassment",
                                                    "note": "threats in the order text", "evidence": ["order:1"]},
                       headers=staff["monitor"].h), 201)
    assert b["ends_at"] is None
    problem(client.get("/me", headers=victim.h), 401, "session_revoked")  # the existing token, next request
    problem(client.post("/monitor/unblock-user", json={"user_id": victim.id, "note": "sorry"},
                        headers=staff["monitor"].h), 403)
    with pytest.raises(psycopg.Error, match="only an admin may unblock"):
        api.sql_as(staff["monitor"].id, "select app.unblock_user(%s, 'sql path')", (victim.id,))
    assert client.get("/me", headers=victim.h).status_code == 401
    ok(client.post("/monitor/unblock-user", json={"user_id": victim.id, "note": "appeal accepted by phone"},
                   headers=staff["admin"].h))
    assert client.get("/me", headers=victim.h).status_code == 200
    acts = api.sql("select action, actor_id::text from moderation_actions where target_id = %s order by id",
                   (victim.id,))
    assert acts == [("block", staff["monitor"].id), ("unblock", staff["admin"].id)]
    assert [e for (_, _, e, *_) in api.audit_rows("moderation.block", victim.id)] == ["moderation.block"]
    # monitors block clients and readers, not staff; nobody blocks the superadmin or themselves
    problem(client.post("/monitor/block-user", json={"user_id": staff["admin"].id, "reason": "other"},
                        headers=staff["monitor"].h), 403)
    problem(client.post("/monitor/block-user", json={"user_id": staff["monitor"].id, "reason": "other"},
                        headers=staff["monitor"].h), 403)
    sa = api.user("superadmin")
    problem(client.post("/monitor/block-user", json={"user_id": sa.id, "reason": "other"},
                        headers=staff["admin"].h), 403)


def test_a_timed_block_lifts_itself(client, api, staff, settings, dsns) -> None:
    victim = api.user("reader")
    ok(client.post("/monitor/block-user", json={"user_id": victim.id, "reason": "spam", "duration_minutes": 60},
                   headers=staff["monitor"].h), 201)
    assert client.get("/me", headers=victim.h).status_code == 401
    # the clock moves past the end: the block stops biting at once, before any job runs
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    api.sql("update profiles set blocked_until = %s where id = %s", (past, victim.id))
    api.sql("update user_blocks set ends_at = %s, starts_at = %s - interval '1 hour' where user_id = %s",
            (past, past, victim.id))
    assert client.get("/me", headers=victim.h).status_code == 200
    run_jobs(settings, dsns, "lift_expired_blocks")
    assert api.sql("select lift_note, lifted_at is not null from user_blocks where user_id = %s", (victim.id,)) == [
        ("expired", True)]
    assert api.sql("select blocked_at from profiles where id = %s", (victim.id,)) == [(None,)]
    assert len(api.audit_rows("moderation.block_expired", victim.id)) == 1


def test_order_moderation_hold_unlist_remove_and_escalate(client, api, staff) -> None:
    from ..orders.conftest import order, produce, tone

    c, reader = api.user("client"), api.user("reader")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (reader.id,))
    o = order(client, c)["id"]
    audio = tone()
    produce(client, o, reader, audio, admin=staff["admin"])
    m = staff["monitor"]
    ok(client.post(f"/monitor/moderate/order/{o}", json={"action": "hold", "reason": "copyright",
                                                          "note": "music under the reading"}, headers=m.h))
    problem(client.post(f"/monitor/orders/{o}/approve", json={}, headers=m.h), 409, "on_hold")
    ok(client.post(f"/monitor/moderate/order/{o}", json={"action": "release", "reason": "copyright"}, headers=m.h))
    ok(client.post(f"/monitor/orders/{o}/approve", json={}, headers=m.h))
    media = ok(client.get(f"/orders/{o}", headers=c.h))["audio_media_id"]
    url = ok(client.get(f"/media/{media}/url", headers=c.h))["url"]
    assert client.get(url).status_code == 200
    ok(client.post(f"/monitor/moderate/order/{o}", json={"action": "unlist", "reason": "copyright"}, headers=m.h))
    problem(client.get(url), 404)
    esc = ok(client.post(f"/monitor/moderate/order/{o}", json={"action": "escalate", "reason": "safety",
                                                                "note": "client in distress"}, headers=m.h))
    case = esc["escalation_case_id"]
    assert api.sql("select severity, subject_kind, subject_id from moderation_cases where id = %s", (case,)) == [
        (4, "order", str(o))]
    # acting under a case needs its claim
    problem(client.post(f"/monitor/moderate/order/{o}", json={"action": "remove_media", "reason": "copyright",
                                                               "case_id": case}, headers=m.h), 409, "claim_required")
    ok(client.post(f"/monitor/cases/{case}/claim", headers=m.h))
    ok(client.post(f"/monitor/moderate/order/{o}", json={"action": "remove_media", "reason": "copyright",
                                                          "case_id": case}, headers=m.h))
    assert api.sql("select count(*) from media_assets where id = %s and removed_at is not null", (media,)) == [(1,)]
    problem(client.post(f"/monitor/moderate/order/{o}", json={"action": "hold", "reason": "spam"},
                        headers=c.h), 403)
    actions = [a for (a,) in api.sql("select action from moderation_actions where target_kind = 'order' "
                                     "and target_id = %s order by id", (str(o),))]
    assert actions == ["hold", "release", "approve", "unlist", "escalate", "remove_media"]
    links = ok(client.post("/monitor/lineage/recompute", json={"order_id": o}, headers=m.h))
    assert {(x["kind"], x["media_id"]) for x in links["sample"]} >= {("output", media), ("approved", media)}


def test_appeal_lifecycle(client, api, staff) -> None:
    victim = api.user("client")
    b = ok(client.post("/monitor/block-user", json={"user_id": victim.id, "reason": "spam", "note": "bulk orders"},
                       headers=staff["monitor"].h), 201)
    # the blocked client cannot sign in to appeal: staff file it for them
    problem(client.post("/appeals", json={"subject_kind": "block", "subject_id": b["id"], "statement": "x" * 10},
                        headers=victim.h), 401)
    appeal = ok(client.post("/appeals", json={"subject_kind": "block", "subject_id": b["id"],
                                              "statement": "It was my sister ordering", "appellant_id": victim.id},
                            headers=staff["monitor"].h), 201)
    assert appeal["status"] == "submitted"
    problem(client.post(f"/monitor/appeals/{appeal['id']}/resolve", json={"decision": "upheld", "rationale": "not yet"},
                        headers=staff["monitor"].h), 409)  # open it first
    ok(client.post(f"/monitor/appeals/{appeal['id']}/open", headers=staff["monitor"].h))
    problem(client.post(f"/monitor/appeals/{appeal['id']}/open", headers=staff["monitor2"].h), 409)
    # a monitor may not overturn a block (that is an unblock)
    problem(client.post(f"/monitor/appeals/{appeal['id']}/resolve",
                        json={"decision": "overturned", "rationale": "credible"}, headers=staff["monitor"].h), 403)
    done = ok(client.post(f"/monitor/appeals/{appeal['id']}/resolve",
                          json={"decision": "upheld", "rationale": "same card, same address"},
                          headers=staff["monitor"].h))
    assert done["status"] == "decided" and done["decision"] == "upheld"
    assert client.get("/me", headers=victim.h).status_code == 401
    # a second appeal, decided by an admin: overturned lifts the block
    second = ok(client.post("/appeals", json={"subject_kind": "block", "subject_id": b["id"],
                                              "statement": "New evidence: receipts", "appellant_id": victim.id},
                            headers=staff["admin"].h), 201)
    ok(client.post(f"/monitor/appeals/{second['id']}/open", headers=staff["admin"].h))
    ok(client.post(f"/monitor/appeals/{second['id']}/resolve", json={"decision": "overturned",
                                                                      "rationale": "receipts check out"},
                   headers=staff["admin"].h))
    assert client.get("/me", headers=victim.h).status_code == 200
    # the appellant sees their appeals; another client does not, nor can appeal someone else's block
    assert api.sql_as(victim.id, "select count(*) from appeals") == [(2,)]
    other = api.user("client")
    assert api.sql_as(other.id, "select count(*) from appeals") == [(0,)]
    problem(client.post("/appeals", json={"subject_kind": "block", "subject_id": b["id"], "statement": "me too"},
                        headers=other.h), 404)


def test_sweeps_open_cases_for_abnormal_data_and_none_for_normal(client, api, staff, settings, dsns) -> None:
    normal, bursty, refunded = api.user("client"), api.user("client"), api.user("client")
    reviewed = api.user("client")  # owns the reviewed orders below (a burst too; not asserted)
    careless, careful = api.user("reader"), api.user("reader")
    tarot = api.sql("select id from services where code = 'tarot'")[0][0]
    for u, n in ((normal, 2), (bursty, 7)):
        for _ in range(n):
            api.sql("insert into orders (user_id, service_id) values (%s, %s)", (u.id, tarot))
    # reviews: the careless reader has 3 of 4 rejected, the careful one 1 of 5
    for reader, rejects, approves in ((careless, 3, 1), (careful, 1, 4)):
        api.sql("insert into reader_services (reader_id, service_id) values (%s, %s)", (reader.id, tarot))
        for action in ["reject"] * rejects + ["approve"] * approves:
            oid = api.sql("insert into orders (user_id, service_id) values (%s, %s) returning id",
                          (reviewed.id, tarot))[0][0]
            api.sql("update orders set status = 'assigned', assigned_reader = %s where id = %s", (reader.id, oid))
            api.sql("insert into moderation_actions (actor_id, target_kind, target_id, action) "
                    "values (%s, 'order', %s, %s)", (staff["monitor"].id, str(oid), action))
    # three refunds to one client (three paid-then-refunded orders)
    for _ in range(3):
        oid = api.sql("insert into orders (user_id, service_id) values (%s, %s) returning id",
                      (refunded.id, tarot))[0][0]
        api.sql("insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency, "
                "order_id) values (%s, 'wallet', 'refund', 'succeeded', 100, 'USD', %s)", (refunded.id, oid))
    # calls: the dropping reader ended 2 of 5 calls themselves, the steady one 0 of 5
    dropper, steady = api.user("reader"), api.user("reader")
    for reader, drops in ((dropper, 2), (steady, 0)):
        for n in range(5):
            api.sql("insert into calls (client_id, reader_id, kind, status, started_at, ended_at, end_reason) "
                    "values (%s, %s, 'instant', 'created', now() - interval '1 hour', now() - interval '50 minutes', "
                    "%s)", (reviewed.id, reader.id, "dropped_by_reader" if n < drops else "completed"))
    # payments: one client failing four charges in a day (trying method after method)
    spiky = api.user("client")
    for _ in range(4):
        api.sql("insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency) "
                "values (%s, 'testcard', 'charge', 'failed', 100, 'USD')", (spiky.id,))
    api.sql("insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency) "
            "values (%s, 'testcard', 'charge', 'failed', 100, 'USD')", (normal.id,))
    api.sql("delete from moderation_cases where source = 'sweep'")
    run_jobs(settings, dsns, "moderation_sweeps")
    found = set(api.sql("select rule, subject_id from moderation_cases where source = 'sweep'"))
    assert ("order_burst", bursty.id) in found
    assert ("reader_reject_rate", careless.id) in found
    assert ("refund_loop", refunded.id) in found
    assert ("call_drop_rate", dropper.id) in found and ("call_drop_rate", steady.id) not in found
    assert ("payment_fallback_spike", spiky.id) in found
    for quiet in (normal.id, careful.id):
        assert not [f for f in found if f[1] == quiet], found
    run_jobs(settings, dsns, "moderation_sweeps")  # a rerun the same day opens nothing new
    assert len(api.sql("select 1 from moderation_cases where source = 'sweep'")) == len(found)
    # thresholds are data: raise one and the subject is no longer a case
    api.sql("delete from moderation_cases where source = 'sweep'")
    api.sql("update sweep_rules set threshold = 50 where code = 'order_burst'")
    run_jobs(settings, dsns, "moderation_sweeps")
    assert ("order_burst", bursty.id) not in set(api.sql("select rule, subject_id from moderation_cases "
                                                         "where source = 'sweep'"))


def test_retention_purges_old_moderation_data_and_audits_it(client, api, staff, settings, dsns) -> None:
    c = api.user("client")
    old = ok(client.post("/reports", json={"subject_kind": "profile", "subject_id": c.id, "reason": "other"},
                         headers=api.user("client").h), 201)["id"]
    fresh = ok(client.post("/reports", json={"subject_kind": "profile", "subject_id": c.id, "reason": "other"},
                           headers=api.user("client").h), 201)["id"]
    api.sql("update moderation_cases set status = 'dismissed', resolved_at = now() - interval '400 days' "
            "where id = %s", (old,))
    api.sql("update moderation_cases set status = 'dismissed', resolved_at = now() - interval '10 days' "
            "where id = %s", (fresh,))
    run_jobs(settings, dsns, "retention_purge")
    assert api.sql("select id from moderation_cases where id = any(%s)", ([old, fresh],)) == [(fresh,)]
    (meta,) = api.sql("select meta from audit_log where event = 'retention.purged' order by id desc limit 1")[0]
    assert meta["moderation_cases"] >= 1

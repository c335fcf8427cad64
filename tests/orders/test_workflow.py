"""The order workflow end to end through the API, with real audio bytes, and the rules the
database enforces whichever path tries to break them."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest

from samia.orders.workflow import TRANSITIONS

from ..helpers import ok, problem
from .conftest import order, produce, tone


def test_the_transition_table_in_code_is_the_one_the_database_enforces(api) -> None:
    rows = api.sql("select from_status::text, to_status::text, roles from app.order_transitions")
    assert {(a, b): tuple(sorted(r)) for a, b, r in rows} == {k: tuple(sorted(v)) for k, v in TRANSITIONS.items()}


def test_happy_path_real_audio_from_question_to_the_clients_ears(client, api, reader, monitor, admin, audio,
                                                                 data_dir) -> None:
    c = api.user("client")
    o = order(client, c)
    assert o["status"] == "new" and o["reading_id"] and o["audio_media_id"] is None
    assert "output_media_id" not in o or o["output_media_id"] is None

    ok(client.post(f"/orders/{o['id']}/assign", json={}, headers=admin.h))  # auto: the only tarot reader
    assert api.sql("select assigned_reader::text, status::text from orders where id = %s", (o["id"],)) == [
        (reader.id, "assigned")]
    queue = ok(client.get("/reader/queue", headers=reader.h))
    assert [q["id"] for q in queue] == [o["id"]]
    ok(client.post(f"/orders/{o['id']}/start", headers=reader.h))
    up = ok(client.post(f"/orders/{o['id']}/output", content=audio, headers={**reader.h, "Content-Type": "audio/mpeg"}))
    media = up["output_media_id"]
    assert api.sql("select kind, content_type, bytes, sha256, duration_sec from media_assets where id = %s",
                   (media,)) == [("audio", "audio/mpeg", len(audio), hashlib.sha256(audio).hexdigest(), 2)]
    sub = ok(client.post(f"/orders/{o['id']}/submit", headers=reader.h))
    assert sub["status"] == "awaiting_approval" and sub["review_by"] is not None

    # not approved yet: the client cannot have the audio
    problem(client.get(f"/media/{media}/url", headers=c.h), 404, "not_found")
    assert [q["id"] for q in ok(client.get("/monitor/queue", headers=monitor.h))] == [o["id"]]

    done = ok(client.post(f"/monitor/orders/{o['id']}/approve", json={}, headers=monitor.h))
    assert done["status"] == "delivered" and done["approved_sha256"] == hashlib.sha256(audio).hexdigest()
    mine = ok(client.get(f"/orders/{o['id']}", headers=c.h))
    assert mine["audio_media_id"] == media and mine["approved_sha256"] is None and mine["client_id"] is None

    signed = ok(client.get(f"/media/{media}/url", headers=c.h))
    r = client.get(signed["url"])  # no bearer needed: the signature is the authority
    assert r.status_code == 200 and r.content == audio and r.headers["content-type"] == "audio/mpeg"
    assert r.headers["cache-control"] == "private, no-store"

    q = parse_qs(urlparse(signed["url"]).query)
    base = f"/media/{media}/content?sha={q['sha'][0]}"
    problem(client.get(f"{base}&exp={int(q['exp'][0]) + 60}&sig={q['sig'][0]}"), 403, "invalid_signature")
    problem(client.get(f"{base}&exp={q['exp'][0]}&sig={q['sig'][0][:-2]}AA"), 403, "invalid_signature")
    problem(client.get(f"/media/{media + 1}/content?sha={q['sha'][0]}&exp={q['exp'][0]}&sig={q['sig'][0]}"), 403)
    from samia.media.store import signed_url
    expired, _ = signed_url(api.settings, media, q["sha"][0], now=time.time() - 3600)
    problem(client.get(expired), 403, "url_expired")

    # every transition is in the audit log; the approval is a moderation act
    events = [e for (e,) in api.sql("select event from audit_log where entity = 'order' and entity_id = %s "
                                    "order by id", (str(o["id"]),))]
    assert events == ["order.created", "order.assigned", "order.in_progress", "order.output_uploaded",
                      "order.awaiting_approval", "order.approved", "order.delivered"]
    assert api.sql("select actor_id::text, action from moderation_actions where target_id = %s",
                   (str(o["id"]),)) == [(monitor.id, "approve")]
    assert api.sql("select template from notification_outbox where recipient_id = %s", (c.id,)) == [
        ("reading_delivered",)]
    ok(client.post(f"/orders/{o['id']}/archive", headers=c.h))


def test_a_file_swapped_in_storage_after_approval_is_never_served(client, api, reader, monitor, admin, audio,
                                                                  data_dir) -> None:
    c = api.user("client")
    o = order(client, c)["id"]
    produce(client, o, reader, audio, admin=admin)
    ok(client.post(f"/monitor/orders/{o}/approve", json={}, headers=monitor.h))
    url = ok(client.get(f"/media/{ok(client.get(f'/orders/{o}', headers=c.h))['audio_media_id']}/url",
                        headers=c.h))["url"]
    (key,) = api.sql("select m.storage_key from orders o join media_assets m on m.id = o.approved_media_id "
                     "where o.id = %s", (o,))[0]
    (data_dir / "storage" / key).write_bytes(tone(freq=880))
    problem(client.get(url), 409, "media_changed")
    # and the reader cannot attach a new file to the delivered order, through the API or SQL
    problem(client.post(f"/orders/{o}/output", content=audio, headers=reader.h), 409, "illegal_transition")
    with pytest.raises(psycopg.Error, match="only while the order is in progress"):
        api.sql_as(reader.id, "with m as (insert into media_assets (owner_id, kind, storage_key, sha256) values "
                   "(auth.uid(), 'audio', 'x/swap', repeat('b', 64)) returning id) "
                   "update orders set output_media_id = m.id from m where orders.id = %s", (o,))


def test_reject_then_reupload_then_approve(client, api, reader, monitor, admin, audio) -> None:
    c = api.user("client")
    o = order(client, c)["id"]
    produce(client, o, reader, audio, admin=admin)
    problem(client.post(f"/monitor/orders/{o}/reject", json={"reason": ""}, headers=monitor.h), 422)
    rej = ok(client.post(f"/monitor/orders/{o}/reject", json={"reason": "The audio cuts off early"},
                         headers=monitor.h))
    assert rej["status"] == "rejected" and rej["reject_reason"] == "The audio cuts off early"
    assert "reject_reason" not in ok(client.get(f"/orders/{o}", headers=c.h)) or \
        ok(client.get(f"/orders/{o}", headers=c.h))["reject_reason"] is None
    assert [q["status"] for q in ok(client.get("/reader/queue", headers=reader.h)) if q["id"] == o] == ["rejected"]
    ok(client.post(f"/orders/{o}/start", headers=reader.h))
    second = tone(seconds=3, freq=523)
    ok(client.post(f"/orders/{o}/output", content=second, headers=reader.h))
    ok(client.post(f"/orders/{o}/submit", headers=reader.h))
    done = ok(client.post(f"/monitor/orders/{o}/approve", json={}, headers=monitor.h))
    assert done["approved_sha256"] == hashlib.sha256(second).hexdigest()
    media = ok(client.get(f"/orders/{o}", headers=c.h))["audio_media_id"]
    assert client.get(ok(client.get(f"/media/{media}/url", headers=c.h))["url"]).content == second
    assert api.sql("select action, reason from moderation_actions where target_id = %s order by id", (str(o),)) == [
        ("reject", "The audio cuts off early"), ("approve", None)]
    assert ("order_rejected",) in api.sql("select template from notification_outbox where recipient_id = %s",
                                          (reader.id,))


def test_illegal_moves_are_refused_and_change_nothing(client, api, reader, monitor, admin, audio) -> None:
    c, stranger = api.user("client"), api.user("client")
    o = order(client, c)["id"]
    before = api.sql("select to_jsonb(o) from orders o where id = %s", (o,))
    problem(client.post(f"/monitor/orders/{o}/deliver", headers=monitor.h), 409, "illegal_transition")
    problem(client.post(f"/orders/{o}/start", headers=reader.h), 404)  # not assigned to them: not visible
    problem(client.post(f"/orders/{o}/cancel", headers=stranger.h), 404)
    problem(client.get(f"/orders/{o}", headers=stranger.h), 404)
    assert api.sql("select to_jsonb(o) from orders o where id = %s", (o,)) == before

    produce(client, o, reader, audio, admin=admin)
    problem(client.post(f"/monitor/orders/{o}/approve", json={}, headers=reader.h), 403, "forbidden")
    problem(client.post(f"/orders/{o}/cancel", headers=c.h), 409, "illegal_transition")  # production started
    # the database refuses the same moves whichever path tries them
    with pytest.raises(psycopg.Error, match="may not move an order"):
        api.sql_as(reader.id, "update orders set status = 'approved' where id = %s", (o,))
    with pytest.raises(psycopg.Error, match="cannot go from awaiting_approval to delivered"):
        api.sql("update orders set status = 'delivered' where id = %s", (o,))
    with pytest.raises(psycopg.Error, match="not yours to change"):
        api.sql_as(c.id, "update orders set price_minor = 0, question_text = 'x' where id = %s", (o,))
    assert api.sql_as(stranger.id, "update orders set status = 'cancelled' where id = %s returning id", (o,)) == []
    assert api.sql("select status::text from orders where id = %s", (o,)) == [("awaiting_approval",)]
    assert api.sql("select count(*) from moderation_actions where target_id = %s", (str(o),)) == [(0,)]


def test_two_concurrent_approvals_make_one(served, api, reader, admin, audio) -> None:
    c = api.user("client")
    m1, m2 = api.user("monitor"), api.user("monitor")
    with httpx.Client(base_url=served, timeout=30) as http:
        for _ in range(3):  # on fresh orders each time: the race is real, not lucky
            o = http.post("/orders", json={"service": "tarot"}, headers=c.h).json()["id"]
            produce(http, o, reader, audio, admin=admin)  # type: ignore[arg-type]
            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda m, o=o: http.post(f"/monitor/orders/{o}/approve", json={},
                                                                   headers=m.h), (m1, m2)))
            assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
            assert api.sql("select count(*) from moderation_actions where target_id = %s and action = 'approve'",
                           (str(o),)) == [(1,)]
            assert api.sql("select count(*) from audit_log where entity_id = %s and event = 'order.approved'",
                           (str(o),)) == [(1,)]


def test_golden_orders_come_first_in_every_queue(client, api, reader, monitor, admin, audio) -> None:
    c = api.user("client")
    plain = order(client, c)["id"]
    gold = order(client, c, is_gold=True)["id"]
    queue = [q["id"] for q in ok(client.get("/admin/queue", headers=admin.h))]
    assert queue.index(gold) < queue.index(plain)
    g = ok(client.get(f"/orders/{gold}", headers=c.h))
    p = ok(client.get(f"/orders/{plain}", headers=c.h))
    assert g["deliver_by"] < p["deliver_by"]  # the rush clock (1 h) against the standard one (24 h)
    for o in (plain, gold):
        produce(client, o, reader, audio, admin=admin)
    mq = [q["id"] for q in ok(client.get("/monitor/queue", headers=monitor.h))]
    assert mq.index(gold) < mq.index(plain)


def test_auto_assignment_picks_the_least_loaded_eligible_reader(client, api, reader, admin) -> None:
    busy, idle, other_service = api.user("reader"), api.user("reader"), api.user("reader")
    api.sql("insert into reader_services (reader_id, service_id) select r, s.id from services s, "
            "unnest(%s::uuid[]) r where s.code = 'coffee'", ([busy.id, idle.id],))
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (other_service.id,))
    api.sql("update reader_services set active = false where reader_id = %s and service_id = "
            "(select id from services where code = 'coffee')", (reader.id,))
    try:
        assign_least_loaded(client, api, reader, admin, busy, idle, other_service)
    finally:
        api.sql("update reader_services set active = true where reader_id = %s", (reader.id,))


def assign_least_loaded(client, api, reader, admin, busy, idle, other_service) -> None:  # type: ignore[no-untyped-def]
    c = api.user("client")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    ids = []
    for _ in range(3):
        o = order(client, c, service="coffee")["id"]
        ok(client.post(f"/orders/{o}/photos", content=png, headers=c.h))
        ids.append(o)
    ok(client.post(f"/orders/{ids[0]}/assign", json={"reader_id": busy.id}, headers=admin.h))
    ok(client.post(f"/orders/{ids[1]}/assign", json={}, headers=admin.h))
    ok(client.post(f"/orders/{ids[2]}/assign", json={}, headers=admin.h))
    got = dict(api.sql("select id, assigned_reader::text from orders where id = any(%s)", (ids,)))
    assert got[ids[1]] == idle.id  # busy already had one
    assert got[ids[2]] in (busy.id, idle.id) and got[ids[2]] != reader.id
    # a blocked reader is not eligible, for auto or manual assignment
    api.sql("update profiles set blocked_at = now() where id = %s", (other_service.id,))
    o = order(client, c)["id"]
    problem(client.post(f"/orders/{o}/assign", json={"reader_id": other_service.id}, headers=admin.h), 422,
            "reader_not_eligible")


def test_coffee_needs_a_real_photo_before_assignment(client, api, reader, admin, data_dir) -> None:
    c = api.user("client")
    o = order(client, c, service="coffee")["id"]
    problem(client.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h), 409, "photos_missing")
    files_before = sorted(p for p in (data_dir / "storage").rglob("*") if p.is_file()) \
        if (data_dir / "storage").exists() else []
    media_before = api.sql("select count(*) from media_assets")
    problem(client.post(f"/orders/{o}/photos", content=b"%PDF-1.4 not a photo", headers={**c.h,
            "Content-Type": "image/png"}), 422, "unsupported_media")
    problem(client.post(f"/orders/{o}/photos", content=tone(), headers=c.h), 422, "unsupported_media")
    assert api.sql("select count(*) from media_assets") == media_before
    after = sorted(p for p in (data_dir / "storage").rglob("*") if p.is_file()) \
        if (data_dir / "storage").exists() else []
    assert after == files_before
    ok(client.post(f"/orders/{o}/photos", content=b"\xff\xd8\xff\xe0" + b"\x00" * 32, headers=c.h))
    ok(client.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h))
    problem(client.post(f"/orders/{o}/photos", content=b"\xff\xd8\xff\xe0" + b"\x00" * 32, headers=c.h), 409)


def test_audio_uploads_are_checked_from_the_bytes_and_leave_nothing_when_refused(client, api, reader, admin,
                                                                                 data_dir, settings) -> None:
    c = api.user("client")
    o = order(client, c)["id"]
    ok(client.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h))
    ok(client.post(f"/orders/{o}/start", headers=reader.h))
    count = api.sql("select count(*) from media_assets")
    files = sorted((data_dir / "storage").rglob("*")) if (data_dir / "storage").exists() else []
    # an MP3 header over garbage: sniffed as audio, refused by ffprobe
    problem(client.post(f"/orders/{o}/output", content=b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x13" * 4000,
                        headers={**reader.h, "Content-Type": "audio/mpeg"}), 422, "unsupported_media")
    problem(client.post(f"/orders/{o}/output", content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
                        headers={**reader.h, "Content-Type": "audio/mpeg"}), 422, "unsupported_media")
    too_big = b"ID3" + b"\x00" * (settings.max_audio_bytes + 1)
    problem(client.post(f"/orders/{o}/output", content=too_big, headers=reader.h), 413)
    assert api.sql("select count(*) from media_assets") == count
    assert (sorted((data_dir / "storage").rglob("*")) if (data_dir / "storage").exists() else []) == files
    assert api.sql("select output_media_id from orders where id = %s", (o,)) == [(None,)]
    # real audio in another container is accepted, with its duration read by ffprobe
    r = ok(client.post(f"/orders/{o}/output", content=tone(seconds=4, fmt="ogg"), headers=reader.h))
    assert api.sql("select content_type, duration_sec from media_assets where id = %s", (r["output_media_id"],)) == [
        ("audio/ogg", 4)]


def test_a_failed_step_after_the_write_removes_the_stored_file(client, api, reader, admin, audio, data_dir) -> None:
    c = api.user("client")
    o = order(client, c)["id"]
    ok(client.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h))
    ok(client.post(f"/orders/{o}/start", headers=reader.h))
    before = {p for p in (data_dir / "storage").rglob("*") if p.is_file()}
    # the database refuses the media row (a CHECK the upload cannot know about): the file must go too
    api.sql("alter table media_assets add constraint no_long_audio check (duration_sec < 2) not valid")
    try:
        r = client.post(f"/orders/{o}/output", content=audio, headers=reader.h)
        problem(r, 422)
    finally:
        api.sql("alter table media_assets drop constraint no_long_audio")
    assert {p for p in (data_dir / "storage").rglob("*") if p.is_file()} == before


def test_cancel_before_production_refunds_to_the_wallet_once(client, api, reader, admin) -> None:
    api.sql("update services set price_minor = 2500 where code = 'tarot'")
    try:
        c = api.user("client")
        problem(client.post("/orders", json={"service": "tarot"}, headers=c.h), 422, "insufficient_funds")
        assert api.sql("select count(*) from orders where user_id = %s", (c.id,)) == [(0,)]
        r = client.post("/wallet/topups", json={"amount_minor": 3000, "card_token": "tok_visa"}, headers=c.h)
        assert r.status_code == 201, r.text
        o = order(client, c)
        assert o["price_minor"] == 2500
        assert ok(client.get("/wallet", headers=c.h))["balance_minor"] == 500
        ok(client.post(f"/orders/{o['id']}/cancel", headers=c.h))
        assert ok(client.get("/wallet", headers=c.h))["balance_minor"] == 3000
        problem(client.post(f"/orders/{o['id']}/cancel", headers=c.h), 409, "illegal_transition")
        assert api.sql("select count(*) from payment_transactions where order_id = %s and kind = 'refund'",
                       (o["id"],)) == [(1,)]
        # test accounts cannot create live transactions: a priced order is refused by the RESTRICTIVE policy
        t = api.user("client")
        api.sql("update profiles set is_test = true where id = %s", (t.id,))
        problem(client.post("/orders", json={"service": "tarot"}, headers=t.h), 403)
        assert api.sql("select count(*) from orders where user_id = %s", (t.id,)) == [(0,)]
    finally:
        api.sql("update services set price_minor = 0 where code = 'tarot'")
    assert api.sql("select coalesce(sum(amount_minor), 0) from ledger_entries") == [(0,)]


def test_a_key_older_than_24_hours_places_a_new_order(client, api) -> None:
    c = api.user("client")
    h = {**c.h, "Idempotency-Key": "order-again"}
    first = client.post("/orders", json={"service": "tarot"}, headers=h)
    assert first.status_code == 201
    api.sql("update idempotency_keys set created_at = now() - interval '25 hours' where key = 'order-again'")
    # another body under the same key: not 422 (the old use expired); a new order, remembered in its place
    second = client.post("/orders", json={"service": "tarot", "question": "and now?"}, headers=h)
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    again = client.post("/orders", json={"service": "tarot", "question": "and now?"}, headers=h)
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == second.json()["id"]
    assert api.sql("select count(*), bool_and(created_at > now() - interval '1 minute') from idempotency_keys "
                   "where key = 'order-again'") == [(1, True)]


def test_idempotent_order_creation_and_the_hourly_limit(client, api) -> None:
    c = api.user("client")
    h = {**c.h, "Idempotency-Key": "order-1"}
    a = client.post("/orders", json={"service": "tarot"}, headers=h)
    assert a.status_code == 201 and a.headers["ratelimit-remaining"] == "9"
    # replays (ten of them) do not count against the limit, and carry its headers too
    for _ in range(10):
        b = client.post("/orders", json={"service": "tarot"}, headers=h)
        assert b.status_code == 201 and a.json()["id"] == b.json()["id"]
        assert b.headers["idempotent-replayed"] == "true" and b.headers["ratelimit-remaining"] == "9"
        assert b.headers["ratelimit-limit"] == "10" and "ratelimit-reset" in b.headers
    problem(client.post("/orders", json={"service": "coffee"}, headers=h), 422, "idempotency_key_reused")
    codes = [client.post("/orders", json={"service": "tarot"}, headers=c.h).status_code for _ in range(10)]
    assert codes.count(201) == 9 and codes[-1] == 429  # 10 per hour: only the first keyed request counted
    assert api.sql("select count(*) from orders where user_id = %s", (c.id,)) == [(10,)]


def test_a_duplicate_in_flight_is_not_counted(api) -> None:
    """While the first request with a key holds its lock, a duplicate (which answers 409) does not
    use up the limit; an unknown key does."""
    c = api.user("client")
    key = "order-in-flight"
    hit = ("select remaining from app.rate_limit_hit('orders', %s, %s::uuid, %s)")
    with psycopg.connect(api.owner_dsn) as first:
        first.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"idem:{c.id}:{key}",))
        assert api.sql(hit, (c.id, c.id, key)) == [(10,)]
        assert api.sql(hit, (c.id, c.id, key)) == [(10,)]
        assert api.sql(hit, (c.id, c.id, "another-key")) == [(9,)]
    assert api.sql(hit, (c.id, c.id, key)) == [(8,)], "once the lock is gone the key is new: it counts"

"""Export and deletion of a person's data (M38, Phase 4.1 item 8).

A client with a delivered tarot reading, a coffee order with a cup photo, a paid booking, a
wallet top-up, a review, notifications and consents; a reader who served them; another client
of the same reader. The export holds exactly the client's own view of every listed table, row
for row, and nothing of the reader or the other client. After deletion a full pg_dump and the
storage directory hold none of the client's details, the audit chain still verifies and the
reader keeps the record of the reading they delivered."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from samia.audit.verify import verify_audit
from samia.db.cluster import pg_bin

from ..helpers import Api, User, ok, problem, run_jobs
from ..orders.conftest import produce, tone
from .conftest import Person, person, png, reader_offering, slot

# what the person's own view is compared on, row for row (data_requests changes as the job runs)
COMPARED = ("profiles", "orders", "order_attachments", "tarot_v2_readings", "tarot_v2_card_selections", "bookings",
            "calls", "call_consent_logs", "payment_transactions", "ledger_entries", "reviews", "notification_outbox",
            "media_assets", "legal_acceptances", "cookie_consents", "favourites", "phone_verifications",
            "horoscope_subscriptions", "horoscope_push_log")


@pytest.fixture(scope="module")
def audio() -> bytes:
    return tone(1.5)


@pytest.fixture(scope="module")
def world(client: TestClient, api: Api, audio: bytes) -> dict[str, Any]:
    admin, monitor = api.user("admin"), api.user("monitor")
    api.sql("update services set price_minor = 1500 where code = 'tarot'")
    reader = reader_offering(api, client, "tarot", "coffee")
    api.sql("insert into reader_profiles (reader_id, display_name) values (%s, 'Madame Lune')", (reader.id,))
    me, other = person(api), person(api, dob="1972-11-30")
    for who in (me, other):
        ok(client.post("/wallet/topups", json={"amount_minor": 5000, "card_token": "tok_visa"}, headers=who.h), 201)
        o = ok(client.post("/orders", json={"service": "tarot", "question": f"Will {who.first} find love?"},
                           headers=who.h), 201)
        produce(client, o["id"], reader, audio, admin=admin)
        ok(client.post(f"/monitor/orders/{o['id']}/approve", json={}, headers=monitor.h))
        ok(client.post(f"/readings/{o['reading_id']}/reveals", json={"card_position": 1}, headers=who.h))
        ok(client.post("/reviews", json={"order_id": o["id"], "rating": 5, "text": "Wonderful reading"},
                       headers=who.h), 201)
        booking = ok(client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                                        "starts_at": slot()}, headers=who.h), 201)["id"]
        ok(client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                       headers=who.h), 201)
        ok(client.post(f"/calls/{booking}/consent", json={"consent_given": True, "recording": False},
                       headers=who.h), 201)
        ok(client.put("/consent", json={"analytics": True, "marketing": False}, headers=who.h))
        assert client.put(f"/me/favourites/{reader.id}", headers=who.h).status_code == 204
        # the daily horoscope push: opted in, and yesterday's push logged against an outbox row
        ok(client.put("/me/horoscope-subscription", json={"local_time": "07:30"}, headers=who.h))
        pushed = api.sql("insert into horoscope_push_log (user_id, day, outbox_id) select %s, current_date - 1, "
                         "(select max(id) from notification_outbox where recipient_id = %s) returning outbox_id",
                         (who.id, who.id))
        assert pushed[0][0] is not None
    coffee = ok(client.post("/orders", json={"service": "coffee", "question": "my cup"}, headers=me.h), 201)["id"]
    photo = png(f"{me.first} {me.last}")
    ok(client.post(f"/orders/{coffee}/photos", content=photo, headers={**me.h, "Content-Type": "image/png"}))
    tarot = api.sql("select id from orders where user_id = %s and service_id = (select id from services "
                    "where code = 'tarot')", (me.id,))[0][0]
    return {"admin": admin, "reader": reader, "me": me, "other": other, "photo": photo, "tarot": tarot}


def file_and_approve(client: TestClient, api: Api, user: User, kind: str, admin: User) -> int:
    req = ok(client.post("/me/data-requests", json={"kind": kind}, headers=user.h), 201)
    ok(client.post(f"/admin/data-requests/{req['id']}/approve", json={}, headers=admin.h))
    return int(req["id"])


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def canonical(rows: list[Any]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def test_the_export_is_the_persons_own_view_row_for_row_and_nothing_of_anyone_else(
        client, api, world, settings, dsns, audio) -> None:
    me, reader, other = world["me"], world["reader"], world["other"]
    rid = file_and_approve(client, api, me, "export", world["admin"])
    problem(client.get(f"/me/data-requests/{rid}/export-link", headers=me.h), 404)  # not built yet
    run_jobs(settings, dsns, "dsr_process")
    (req,) = [r for r in ok(client.get("/me/data-requests", headers=me.h)) if r["id"] == rid]
    assert (req["status"], req["downloadable"]) == ("completed", True), req
    link = ok(client.get(f"/me/data-requests/{rid}/export-link", headers=me.h))
    problem(client.get(f"/me/data-requests/{rid}/export-link", headers=other.h), 404)  # not theirs
    r = client.get(link["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    assert hashlib.sha256(r.content).hexdigest() == link["sha256"]
    files = read_zip(r.content)
    manifest = json.loads(files["manifest.json"])
    assert manifest["user_id"] == me.id and manifest["format"] == "samia-export-v1"
    # row for row, each listed table is exactly what the person sees of it under RLS (the
    # notice that the export is ready was written after it was built)
    for table in COMPARED:
        query = ("select jsonb_build_object('id', t.id, 'profile_id', t.profile_id, 'phone', t.phone, 'provider', "
                 "t.provider, 'status', t.status, 'attempts', t.attempts, 'expires_at', t.expires_at, 'created_at', "
                 "t.created_at, 'verified_at', t.verified_at) from phone_verifications t"
                 if table == "phone_verifications"
                 else psycopg.sql.SQL("select to_jsonb(t) from {} t").format(psycopg.sql.Identifier(table)))
        view = [row for (row,) in api.sql_as(me.id, query)
                if not (table == "notification_outbox" and row["template"] == "data_export_ready")]
        exported = json.loads(files[f"{table}.json"])
        assert canonical(exported) == canonical(view), table
        assert manifest["tables"][table] == len(view)
    counts = manifest["tables"]
    assert counts["orders"] == 2 and counts["bookings"] == 1 and counts["reviews"] == 1 and counts["profiles"] == 1
    assert counts["payment_transactions"] >= 3 and counts["ledger_entries"] >= 6 and counts["legal_acceptances"] == 2
    assert counts["tarot_v2_card_selections"] == 1  # only the card they turned
    assert counts["horoscope_subscriptions"] == 1 and counts["horoscope_push_log"] == 1
    assert json.loads(files["horoscope_subscriptions.json"])[0]["local_time"] == "07:30:00"
    # their files, and the reading delivered to them
    photo_id = api.sql("select id from media_assets where owner_id = %s", (me.id,))[0][0]
    assert files[f"media/{photo_id}.png"] == world["photo"]
    assert files[f"readings/order-{world['tarot']}.mp3"] == audio
    # nothing of the reader or of the other client, anywhere in the archive
    blob = b"\n".join(files.values()).lower()
    for who in (reader, other):
        for secret in (who.email, who.first, who.last, who.phone):
            assert secret.lower().encode() not in blob, (who.role, secret)
    assert b"will " + other.first.lower().encode() not in blob
    for secret in (me.email, me.first, me.phone):
        assert secret.lower().encode() in blob  # it is theirs, so it is there
    assert api.audit_rows("dsr.export_completed", str(rid))[0][5]["rows"]["orders"] == 2
    # an altered or expired link opens nothing
    problem(client.get(link["url"].replace("sig=", "sig=A")), 403, "invalid_signature")
    problem(client.get(link["url"].replace(f"sha={link['sha256']}", "sha=" + "0" * 64)), 403, "invalid_signature")


def test_an_expired_export_is_deleted_from_storage(client, api, world, settings, dsns, data_dir) -> None:
    other = world["other"]
    rid = file_and_approve(client, api, other, "export", world["admin"])
    run_jobs(settings, dsns, "dsr_process")
    link = ok(client.get(f"/me/data-requests/{rid}/export-link", headers=other.h))
    (key,) = api.sql("select export_key from data_requests where id = %s", (rid,))[0]
    assert (data_dir / "storage" / key).exists()
    api.sql("update data_requests set export_expires_at = now() - interval '1 minute' where id = %s", (rid,))
    run_jobs(settings, dsns, "dsr_sweep")
    assert not (data_dir / "storage" / key).exists()
    assert api.sql("select export_deleted_at is not null from data_requests where id = %s", (rid,)) == [(True,)]
    problem(client.get(link["url"]), 404)
    problem(client.get(f"/me/data-requests/{rid}/export-link", headers=other.h), 404)


def pg_dump(owner_dsn: str) -> str:
    return subprocess.run([pg_bin("pg_dump"), "--dbname", owner_dsn, "--no-owner", "--inserts"], check=True,
                          capture_output=True, text=True).stdout


def traces(text: bytes, who: Person) -> list[str]:
    low = text.lower()
    return [s for s in (who.email, who.first, who.last, who.phone, who.dob) if s.lower().encode() in low]


def test_deletion_leaves_no_trace_outside_pseudonymised_payments(client, api, world, settings, dsns,
                                                                 data_dir: Path) -> None:
    me, reader = world["me"], world["reader"]
    storage = data_dir / "storage"
    assert traces(pg_dump(api.owner_dsn).encode(), me), "the search finds them before"
    assert any(traces(p.read_bytes(), me) for p in storage.rglob("*") if p.is_file()), "their photo and export"
    paid = api.sql("select id, amount_minor from payment_transactions where user_id = %s order by id", (me.id,))
    ledger = api.sql("select count(*) from ledger_entries where user_id = %s", (me.id,))
    exports = [k for (k,) in api.sql("select export_key from data_requests where user_id = %s "
                                     "and export_key is not null", (me.id,))]
    assert exports and all((storage / k).exists() for k in exports)
    rid = file_and_approve(client, api, me, "delete", world["admin"])
    run_jobs(settings, dsns, "dsr_process")
    assert api.sql("select status from data_requests where id = %s", (rid,)) == [("completed",)]
    assert not any((storage / k).exists() for k in exports)
    # gone: from every table, and from storage (their photo, their earlier export)
    dump = pg_dump(api.owner_dsn)
    assert traces(dump.encode(), me) == []
    leftovers = {str(p.relative_to(storage)): traces(p.read_bytes(), me) for p in storage.rglob("*") if p.is_file()}
    assert {k: v for k, v in leftovers.items() if v} == {}
    # the account is closed and cannot come back
    problem(client.get("/me", headers=me.h), 401)
    problem(client.post("/auth/login", json={"email": me.email, "password": "a-long-test-password"}), 401)
    # the financial records the law requires stay, tied to the now anonymous id
    assert api.sql("select id, amount_minor from payment_transactions where user_id = %s order by id",
                   (me.id,)) == paid
    assert api.sql("select count(*) from ledger_entries where user_id = %s", (me.id,)) == ledger
    assert api.sql("select email, first_name, dob, phone, deleted_at is not null from profiles where id = %s",
                   (me.id,)) == [(None, None, None, None, True)]
    # no daily horoscope push any more: neither the opt-in nor the log of pushes (the other keeps theirs)
    assert api.sql("select (select count(*) from horoscope_subscriptions where user_id = %s), "
                   "(select count(*) from horoscope_push_log where user_id = %s)", (me.id, me.id)) == [(0, 0)]
    assert api.sql("select count(*) from horoscope_subscriptions s join horoscope_push_log l using (user_id) "
                   "where user_id = %s", (world["other"].id,)) == [(1,)]
    # the reader keeps the record of the reading they delivered, and its audio
    row = api.sql_as(reader.id, "select status::text, delivered_at is not null, approved_media_id, question_text "
                                "from orders where id = %s", (world["tarot"],))
    assert row and row[0][:2] == ("delivered", True) and row[0][3] is None
    (key, removed) = api.sql("select storage_key, removed_at from media_assets where id = %s", (row[0][2],))[0]
    assert removed is None and (storage / key).exists()
    # the other client of that reader is untouched
    assert ok(client.get("/me", headers=world["other"].h))["email"] == world["other"].email
    # the audit chain holds ids only and still verifies, every step of the request in it
    ok_, message = verify_audit(api.owner_dsn, settings)
    assert ok_, message
    events = [e for (e,) in api.sql("select event from audit_log where entity_id = %s and event like 'dsr.%%' "
                                    "order by id", (str(rid),))]
    assert events == ["dsr.requested", "dsr.approved", "dsr.started", "dsr.delete_completed"]
    assert api.audit_rows("privacy.erased", me.id)[0][5]["objects"] >= 2

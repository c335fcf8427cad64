"""Manual bank transfer: instructions, a longer hold, proof upload (sniffed, capped, nothing
left behind on failure), and the admins' approve/decline queue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from samia.app import create_app
from tests.conftest import make_settings
from tests.helpers import problem
from tests.payments.test_payments import PRICE, hold, reader  # noqa: F401  (module fixture)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def bank(dsns, tmp_path_factory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("data")
    settings = make_settings(BANK_TRANSFER_INSTRUCTIONS="IBAN LB00 TEST 0000; reference: your payment id",
                             SAMIA_DATA_DIR=str(data), MAX_UPLOAD_BYTES=4096)
    with TestClient(create_app(settings, dsns=dsns)) as c:
        c.data_dir = Path(data)  # type: ignore[attr-defined]
        yield c


def stored_files(bank) -> list[Path]:  # type: ignore[no-untyped-def]
    return [p for p in (bank.data_dir / "storage").rglob("*") if p.is_file()]


def start_transfer(bank, client, api, reader) -> tuple[object, int, int]:  # type: ignore[no-untyped-def]  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    r = bank.post("/payments", json={"booking_id": booking, "method": "bank_transfer"}, headers=c.h)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["booking_status"]) == ("requires_action", "held")
    assert r.json()["instructions"].startswith("IBAN")
    return c, booking, r.json()["id"]


def test_transfer_extends_the_hold_and_approval_confirms(bank, client, api, reader) -> None:  # noqa: F811
    c, booking, pay_id = start_transfer(bank, client, api, reader)
    left = api.sql("select c.expires_at - now() from reader_capacity c join bookings b on b.capacity_id = c.id "
                   "where b.id = %s", (booking,))[0][0]
    assert left > dt.timedelta(hours=47)
    admin = api.user("admin")
    before = stored_files(bank)
    r = bank.post(f"/payments/{pay_id}/proof", content=PNG, headers={**c.h, "Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["proof_media_id"], r.text
    (key, kind, sha) = api.sql("select storage_key, kind, sha256 from media_assets where id = %s",
                               (r.json()["proof_media_id"],))[0]
    assert kind == "image" and len(stored_files(bank)) == len(before) + 1
    assert (bank.data_dir / "storage" / key).read_bytes() == PNG and len(sha) == 64
    queue = bank.get("/admin/payments/transfers", headers=admin.h).json()
    assert queue[0]["id"] == pay_id and queue[0]["user_id"] == c.id
    problem(bank.get("/admin/payments/transfers", headers=c.h), 403)
    problem(bank.post(f"/admin/payments/{pay_id}/approve", headers=c.h), 403)
    r = bank.post(f"/admin/payments/{pay_id}/approve", headers=admin.h)
    assert (r.json()["status"], r.json()["booking_status"]) == ("succeeded", "confirmed")
    assert api.sql("select account, amount_minor from ledger_entries where txn_id = %s order by amount_minor",
                   (pay_id,)) == [("provider:bank_transfer", -PRICE), ("revenue", PRICE)]
    (actor,) = api.sql("select actor::text from audit_log where event = 'payment.settled' and entity_id = %s",
                       (str(pay_id),))[0]
    assert actor == admin.id
    problem(bank.post(f"/admin/payments/{pay_id}/approve", headers=admin.h), 409)
    assert pay_id not in [t["id"] for t in bank.get("/admin/payments/transfers", headers=admin.h).json()]


def test_decline_releases_and_tells_the_client(bank, client, api, reader) -> None:  # noqa: F811
    c, _booking, pay_id = start_transfer(bank, client, api, reader)
    assert bank.post(f"/payments/{pay_id}/proof", content=PDF, headers=c.h).status_code == 200
    admin = api.user("admin")
    problem(bank.post(f"/admin/payments/{pay_id}/decline", json={}, headers=admin.h), 422)
    r = bank.post(f"/admin/payments/{pay_id}/decline", json={"reason": "no transfer received"}, headers=admin.h)
    assert (r.json()["status"], r.json()["booking_status"], r.json()["failure_reason"]) == (
        "failed", "released", "no transfer received")
    assert api.sql("select template from notification_outbox where recipient_id = %s", (c.id,)) \
        == [("payment_failed",)]
    assert api.sql("select count(*) from audit_log where event = 'payment.failed' and entity_id = %s "
                   "and actor = %s", (str(pay_id), admin.id)) == [(1,)]


def test_bad_proofs_are_refused_and_leave_nothing(bank, client, api, reader) -> None:  # noqa: F811
    c, _booking, pay_id = start_transfer(bank, client, api, reader)
    before, media = stored_files(bank), api.sql("select count(*) from media_assets")[0][0]
    problem(bank.post(f"/payments/{pay_id}/proof", content=b"MZ\x90\x00 not an image",
                      headers={**c.h, "Content-Type": "image/png"}), 422, "unsupported_media")
    problem(bank.post(f"/payments/{pay_id}/proof", content=PNG + b"\x00" * 5000, headers=c.h), 413)
    other = api.user("client")
    problem(bank.post(f"/payments/{pay_id}/proof", content=PNG, headers=other.h), 404)
    assert stored_files(bank) == before, "a refused upload leaves no file"
    assert api.sql("select count(*) from media_assets")[0][0] == media


def test_transfers_need_instructions(dsns, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    with TestClient(create_app(make_settings(), dsns=dsns)) as plain:
        b = problem(plain.post("/payments", json={"booking_id": booking, "method": "bank_transfer"}, headers=c.h),
                    503, "provider_not_configured")
        assert b["setting"] == "BANK_TRANSFER_INSTRUCTIONS"

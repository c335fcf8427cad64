"""Payments: country gating, the test-account block, Idempotency-Key under real concurrency,
settlement confirming bookings, declines releasing them, and a ledger that always balances."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import psycopg
import pytest

from tests.helpers import problem

UTC = dt.UTC
PRICE = 1500


@pytest.fixture(scope="module")
def reader(api, client):  # type: ignore[no-untyped-def]
    api.sql("update services set price_minor = %s where code = 'tarot'", (PRICE,))
    r = api.user("reader")
    admin = api.user("admin")
    client.put(f"/admin/readers/{r.id}/services", json={"services": ["tarot"]}, headers=admin.h)
    rules = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]
    assert client.put("/readers/me/availability", json={"tz": "UTC", "rules": rules}, headers=r.h).status_code == 200
    return r


_slots = iter(range(10_000))


def hold(client, reader, user) -> int:  # type: ignore[no-untyped-def]
    n = next(_slots)  # 40 half-hour slots a day from 00:00, inside the reader's 00:00-23:30 rules
    when = (dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            + dt.timedelta(days=2 + n // 40, minutes=30 * (n % 40)))
    r = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                            "starts_at": when.isoformat()}, headers=user.h)
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def ledger_sum(api) -> int:  # type: ignore[no-untyped-def]
    return api.sql("select coalesce(sum(amount_minor), 0) from ledger_entries")[0][0]  # type: ignore[no-any-return]


def test_methods_are_gated_by_country(client, api, reader) -> None:
    lb, us = api.user("client", country="LB"), api.user("client", country="US")
    assert client.get("/payments/methods", headers=lb.h).json()["methods"] == ["bank_transfer", "card", "usdt",
                                                                                "wallet"]
    assert client.get("/payments/methods", headers=us.h).json()["methods"] == ["card", "square", "usdt", "wallet"]
    admin = api.user("admin")
    r = client.put("/admin/payments/methods/card", headers=admin.h,
                   json={"enabled": True, "all_countries": False, "countries": ["LB"]})
    assert r.status_code == 200 and r.json()["countries"] == ["LB"]
    try:
        booking = hold(client, reader, us)
        b = problem(client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                                headers=us.h), 422, "method_not_allowed_here")
        assert b["allowed"] == ["square", "usdt", "wallet"]
        assert api.sql("select count(*) from payment_transactions where booking_id = %s", (booking,)) == [(0,)]
    finally:
        client.put("/admin/payments/methods/card", headers=admin.h, json={"enabled": True, "all_countries": True})
    problem(client.put("/admin/payments/methods/card", headers=lb.h, json={"enabled": False, "all_countries": True}),
            403)


def test_test_accounts_cannot_create_transactions(client, api, reader) -> None:
    t = api.user("client")
    booking = hold(client, reader, t)
    api.sql("update profiles set is_test = true where id = %s", (t.id,))
    problem(client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                        headers=t.h), 403)
    assert api.sql("select count(*) from payment_transactions where user_id = %s", (t.id,)) == [(0,)]
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("held",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        api.sql_as(t.id, "insert into payment_transactions (user_id, provider, kind, amount_minor, currency) "
                         "values (%s, 'testcard', 'charge', 100, 'USD')", (t.id,))


def test_card_payment_confirms_the_booking_and_balances_the_ledger(client, api, reader) -> None:
    c = api.user("client")
    booking = hold(client, reader, c)
    r = client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                    headers=c.h)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["amount_minor"], p["booking_status"], p["provider"]) == ("succeeded", PRICE, "confirmed",
                                                                                    "testcard")
    assert api.sql("select c.status, c.kind, c.expires_at from reader_capacity c join bookings b "
                   "on b.capacity_id = c.id where b.id = %s", (booking,)) == [("confirmed", "booking", None)]
    moves = api.sql("select account, amount_minor from ledger_entries where txn_id = %s order by amount_minor",
                    (p["id"],))
    assert moves == [("provider:testcard", -PRICE), ("revenue", PRICE)]
    assert ledger_sum(api) == 0
    problem(client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                        headers=c.h), 409)


def test_idempotency_key_replays_and_refuses_a_different_body(client, api, reader) -> None:
    c = api.user("client")
    b1, b2 = hold(client, reader, c), hold(client, reader, c)
    key = f"pay-{uuid.uuid4()}"
    body = {"booking_id": b1, "method": "card", "card_token": "tok_visa"}
    first = client.post("/payments", json=body, headers={**c.h, "Idempotency-Key": key})
    again = client.post("/payments", json=body, headers={**c.h, "Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert api.sql("select count(*) from payment_transactions where booking_id = %s", (b1,)) == [(1,)]
    problem(client.post("/payments", json={**body, "booking_id": b2}, headers={**c.h, "Idempotency-Key": key}),
            422, "idempotency_key_reused")
    assert api.sql("select count(*) from payment_transactions where booking_id = %s", (b2,)) == [(0,)]
    # a declined attempt is replayed as the same 402, not charged again
    key2 = f"pay-{uuid.uuid4()}"
    declined = {"booking_id": b2, "method": "card", "card_token": "tok_chargeDeclined"}
    r1 = client.post("/payments", json=declined, headers={**c.h, "Idempotency-Key": key2})
    r2 = client.post("/payments", json=declined, headers={**c.h, "Idempotency-Key": key2})
    assert r1.status_code == r2.status_code == 402
    assert r2.json()["payment"]["id"] == r1.json()["payment"]["id"]
    assert api.sql("select count(*) from payment_transactions where booking_id = %s", (b2,)) == [(1,)]


def test_concurrent_duplicates_charge_once(served, client, api, reader) -> None:
    c = api.user("client")
    booking = hold(client, reader, c)
    key = f"pay-{uuid.uuid4()}"

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served, timeout=30) as http:
            return await asyncio.gather(*(
                http.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                          headers={**c.h, "Idempotency-Key": key}) for _ in range(10)))
    results = asyncio.run(burst())
    created = [r for r in results if r.status_code == 201]
    assert {r.status_code for r in results} <= {201, 409}
    assert sum(1 for r in created if "Idempotent-Replayed" not in r.headers) == 1
    assert all(r.json()["code"] == "idempotency_in_progress" for r in results if r.status_code == 409)
    assert len({r.json()["id"] for r in created}) == 1
    assert api.sql("select count(*) from payment_transactions where booking_id = %s", (booking,)) == [(1,)]
    assert api.sql("select count(*) from ledger_entries e join payment_transactions t on t.id = e.txn_id "
                   "where t.booking_id = %s", (booking,)) == [(2,)]


def test_a_declined_card_releases_the_slot_and_tells_the_client(client, api, reader) -> None:
    c = api.user("client")
    booking = hold(client, reader, c)
    starts = client.get(f"/bookings/{booking}", headers=c.h).json()["starts_at"]
    b = problem(client.post("/payments", json={"booking_id": booking, "method": "card",
                                               "card_token": "tok_chargeDeclined"}, headers=c.h), 402, "payment_failed")
    assert b["payment"]["status"] == "failed" and b["payment"]["booking_status"] == "released"
    slots = client.get("/availability/probe", headers=c.h, params={
        "reader": reader.id, "service": "tarot", "from": starts,
        "to": (dt.datetime.fromisoformat(starts) + dt.timedelta(minutes=30)).isoformat()}).json()["slots"]
    assert [s["starts_at"] for s in slots] == [starts.replace("+00:00", "Z")]
    assert api.sql("select template from notification_outbox where recipient_id = %s", (c.id,)) \
        == [("payment_failed",)]
    assert ledger_sum(api) == 0


def test_wallet_top_up_and_pay_never_overdraws(served, client, api, reader) -> None:
    c = api.user("client")
    r = client.post("/wallet/topups", json={"amount_minor": 2000, "card_token": "tok_visa"}, headers=c.h)
    assert r.status_code == 201, r.text
    assert client.get("/wallet", headers=c.h).json()["balance_minor"] == 2000
    b1, b2 = hold(client, reader, c), hold(client, reader, c)

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served, timeout=30) as http:
            return await asyncio.gather(*(http.post("/payments", json={"booking_id": b, "method": "wallet"},
                                                    headers=c.h) for b in (b1, b2)))
    results = asyncio.run(both())
    assert sorted(r.status_code for r in results) == [201, 402]
    assert next(r for r in results if r.status_code == 402).json()["code"] == "insufficient_funds"
    assert client.get("/wallet", headers=c.h).json()["balance_minor"] == 2000 - PRICE
    statuses = sorted(x[0] for x in api.sql("select status from bookings where id in (%s, %s)", (b1, b2)))
    assert statuses == ["confirmed", "held"], "the unpaid one keeps its hold: top up and retry"
    assert ledger_sum(api) == 0
    other = api.user("client")
    assert client.get("/wallet", headers=other.h).json()["balance_minor"] == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(other.id, "select app.wallet_balance(%s, 'USD')", (c.id,))


def test_the_ledger_refuses_unbalanced_or_edited_entries(api) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="does not balance"):
        api.sql("insert into ledger_entries (movement, account, amount_minor, currency, memo) "
                "values (gen_random_uuid(), 'revenue', 100, 'USD', 'free money')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        api.sql("update ledger_entries set amount_minor = amount_minor * 2")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(api.user("admin").id, "select app.settle_charge(1, 'x')")


def pay(client, user, booking, **body) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r = client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa", **body},
                    headers=user.h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_cancel_held_releases_and_confirmed_refunds_by_the_snapshot(client, api, reader) -> None:
    c, stranger, monitor = api.user("client"), api.user("client"), api.user("monitor")
    held = hold(client, reader, c)
    problem(client.post(f"/bookings/{held}/cancel", json={}, headers=stranger.h), 404)
    problem(client.post(f"/bookings/{held}/cancel", json={}, headers=monitor.h), 403)
    r = client.post(f"/bookings/{held}/cancel", json={"reason": "changed my mind"}, headers=c.h)
    assert r.json() == {"booking_id": held, "status": "released", "refund_minor": 0, "refund_to": None}

    full = hold(client, reader, c)
    charge = pay(client, c, full)
    r = client.post(f"/bookings/{full}/cancel", json={}, headers=c.h)
    assert r.json() == {"booking_id": full, "status": "cancelled", "refund_minor": PRICE, "refund_to": "original"}
    refund = api.sql("select provider, status, amount_minor, parent_id, provider_ref from payment_transactions "
                     "where booking_id = %s and kind = 'refund'", (full,))
    assert refund[0][:4] == ("testcard", "succeeded", PRICE, charge["id"]) and refund[0][4].startswith("rf_")
    assert api.sql("select c.status from reader_capacity c join bookings b on b.capacity_id = c.id "
                   "where b.id = %s", (full,)) == [("cancelled",)]
    assert sorted(x[0] for x in api.sql("select template from notification_outbox o join bookings b "
                                        "on b.id = (o.params->>'booking')::bigint where b.id = %s", (full,))) \
        == ["booking_cancelled", "booking_cancelled"]
    problem(client.post(f"/bookings/{full}/cancel", json={}, headers=c.h), 409, "not_cancellable")

    half = hold(client, reader, c)
    pay(client, c, half)
    # the snapshot, not the service's current policy, decides: make this booking's own curve stricter
    api.sql("""update bookings set policy = jsonb_set(policy, '{refund_curve}',
               '[{"hours_before": 1000, "refund_pct": 100}, {"hours_before": 24, "refund_pct": 50}]') where id = %s""",
            (half,))
    r = client.post(f"/bookings/{half}/cancel", json={}, headers=c.h)
    assert r.json()["refund_minor"] == PRICE // 2
    assert ledger_sum(api) == 0


def test_a_reader_cancelling_refunds_in_full_to_the_wallet_it_came_from(client, api, reader) -> None:
    c = api.user("client")
    client.post("/wallet/topups", json={"amount_minor": PRICE, "card_token": "tok_visa"}, headers=c.h)
    booking = hold(client, reader, c)
    r = client.post("/payments", json={"booking_id": booking, "method": "wallet"}, headers=c.h)
    assert r.status_code == 201 and client.get("/wallet", headers=c.h).json()["balance_minor"] == 0
    r = client.post(f"/bookings/{booking}/cancel", json={"reason": "reader unwell"}, headers=reader.h)
    assert r.json()["status"] == "cancelled" and r.json()["refund_minor"] == PRICE
    assert client.get("/wallet", headers=c.h).json()["balance_minor"] == PRICE
    (by,) = api.sql("select meta->>'by' from audit_log where event = 'booking.cancel' and entity_id = %s",
                    (str(booking),))[0]
    assert by == "reader"
    assert ledger_sum(api) == 0


def test_reconciliation_is_clean_then_reports_an_injected_mismatch(client, api, reader) -> None:
    admin, c = api.user("admin"), api.user("client")
    pay(client, c, hold(client, reader, c))
    client.post("/wallet/topups", json={"amount_minor": 700, "card_token": "tok_visa"}, headers=c.h)
    today = dt.datetime.now(UTC).date().isoformat()
    r = client.get("/admin/finance/reconciliation", params={"date": today}, headers=admin.h).json()
    assert r["balanced"] is True and r["mismatches"] == []
    by = {(t["provider"], t["kind"]): t for t in r["totals"]}
    assert by[("testcard", "topup")]["amount_minor"] >= 700 and by[("testcard", "charge")]["payments"] >= 1
    # inject: money the provider reports taken with no ledger movement, and a booking confirmed unpaid
    txn = api.sql("insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency) "
                  "values (%s, 'stripe', 'charge', 'succeeded', 999, 'USD') returning id", (c.id,))[0][0]
    unpaid = hold(client, reader, c)
    api.sql("update bookings set status = 'confirmed', confirmed_at = now() where id = %s", (unpaid,))
    r = client.get("/admin/finance/reconciliation", params={"date": today}, headers=admin.h).json()
    found = {(m["kind"], m["ref"]) for m in r["mismatches"]}
    assert r["balanced"] is False
    assert found == {("missing_ledger", f"payment:{txn}"), ("booking_unpaid", f"booking:{unpaid}")}
    problem(client.get("/admin/finance/reconciliation", headers=c.h), 403)


def test_same_key_with_a_different_amount_is_422(client, api) -> None:
    c = api.user("client")
    key = f"top-{uuid.uuid4()}"
    first = client.post("/wallet/topups", json={"amount_minor": 1000, "card_token": "tok_visa"},
                        headers={**c.h, "Idempotency-Key": key})
    assert first.status_code == 201
    problem(client.post("/wallet/topups", json={"amount_minor": 2000, "card_token": "tok_visa"},
                        headers={**c.h, "Idempotency-Key": key}), 422, "idempotency_key_reused")
    assert client.get("/wallet", headers=c.h).json()["balance_minor"] == 1000


@pytest.mark.parametrize(("token", "status"), [("pm_card_visa", 201), ("pm_card_mastercard_debit", 201),
                                               ("tok_amex", 201), ("pm_card_chargeDeclined", 402),
                                               ("pm_card_chargeDeclinedExpiredCard", 402)])
def test_the_test_processor_takes_stripes_documented_test_cards(client, api, token, status) -> None:
    c = api.user("client")
    r = client.post("/wallet/topups", json={"amount_minor": 500, "card_token": token}, headers=c.h)
    assert r.status_code == status, r.text
    assert client.get("/wallet", headers=c.h).json()["balance_minor"] == (500 if status == 201 else 0)


def test_an_unknown_test_card_names_the_ones_that_work(client, api) -> None:
    c = api.user("client")
    body = problem(client.post("/wallet/topups", json={"amount_minor": 500, "card_token": "tok_unknown"},
                               headers=c.h), 422)
    assert "pm_card_visa" in body["detail"] and "tok_chargeDeclined" in body["detail"]

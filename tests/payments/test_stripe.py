"""The Stripe adapter through the official SDK against a fake Stripe API on loopback, and
webhooks signed and verified with the SDK's own helpers."""

from __future__ import annotations

import json
import time
import uuid
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
import stripe
from fastapi.testclient import TestClient

from samia.app import create_app
from tests.conftest import make_settings
from tests.helpers import JsonHandler, problem, serving
from tests.payments.test_payments import PRICE, hold, reader  # noqa: F401  (module fixture)

SECRET = "whsec_test_" + "s" * 24
KEY = "sk_test_" + "k" * 24


class FakeStripe(JsonHandler):
    requests: ClassVar[list[tuple[str, dict[str, list[str]], str | None]]] = []
    by_key: ClassVar[dict[str, tuple[int, dict]]] = {}  # type: ignore[type-arg]


    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        key = self.headers.get("Idempotency-Key")
        self.requests.append((self.path, form, key))
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self.reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
        if key in self.by_key:
            return self.reply(*self.by_key[key])
        if self.path == "/v1/refunds":
            answer = (200, {"id": f"re_{uuid.uuid4().hex[:12]}", "object": "refund", "status": "succeeded",
                            "amount": int(form["amount"][0]), "payment_intent": form["payment_intent"][0]})
            self.by_key[key or ""] = answer
            return self.reply(*answer)
        pm = form["payment_method"][0]
        pi = {"id": f"pi_{uuid.uuid4().hex[:12]}", "object": "payment_intent", "amount": int(form["amount"][0]),
              "currency": form["currency"][0]}
        if pm == "pm_card_chargeDeclined":
            answer = (402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                                      "message": "Your card was declined."}})
        elif pm == "pm_card_authenticationRequired":
            answer = (200, {**pi, "status": "requires_action", "client_secret": pi["id"] + "_secret_x"})
        else:
            answer = (200, {**pi, "status": "succeeded", "client_secret": pi["id"] + "_secret_x"})
        if key:
            self.by_key[key] = answer
        self.reply(*answer)



@pytest.fixture(scope="module")
def stripe_app(dsns):  # type: ignore[no-untyped-def]
    with serving(FakeStripe) as url:
        settings = make_settings(CARD_PROVIDER="stripe", STRIPE_API_KEY=KEY, STRIPE_WEBHOOK_SECRET=SECRET,
                                 STRIPE_API_BASE=url)
        with TestClient(create_app(settings, dsns=dsns)) as c:
            yield c


def signed(event: dict) -> tuple[bytes, dict[str, str]]:  # type: ignore[type-arg]
    payload = json.dumps(event)
    return payload.encode(), {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload, SECRET),
                              "Content-Type": "application/json"}


def event(kind: str, intent_id: str, **extra: object) -> dict:  # type: ignore[type-arg]
    return {"id": f"evt_{uuid.uuid4().hex[:12]}", "object": "event", "type": kind,
            "data": {"object": {"id": intent_id, "object": "payment_intent", **extra}}}


def test_the_idempotency_key_is_passed_to_stripe(stripe_app, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    key = f"pay-{uuid.uuid4()}"
    r = stripe_app.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "pm_card_visa"},
                        headers={**c.h, "Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert (r.json()["provider"], r.json()["status"], r.json()["booking_status"]) == ("stripe", "succeeded",
                                                                                      "confirmed")
    path, form, sent_key = FakeStripe.requests[-1]
    assert (path, sent_key, form["amount"], form["currency"]) == ("/v1/payment_intents", key, [str(PRICE)], ["usd"])
    ref = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]
    assert ref.startswith("pi_")
    accounts = api.sql("select account from ledger_entries e join payment_transactions t on t.id = e.txn_id "
                       "where t.booking_id = %s order by e.amount_minor", (booking,))
    assert accounts == [("provider:stripe",), ("revenue",)]


def test_a_stripe_decline_releases_the_hold(stripe_app, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    b = problem(stripe_app.post("/payments", json={"booking_id": booking, "method": "card",
                                                   "card_token": "pm_card_chargeDeclined"}, headers=c.h),
                402, "payment_failed")
    assert b["detail"] == "Your card was declined." and b["payment"]["booking_status"] == "released"


def test_webhook_settles_once_and_bad_signatures_change_nothing(stripe_app, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    r = stripe_app.post("/payments", json={"booking_id": booking, "method": "card",
                                           "card_token": "pm_card_authenticationRequired"}, headers=c.h)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["booking_status"]) == ("requires_action", "held")
    assert r.json()["client_secret"].endswith("_secret_x")
    intent = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]

    # a "succeeded" event for less than the charge, or another currency, settles nothing
    for short in ({"amount_received": PRICE - 1, "currency": "usd"}, {"amount_received": PRICE, "currency": "eur"}, {}):
        b, h = signed(event("payment_intent.succeeded", intent, **short))
        assert stripe_app.post("/webhooks/stripe", content=b, headers=h).json() == {"status": "amount_mismatch"}
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("held",)]
    assert len(api.audit_rows("payment.amount_mismatch")) >= 3
    api.sql("delete from webhook_events")

    succeeded = event("payment_intent.succeeded", intent, amount_received=PRICE, currency="usd")
    body, headers = signed(succeeded)
    forged = {**headers, "Stripe-Signature": headers["Stripe-Signature"][:-4] + "0000"}
    problem(stripe_app.post("/webhooks/stripe", content=body, headers=forged), 400, "invalid_signature")
    problem(stripe_app.post("/webhooks/stripe", content=body.replace(b"succeeded", b"succeeded "), headers=headers),
            400, "invalid_signature")
    stale = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=int(time.time()) - 600)
    problem(stripe_app.post("/webhooks/stripe", content=body, headers={**headers, "Stripe-Signature": stale}),
            400, "invalid_signature")
    problem(stripe_app.post("/webhooks/stripe", content=body), 400, "invalid_signature")
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("held",)]
    assert api.sql("select count(*) from webhook_events") == [(0,)]

    assert stripe_app.post("/webhooks/stripe", content=body, headers=headers).json() == {"status": "applied"}
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("confirmed",)]
    body2, headers2 = signed(succeeded)  # the same event delivered again, freshly signed
    assert stripe_app.post("/webhooks/stripe", content=body2, headers=headers2).json() == {"status": "duplicate"}
    assert api.sql("select count(*) from ledger_entries e join payment_transactions t on t.id = e.txn_id "
                   "where t.booking_id = %s", (booking,)) == [(2,)]


def test_payment_failed_webhook_releases_and_unknown_events_are_ignored(stripe_app, client, api,
                                                                         reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    stripe_app.post("/payments", json={"booking_id": booking, "method": "card",
                                       "card_token": "pm_card_authenticationRequired"}, headers=c.h)
    intent = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]
    body, headers = signed(event("payment_intent.payment_failed", intent,
                                 last_payment_error={"message": "Authentication failed."}))
    assert stripe_app.post("/webhooks/stripe", content=body, headers=headers).json() == {"status": "applied"}
    assert api.sql("select t.status, t.failure_reason, b.status from payment_transactions t "
                   "join bookings b on b.id = t.booking_id where b.id = %s", (booking,)) \
        == [("failed", "Authentication failed.", "released")]
    body, headers = signed(event("charge.refunded", "ch_x"))
    assert stripe_app.post("/webhooks/stripe", content=body, headers=headers).json() == {"status": "ignored"}


def test_missing_stripe_settings_answer_503_naming_them(dsns, api, client, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    with TestClient(create_app(make_settings(CARD_PROVIDER="stripe"), dsns=dsns)) as app:
        b = problem(app.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "pm_card_visa"},
                             headers=c.h), 503, "provider_not_configured")
        assert b["setting"] == "STRIPE_API_KEY"
        b = problem(app.post("/webhooks/stripe", content=b"{}"), 503, "provider_not_configured")
        assert b["setting"] == "STRIPE_WEBHOOK_SECRET"
    assert api.sql("select count(*) from payment_transactions where booking_id = %s", (booking,)) == [(0,)]


def test_cancelling_a_stripe_booking_refunds_through_stripe(stripe_app, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    assert stripe_app.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "pm_card_visa"},
                           headers=c.h).status_code == 201
    intent = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]
    r = stripe_app.post(f"/bookings/{booking}/cancel", json={}, headers=c.h)
    assert r.status_code == 200 and r.json()["refund_minor"] == PRICE, r.text
    path, form, key = FakeStripe.requests[-1]
    assert (path, form["payment_intent"], form["amount"], key) == ("/v1/refunds", [intent], [str(PRICE)],
                                                                  f"refund-booking-{booking}")
    ref = api.sql("select provider_ref from payment_transactions where booking_id = %s and kind = 'refund'",
                  (booking,))[0][0]
    assert ref.startswith("re_")


def test_a_late_payment_for_a_lost_slot_is_credited_to_the_wallet(stripe_app, client, api, reader) -> None:  # noqa: F811
    c, rival = api.user("client"), api.user("client")
    booking = hold(client, reader, c)
    stripe_app.post("/payments", json={"booking_id": booking, "method": "card",
                                       "card_token": "pm_card_authenticationRequired"}, headers=c.h)
    intent = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]
    starts = client.get(f"/bookings/{booking}", headers=c.h).json()["starts_at"]
    api.sql("update reader_capacity set expires_at = now() - interval '1 second' "
            "where id = (select capacity_id from bookings where id = %s)", (booking,))
    taken = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot", "starts_at": starts},
                        headers=rival.h)
    assert taken.status_code == 201, taken.text
    body, headers = signed(event("payment_intent.succeeded", intent, amount_received=PRICE, currency="usd"))
    assert stripe_app.post("/webhooks/stripe", content=body, headers=headers).json() == {"status": "applied"}
    assert api.sql("select status, refund_to from bookings where id = %s", (booking,)) == [("released", "wallet")]
    assert client.get("/wallet", headers=c.h).json()["balance_minor"] == PRICE
    assert client.get(f"/bookings/{taken.json()['id']}", headers=rival.h).json()["status"] == "held"
    assert api.sql("select template from notification_outbox where recipient_id = %s", (c.id,)) \
        == [("late_payment_credited",)]
    assert api.sql("select coalesce(sum(amount_minor), 0) from ledger_entries") == [(0,)]


def test_a_late_payment_for_a_still_free_slot_confirms_it(stripe_app, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    stripe_app.post("/payments", json={"booking_id": booking, "method": "card",
                                       "card_token": "pm_card_authenticationRequired"}, headers=c.h)
    intent = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]
    api.sql("update reader_capacity set expires_at = now() - interval '1 second' "
            "where id = (select capacity_id from bookings where id = %s)", (booking,))
    body, headers = signed(event("payment_intent.succeeded", intent, amount_received=PRICE, currency="usd"))
    stripe_app.post("/webhooks/stripe", content=body, headers=headers)
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("confirmed",)]

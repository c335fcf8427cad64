"""Square through the official SDK against a fake Square on loopback; webhook signatures
computed independently (base64 HMAC-SHA256 over URL + body), verified by the SDK helper."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from samia.app import create_app
from tests.conftest import make_settings
from tests.helpers import JsonHandler, problem, serving
from tests.payments.test_payments import PRICE, hold, reader  # noqa: F401  (module fixture)

TOKEN, SIG_KEY, HOOK_URL = "EAAA-square-token", "square-signature-key", "https://api.samia.invalid/webhooks/square"


class FakeSquare(JsonHandler):
    seen: ClassVar[list[tuple[str, dict]]] = []  # type: ignore[type-arg]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(401, {"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED"}]})
        if self.path == "/v2/refunds":
            return self.reply(200, {"refund": {"id": f"rf_{uuid.uuid4().hex[:8]}", "status": "PENDING",
                                               "payment_id": body["payment_id"], "amount_money": body["amount_money"]}})
        pid = f"sq_{uuid.uuid4().hex[:10]}"
        if body["source_id"] == "cnon:card-nonce-declined":
            return self.reply(400, {"errors": [{"category": "PAYMENT_METHOD_ERROR", "code": "GENERIC_DECLINE",
                                                "detail": "Authorization error: 'GENERIC_DECLINE'"}],
                                    "payment": {"id": pid, "status": "FAILED"}})
        self.reply(200, {"payment": {"id": pid, "status": "COMPLETED", "amount_money": body["amount_money"]}})


@pytest.fixture(scope="module")
def square_app(dsns):  # type: ignore[no-untyped-def]
    with serving(FakeSquare) as url:
        settings = make_settings(SQUARE_ACCESS_TOKEN=TOKEN, SQUARE_LOCATION_ID="L1",
                                 SQUARE_WEBHOOK_SIGNATURE_KEY=SIG_KEY, SQUARE_WEBHOOK_URL=HOOK_URL, SQUARE_BASE_URL=url)
        with TestClient(create_app(settings, dsns=dsns)) as c:
            yield c


def signed(event: dict) -> tuple[bytes, dict[str, str]]:  # type: ignore[type-arg]
    body = json.dumps(event)
    sig = base64.b64encode(hmac.new(SIG_KEY.encode(), (HOOK_URL + body).encode(), hashlib.sha256).digest()).decode()
    return body.encode(), {"x-square-hmacsha256-signature": sig, "Content-Type": "application/json"}


def test_square_is_offered_only_where_configured_and_charges_with_a_short_key(square_app, client, api,
                                                                            reader) -> None:  # noqa: F811
    lb, us = api.user("client", country="LB"), api.user("client", country="US")
    b = problem(square_app.post("/payments", json={"booking_id": hold(client, reader, lb), "method": "square",
                                                   "card_token": "cnon:card-nonce-ok"}, headers=lb.h), 422)
    assert "square" not in b["allowed"]
    booking, key = hold(client, reader, us), f"sq-{uuid.uuid4()}-{'x' * 30}"
    r = square_app.post("/payments", headers={**us.h, "Idempotency-Key": key},
                        json={"booking_id": booking, "method": "square", "card_token": "cnon:card-nonce-ok"})
    assert r.status_code == 201, r.text
    assert (r.json()["provider"], r.json()["booking_status"]) == ("square", "confirmed")
    path, sent = FakeSquare.seen[-1]
    assert path == "/v2/payments" and sent["amount_money"] == {"amount": PRICE, "currency": "USD"}
    assert len(sent["idempotency_key"]) <= 45 and sent["location_id"] == "L1"
    r = square_app.post(f"/bookings/{booking}/cancel", json={}, headers=us.h)
    assert r.json()["refund_minor"] == PRICE
    path, sent = FakeSquare.seen[-1]
    assert path == "/v2/refunds" and sent["payment_id"].startswith("sq_")


def test_a_square_decline_releases(square_app, client, api, reader) -> None:  # noqa: F811
    us = api.user("client", country="US")
    b = problem(square_app.post("/payments", json={"booking_id": hold(client, reader, us), "method": "square",
                                                   "card_token": "cnon:card-nonce-declined"}, headers=us.h),
                402, "payment_failed")
    assert b["payment"]["booking_status"] == "released"


def test_square_webhook_signature_and_once(square_app, client, api, reader) -> None:  # noqa: F811
    us = api.user("client", country="US")
    booking = hold(client, reader, us)
    txn = api.sql("insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency, "
                  "booking_id, provider_ref) values (%s, 'square', 'charge', 'requires_action', %s, 'USD', %s, "
                  "'sq_async') returning id", (us.id, PRICE, booking))[0][0]
    event = {"event_id": str(uuid.uuid4()), "type": "payment.updated",
             "data": {"object": {"payment": {"id": "sq_async", "status": "COMPLETED",
                                             "amount_money": {"amount": PRICE, "currency": "USD"}}}}}
    body, headers = signed(event)
    problem(square_app.post("/webhooks/square", content=body + b" ", headers=headers), 400, "invalid_signature")
    problem(square_app.post("/webhooks/square", content=body), 400, "invalid_signature")
    assert square_app.post("/webhooks/square", content=body, headers=headers).json() == {"status": "applied"}
    assert square_app.post("/webhooks/square", content=body, headers=headers).json() == {"status": "duplicate"}
    assert api.sql("select t.status, b.status from payment_transactions t join bookings b on b.id = t.booking_id "
                   "where t.id = %s", (txn,)) == [("succeeded", "confirmed")]


def test_a_reader_no_show_on_a_square_booking_refunds_through_square(square_app, client, api, reader,  # noqa: F811
                                                                     dsns) -> None:
    import asyncio
    import datetime as dt

    from samia.jobs import worker
    from samia.providers.email import MemoryMailer
    from tests.payments.test_booking_lifecycle import move

    us = api.user("client", country="US")
    booking = hold(client, reader, us)
    assert square_app.post("/payments", json={"booking_id": booking, "method": "square",
                                              "card_token": "cnon:card-nonce-ok"}, headers=us.h).status_code == 201
    paid_ref = api.sql("select provider_ref from payment_transactions where booking_id = %s", (booking,))[0][0]
    move(api, booking, dt.timedelta(minutes=-45))
    api.sql("select app.defer('reader_no_show')")
    settings = square_app.app.state.platform.settings
    asyncio.run(worker.run(settings, dsns, concurrency=1, wait=False, mailer=MemoryMailer()))
    assert api.sql("select status, refund_minor from bookings where id = %s", (booking,)) == [("cancelled", PRICE)]
    path, sent = FakeSquare.seen[-1]
    assert (path, sent["payment_id"]) == ("/v2/refunds", paid_ref)

"""USDT: invoice at a fake crypto processor on loopback, then its signed IPN callback. The
signature here is computed independently from the processor's documented algorithm."""

from __future__ import annotations

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

API_KEY, IPN = "usdt-api-key-" + "a" * 20, "usdt-ipn-secret-" + "b" * 20


class FakeProcessor(JsonHandler):
    seen: ClassVar[list[tuple[dict, str | None]]] = []  # type: ignore[type-arg]


    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((body, self.headers.get("Idempotency-Key")))
        if self.headers.get("x-api-key") != API_KEY:
            return self.reply(403, {"message": "Invalid api key"})
        inv = f"inv_{uuid.uuid4().hex[:10]}"
        self.reply(200, {"id": inv, "order_id": body["order_id"], "invoice_url": f"https://pay.invalid/?iid={inv}"})



@pytest.fixture(scope="module")
def usdt_app(dsns):  # type: ignore[no-untyped-def]
    with serving(FakeProcessor) as url:
        settings = make_settings(USDT_API_KEY=API_KEY, USDT_IPN_SECRET=IPN, USDT_API_BASE=url)
        with TestClient(create_app(settings, dsns=dsns)) as c:
            yield c


def ipn(payload: dict, secret: str = IPN) -> tuple[bytes, dict[str, str]]:  # type: ignore[type-arg]
    sorted_json = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    sig = hmac.new(secret.encode(), sorted_json.encode(), hashlib.sha512).hexdigest()
    return json.dumps(payload).encode(), {"x-nowpayments-sig": sig, "Content-Type": "application/json"}


def start(usdt_app, client, api, reader) -> tuple[object, int, dict]:  # type: ignore[no-untyped-def, type-arg]  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    key = f"usdt-{uuid.uuid4()}"
    r = usdt_app.post("/payments", json={"booking_id": booking, "method": "usdt"},
                      headers={**c.h, "Idempotency-Key": key})
    assert r.status_code == 201, r.text
    sent, sent_key = FakeProcessor.seen[-1]
    assert sent_key == key and sent["price_amount"] == f"{PRICE / 100:.2f}" and sent["pay_currency"] == "usdttrc20"
    assert sent["order_id"] == str(r.json()["id"])
    return c, booking, r.json()


def test_usdt_invoice_then_signed_ipn_settles_once(usdt_app, client, api, reader) -> None:  # noqa: F811
    _c, booking, p = start(usdt_app, client, api, reader)
    assert (p["status"], p["booking_status"]) == ("requires_action", "held")
    assert p["payment_url"].startswith("https://pay.invalid/")
    invoice = api.sql("select provider_ref from payment_transactions where id = %s", (p["id"],))[0][0]
    waiting = {"payment_id": 5077125051, "invoice_id": invoice, "payment_status": "confirming",
               "price_amount": PRICE / 100, "order_id": str(p["id"])}
    assert usdt_app.post("/webhooks/usdt", content=ipn(waiting)[0], headers=ipn(waiting)[1]).json() \
        == {"status": "ignored"}
    done = {**waiting, "payment_status": "finished"}
    body, headers = ipn(done)
    problem(usdt_app.post("/webhooks/usdt", content=body, headers={**headers, "x-nowpayments-sig": "0" * 128}),
            400, "invalid_signature")
    forged_body, _ = ipn({**done, "price_amount": 0.01})
    problem(usdt_app.post("/webhooks/usdt", content=forged_body, headers=headers), 400, "invalid_signature")
    problem(usdt_app.post("/webhooks/usdt", content=body, headers=ipn(done, "wrong-secret")[1]), 400)
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("held",)]
    assert usdt_app.post("/webhooks/usdt", content=body, headers=headers).json() == {"status": "applied"}
    assert usdt_app.post("/webhooks/usdt", content=body, headers=headers).json() == {"status": "duplicate"}
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("confirmed",)]
    assert api.sql("select account, amount_minor from ledger_entries where txn_id = %s order by amount_minor",
                   (p["id"],)) == [("provider:usdt", -PRICE), ("revenue", PRICE)]


def test_expired_crypto_payment_releases_the_hold(usdt_app, client, api, reader) -> None:  # noqa: F811
    _c, booking, p = start(usdt_app, client, api, reader)
    invoice = api.sql("select provider_ref from payment_transactions where id = %s", (p["id"],))[0][0]
    body, headers = ipn({"payment_id": 1, "invoice_id": invoice, "payment_status": "expired"})
    assert usdt_app.post("/webhooks/usdt", content=body, headers=headers).json() == {"status": "applied"}
    assert api.sql("select status from bookings where id = %s", (booking,)) == [("released",)]


def test_usdt_needs_its_settings(dsns, client, api, reader) -> None:  # noqa: F811
    c = api.user("client")
    booking = hold(client, reader, c)
    with TestClient(create_app(make_settings(), dsns=dsns)) as plain:
        b = problem(plain.post("/payments", json={"booking_id": booking, "method": "usdt"}, headers=c.h), 503)
        assert b["setting"] == "USDT_API_KEY"
        b = problem(plain.post("/webhooks/usdt", content=b"{}"), 503)
        assert b["setting"] == "USDT_IPN_SECRET"
    assert api.sql("select count(*) from payment_transactions where booking_id = %s", (booking,)) == [(0,)]

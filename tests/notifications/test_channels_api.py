"""The user's and admin's routes, and the signed webhooks: Twilio STOP/START/HELP and status,
SES bounces and complaints through SNS; forged ones are 403 and change nothing. Erasure and
export cover the messaging rows; the engine's logs hold no address, number, token or text."""

from __future__ import annotations

import asyncio
import io
import json

import psycopg
from twilio.request_validator import RequestValidator

from samia.core import logging as app_logging
from samia.privacy.export import build
from samia.providers.email import MemoryMailer
from samia.providers.sms import INBOUND_PATH, STATUS_CALLBACK_PATH
from tests.helpers import ok, problem
from tests.providers.fake_twilio import TOKEN
from tests.providers.fake_webpush import Browser
from tests.providers.sns import bounce, complaint

from .conftest import work

PHONE = "+96171000111"


def twilio_post(client, settings, path: str, form: dict[str, str], *, forged: bool = False):  # type: ignore[no-untyped-def]
    url = settings.public_base_url.rstrip("/") + path
    sig = RequestValidator(TOKEN).compute_signature(url, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": sig[:-2] + "AA" if forged else sig})


def queue(api, user, channel: str = "email", template: str = "booking_reminder") -> None:  # type: ignore[no-untyped-def]
    api.sql("insert into notification_outbox (recipient_id, channel, template, params) "
            "values (%s, %s, %s, '{\"booking\": 5, \"in\": \"1 hour\"}')", (user.id, channel, template))


def last_send(api, user, channel: str) -> tuple:  # type: ignore[no-untyped-def]
    return api.sql("select state, error, key::text from notification_sends where recipient_id = %s and channel = %s "
                   "order by id desc limit 1", (user.id, channel))[0]  # type: ignore[no-any-return]


def test_inbound_stop_suppresses_sms_at_once_and_start_restores_it(client, api, settings, dsns) -> None:
    u = api.user("client")
    api.sql("update profiles set phone = %s where id = %s", (PHONE, u.id))
    ok(client.post("/me/notifications/opt-in", json={"channel": "sms"}, headers=u.h))
    stop = {"From": PHONE, "To": "+15005550006", "Body": "stop", "MessageSid": "SM1", "OptOutType": "STOP"}
    before = api.sql("select count(*) from suppressions")
    problem(twilio_post(client, settings, INBOUND_PATH, stop, forged=True), 403, "invalid_signature")
    assert api.sql("select count(*) from suppressions") == before
    assert api.sql("select opted_in from consents where user_id = %s and channel = 'sms'", (u.id,)) == [(True,)]
    r = twilio_post(client, settings, INBOUND_PATH, stop)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert api.sql("select reason from suppressions where channel = 'sms' and address_hash = app.address_hash(%s)",
                   (PHONE,)) == [("stop",)]
    assert api.sql("select opted_in, source from consents where user_id = %s and channel = 'sms'", (u.id,)) \
        == [(False, "sms_keyword")]
    queue(api, u, "sms")
    work(settings, dsns)
    assert last_send(api, u, "sms")[:2] == ("cancelled", "suppressed")
    twilio_post(client, settings, INBOUND_PATH, {**stop, "Body": "START", "OptOutType": "START"})
    assert api.sql("select count(*) from suppressions where address_hash = app.address_hash(%s)", (PHONE,)) == [(0,)]
    queue(api, u, "sms")
    work(settings, dsns)
    state, _, key = last_send(api, u, "sms")
    assert state == "sent"
    # the signed status callback moves it forward; a forged one does not
    status = {"MessageSid": "SM2", "MessageStatus": "delivered", "To": PHONE}
    path = f"{STATUS_CALLBACK_PATH}?send={key}"
    problem(twilio_post(client, settings, path, status, forged=True), 403)
    assert last_send(api, u, "sms")[0] == "sent"
    assert twilio_post(client, settings, path, status).status_code == 204
    assert last_send(api, u, "sms")[0] == "delivered"
    help_reply = twilio_post(client, settings, INBOUND_PATH, {**stop, "Body": "HELP", "OptOutType": "HELP"})
    assert "<Message>" in help_reply.text


def test_signed_bounce_and_complaint_suppress_the_address_and_a_forged_one_changes_nothing(
        client, api, settings, dsns, sns) -> None:
    signer, _, _ = sns
    bounced, complained = api.user("client"), api.user("client")
    forged = signer.notification(bounce(bounced.email))
    forged["Message"] = forged["Message"].replace("Permanent", "Transient")
    problem(client.post("/webhooks/ses", content=json.dumps(forged)), 403, "invalid_signature")
    assert api.sql("select count(*) from suppressions where address_hash = app.address_hash(%s)",
                   (bounced.email,)) == [(0,)]
    for note in (bounce(bounced.email), complaint(complained.email)):
        r = client.post("/webhooks/ses", content=json.dumps(signer.notification(note)))
        assert r.status_code == 204, r.text
    assert sorted(r for (r,) in api.sql("select reason from suppressions where address_hash in "
                                        "(app.address_hash(%s), app.address_hash(%s))",
                                        (bounced.email, complained.email))) == ["complaint", "hard_bounce"]
    queue(api, bounced)
    mailer = MemoryMailer()
    work(settings, dsns, mailer)
    assert last_send(api, bounced, "email")[:2] == ("cancelled", "suppressed") and mailer.sent == []
    # an admin overrides the bounce (audited, without the address): the next one goes
    admin = api.user("admin")
    out = ok(client.post("/admin/suppressions", json={"action": "remove", "channel": "email",
                                                      "address": bounced.email}, headers=admin.h))
    assert out["changed"] is True
    audit = api.audit_rows("messaging.suppression_remove")
    assert audit and bounced.email not in json.dumps([list(map(str, a)) for a in audit])
    problem(client.post("/admin/suppressions", json={"action": "add", "channel": "email", "address": "x@example.com"},
                        headers=bounced.h), 403)
    queue(api, bounced)
    work(settings, dsns, mailer)
    assert [m["To"] for m in mailer.sent] == [bounced.email]


def test_devices_consents_and_own_sends(client, api, settings, push_service) -> None:
    a, b = api.user("client"), api.user("client")
    browser = Browser.new()
    sub = browser.subscription(f"{push_service.origin}/push/mine")
    dev = ok(client.post("/me/devices", json={"kind": "webpush", "subscription": sub}, headers=a.h), 201)
    problem(client.post("/me/devices", json={"kind": "webpush", "subscription": {
        **sub, "endpoint": "https://evil.example.com/x"}}, headers=a.h), 422)
    problem(client.post("/me/devices", json={"kind": "apns", "token": "not-hex!"}, headers=a.h), 422)
    problem(client.delete(f"/me/devices/{dev['id']}", headers=b.h), 404)  # not theirs: never learns it exists
    assert api.sql_as(b.id, "select count(*) from devices") == [(0,)]
    ok(client.post("/me/notifications/opt-in", json={"channel": "push"}, headers=a.h))
    queue(api, a, "push", "order_assigned")
    mine = ok(client.get("/me/notifications", headers=a.h))
    assert [d["id"] for d in mine["devices"]] == [dev["id"]]
    assert [(c["channel"], c["opted_in"], c["lawful_basis"]) for c in mine["consents"]] == [("push", True, "consent")]
    assert ok(client.get("/me/notifications", headers=b.h))["sends"] == []
    assert client.delete(f"/me/devices/{dev['id']}", headers=a.h).status_code == 204
    assert api.sql("select count(*) from devices where user_id = %s", (a.id,)) == [(0,)]
    problem(client.post("/me/notifications/opt-in", json={"channel": "pigeon"}, headers=a.h), 422)
    problem(client.put("/me/quiet-hours", json={"starts": "22:00", "ends": "07:00", "tz": "Mars/Olympus"},
                       headers=a.h), 422)


def test_export_and_erasure_cover_devices_consents_and_sends(client, api, settings, dsns, app,
                                                             push_service) -> None:
    u = api.user("client")
    token = "f" * 64
    ok(client.post("/me/devices", json={"kind": "apns", "token": token}, headers=u.h), 201)
    ok(client.post("/me/notifications/opt-in", json={"channel": "email"}, headers=u.h))
    queue(api, u)
    work(settings, dsns)

    async def export() -> dict:  # type: ignore[type-arg]
        async with await psycopg.AsyncConnection.connect(dsns.app) as conn:
            built = await build(conn, app.state.platform.storage, u.id)
            return built.counts

    tables = asyncio.run(export())
    assert tables["devices"] == 1 and tables["consents"] == 1 and tables["notification_sends"] >= 2
    api.sql("select set_config('request.jwt.claims', '{\"actor\": \"test\"}', true), app.erase_user(%s, 'test')",
            (u.id,))
    for table, col in (("devices", "user_id"), ("consents", "user_id"), ("notification_sends", "recipient_id")):
        assert api.sql(f"select count(*) from {table} where {col} = %s", (u.id,)) == [(0,)], table  # noqa: S608


def test_the_engines_logs_hold_no_address_number_token_or_text(client, api, settings, dsns, push_service) -> None:
    u = api.user("client")
    phone = "+96171999888"
    api.sql("update profiles set phone = %s where id = %s", (phone, u.id))
    ok(client.post("/me/notifications/opt-in", json={"channel": "whatsapp"}, headers=u.h))
    browser = Browser.new()
    sub = browser.subscription(f"{push_service.origin}/push/logcheck")
    ok(client.post("/me/devices", json={"kind": "webpush", "subscription": sub}, headers=u.h), 201)
    gone = Browser.new().subscription(f"{push_service.origin}/push/gone")
    ok(client.post("/me/devices", json={"kind": "webpush", "subscription": gone}, headers=u.h), 201)
    queue(api, u, "email", "order_refunded")
    stream = io.StringIO()
    app_logging.configure("DEBUG", stream=stream)
    try:
        work(settings, dsns)
    finally:
        app_logging.configure("INFO")
    text = stream.getvalue()
    assert '"send_not_delivered"' in text, "the gone device was logged (by id)"
    for secret in (u.email, phone, phone[1:], sub["keys"]["p256dh"], sub["keys"]["auth"], "logcheck",
                   "A refund to your Samia Tarot wallet", "returned to your wallet"):
        assert secret not in text, f"{secret[:12]}… leaked into the log output"

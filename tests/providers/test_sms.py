"""SMS and WhatsApp through the official Twilio SDK against its Messages API faked on
loopback; X-Twilio-Signature on callbacks and inbound messages; STOP/START/HELP keywords."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from samia.core.problems import AppError
from samia.providers.phone import MemorySink
from samia.providers.sms import (
    LocalMessenger,
    TwilioMessenger,
    keyword_action,
    make_messenger,
    parse_inbound,
    parse_status,
    verify_twilio,
)
from tests.conftest import make_settings

from .fake_twilio import SID, TOKEN

BASE = "https://api.samia.example.com"


def twilio_settings(url: str, **over: object):  # type: ignore[no-untyped-def]
    env: dict[str, object] = {"SMS_PROVIDER": "twilio", "WHATSAPP_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": SID,
                              "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_BASE_URL": url, "PUBLIC_BASE_URL": BASE,
                              "TWILIO_MESSAGING_FROM": "+15005550006", "TWILIO_WHATSAPP_FROM": "+14155238886",
                              "PROVIDER_TIMEOUT": 5}
    env.update(over)
    return make_settings(**env)


def send(ch, to: str, text: str = "Your reading is ready", **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await ch.send(to, text, key=kw.pop("key", uuid.uuid4()), **kw)
        finally:
            await ch.aclose()
    return asyncio.run(go())


def test_sms_through_the_sdk(twilio) -> None:
    key = uuid.uuid4()
    ch = make_messenger(twilio_settings(twilio.url), "sms")
    assert isinstance(ch, TwilioMessenger)
    d = send(ch, "+96171123456", "قراءتك جاهزة", key=key)
    assert d.status == "sent" and d.provider_ref and d.provider_ref.startswith("SM")
    path, form = twilio.requests[-1]
    assert path.endswith("/Messages.json")
    assert (form["To"], form["From"], form["Body"]) == ("+96171123456", "+15005550006", "قراءتك جاهزة")
    callback = urlsplit(form["StatusCallback"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{BASE}/webhooks/twilio/messages/status"
    assert parse_qs(callback.query) == {"send": [str(key)]}


def test_whatsapp_free_text_template_and_messaging_service(twilio) -> None:
    ch = make_messenger(twilio_settings(twilio.url), "whatsapp")
    assert send(ch, "+33612345678").status == "sent"
    form = twilio.requests[-1][1]
    assert (form["To"], form["From"]) == ("whatsapp:+33612345678", "whatsapp:+14155238886")
    ch = make_messenger(twilio_settings(twilio.url), "whatsapp")
    assert send(ch, "+33612345678", "", content_sid="HX" + "1" * 32, content_variables={"1": "Layla"}).status == "sent"
    form = twilio.requests[-1][1]
    assert form["ContentSid"] == "HX" + "1" * 32 and json.loads(form["ContentVariables"]) == {"1": "Layla"}
    assert "Body" not in form
    svc = "MG" + "2" * 32
    ch = make_messenger(twilio_settings(twilio.url, TWILIO_MESSAGING_FROM="", TWILIO_MESSAGING_SERVICE_SID=svc), "sms")
    assert send(ch, "+96171123456").status == "sent"
    form = twilio.requests[-1][1]
    assert form["MessagingServiceSid"] == svc and "From" not in form


@pytest.mark.parametrize(("to", "status", "error"), [
    ("+15005550001", "gone", "twilio_21610"), ("+15005550002", "gone", "twilio_21211"),
    ("+15005550003", "retry", "twilio_20429"), ("+15005550004", "retry", "twilio_20500"),
    ("+15005550005", "failed", "twilio_21408"),
])
def test_twilio_errors(twilio, to, status, error) -> None:
    d = send(make_messenger(twilio_settings(twilio.url), "sms"), to)
    assert (d.status, d.error, d.provider_ref) == (status, error, None)
    assert twilio.requests[-1][1]["To"] == to


def test_unreachable_twilio_is_retried() -> None:
    d = send(make_messenger(twilio_settings("http://127.0.0.1:9"), "sms"), "+96171123456")
    assert (d.status, d.error) == ("retry", "ConnectionError")


def test_wrong_credentials_fail(twilio) -> None:
    d = send(make_messenger(twilio_settings(twilio.url, TWILIO_AUTH_TOKEN="wrong"), "sms"), "+96171123456")
    assert (d.status, d.error) == ("failed", "twilio_20003")


def expected_signature(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's documented algorithm, written out: HMAC-SHA1 over the URL and the sorted
    name+value pairs, base64."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_signatures_of_callbacks_and_inbound_messages() -> None:
    settings = make_settings(TWILIO_AUTH_TOKEN=TOKEN)
    url = f"{BASE}/webhooks/twilio/messages/status?send=5b6f0c1e-0000-4000-8000-000000000000"
    form = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "AccountSid": SID, "To": "+96171123456"}
    sig = expected_signature(url, form, TOKEN)
    verify_twilio(settings, url, form, sig)  # genuine
    for bad_url, bad_form, bad_sig in [
        (url, {**form, "MessageStatus": "undelivered"}, sig),          # a parameter changed
        (url.replace("5b6f", "0000"), form, sig),                       # another send's URL
        (url, form, expected_signature(url, form, "another-token")),    # signed with another token
        (url, form, None), (url, form, ""),                             # no signature
    ]:
        with pytest.raises(AppError) as e:
            verify_twilio(settings, bad_url, bad_form, bad_sig)
        assert (e.value.status, e.value.code) == (403, "invalid_signature")
    with pytest.raises(AppError) as e:
        verify_twilio(make_settings(), url, form, sig)
    assert (e.value.status, e.value.extra["setting"]) == (503, "TWILIO_AUTH_TOKEN")


@pytest.mark.parametrize(("body", "opt_out_type", "action"), [
    ("STOP", None, "opt_out"), (" stop ", None, "opt_out"), ("Stop.", None, "opt_out"), ("stopall", None, "opt_out"),
    ("UNSUBSCRIBE", None, "opt_out"), ("cancel", None, "opt_out"), ("End", None, "opt_out"),
    ("quit!", None, "opt_out"), ("START", None, "opt_in"), ("unstop", None, "opt_in"), ("yes", None, "opt_in"),
    ("HELP", None, "help"), ("info?", None, "help"), ("stop sending me these", None, None),
    ("Thanks for the reading", None, None), ("", None, None),
    ("توقف", "STOP", "opt_out"),        # Advanced Opt-Out matched a configured Arabic keyword
    ("ابدأ", "START", "opt_in"), ("مساعدة", "HELP", "help"),
    ("STOP", "START", "opt_in"),         # Twilio's verdict wins over our own matching
])
def test_keywords(body, opt_out_type, action) -> None:
    form = {"Body": body, **({"OptOutType": opt_out_type} if opt_out_type else {})}
    assert keyword_action(form) == action


def test_inbound_and_status_parsing() -> None:
    m = parse_inbound({"From": "whatsapp:+96171123456", "To": "whatsapp:+14155238886", "Body": "STOP",
                       "MessageSid": "SM1"})
    assert (m.channel, m.sender, m.recipient, m.message_sid, m.action) == (
        "whatsapp", "+96171123456", "+14155238886", "SM1", "opt_out")
    assert parse_inbound({"From": "+96171123456", "To": "+15005550006", "Body": "hi", "SmsSid": "SM2"}).channel == "sms"
    s = parse_status({"MessageSid": "SM3", "MessageStatus": "undelivered", "ErrorCode": "30005"}, {"send": "k"})
    assert (s.provider_ref, s.send_key, s.state, s.error_code, s.gone) == ("SM3", "k", "failed", 30005, True)
    s = parse_status({"MessageSid": "SM4", "MessageStatus": "failed", "ErrorCode": "30007"})
    assert (s.state, s.gone) == ("failed", False)  # carrier filtering: the number may be fine
    assert parse_status({"MessageSid": "SM5", "MessageStatus": "read"}).state == "opened"
    assert parse_status({"MessageSid": "SM6", "MessageStatus": "delivered"}).state == "delivered"
    assert parse_status({"MessageSid": "SM7", "MessageStatus": "receiving"}).state is None


def test_local_messenger_and_factory() -> None:
    sink = MemorySink()
    ch = make_messenger(make_settings(), "whatsapp", sink)
    assert isinstance(ch, LocalMessenger)
    assert send(ch, "+96171123456", "hello").status == "sent"
    assert sink.messages == [("whatsapp:+96171123456", "hello")]
    ch.gone.add("+96171000000")
    assert send(ch, "+96171000000").status == "gone" and len(sink.messages) == 1
    for env, setting in [({"SAMIA_ENV": "prod"}, "SMS_PROVIDER"),
                         ({"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN},
                          "TWILIO_MESSAGING_FROM"),
                         ({"SMS_PROVIDER": "twilio", "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_MESSAGING_FROM": "+1"},
                          "TWILIO_ACCOUNT_SID")]:
        with pytest.raises(AppError) as e:
            make_messenger(make_settings(**env), "sms")
        assert (e.value.status, e.value.code, e.value.extra["setting"]) == (503, "provider_not_configured", setting)
    with pytest.raises(AppError) as e:
        make_messenger(make_settings(WHATSAPP_PROVIDER="twilio", TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN),
                       "whatsapp")
    assert e.value.extra["setting"] == "TWILIO_WHATSAPP_FROM"

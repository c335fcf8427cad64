"""No message body, email address, phone number or token reaches the logs, whatever the
channel and outcome, with every logger at DEBUG (HTTP/2, OAuth and SMTP libraries included)."""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import uuid
from typing import Any

import pytest

from samia.core import logging as app_logging
from samia.providers import delivery
from samia.providers.email import SmtpMailer, build_message
from samia.providers.push import make_push
from samia.providers.push_message import PushMessage
from samia.providers.ses import make_sns_verifier
from samia.providers.sms import make_messenger
from tests.conftest import make_settings

from . import fake_smtp
from .fake_apns import GONE, OK
from .fake_twilio import SID, TOKEN
from .fake_webpush import Browser
from .sns import TOPIC, bounce
from .test_webpush import vapid_keys


class Recorder:
    """Wraps the delivery logger: keeps each event as our code passed it (before redaction)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.events = inner, []  # type: ignore[var-annotated]

    def info(self, event: str, **kw: Any) -> None:
        self.events.append({"event": event, **kw})
        self.inner.info(event, **kw)


def test_nothing_personal_or_secret_is_logged(monkeypatch, smtp, certs, push_service, google, apns, twilio,
                                              sns) -> None:
    port, _ = smtp
    google_svc, info = google
    apns_url, apns_app, apns_pem = apns
    signer, _, _ = sns
    vapid_raw, _, _ = vapid_keys()
    browser = Browser.new()
    sub = browser.subscription(f"{push_service.origin}/push/sub-logtest-Q9")
    gone_sub = browser.subscription(f"{push_service.origin}/push/gone")
    email_to, email_gone, phone, phone_gone = ("layla.logtest@example.com", "gone-logtest@example.com",
                                               "+96171555123", "+15005550001")
    fcm_token, title, body = "tok-logtest-S3CR3T", "TITLE-S3CR3T", "BODY-S3CR3T ستة"
    settings = make_settings(
        SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_USERNAME=fake_smtp.USER, SMTP_PASSWORD=fake_smtp.PASSWORD,
        SMTP_FROM="no-reply@example.com", SMTP_CA_FILE=certs.ca_file, WEBPUSH_PROVIDER="vapid",
        VAPID_PRIVATE_KEY=vapid_raw, VAPID_SUBJECT="mailto:ops@example.com",
        WEBPUSH_ENDPOINT_HOST_PATTERN=r"^127\.0\.0\.1$",
        FCM_PROVIDER="fcm", FCM_SERVICE_ACCOUNT_JSON=json.dumps(info), FCM_BASE_URL=google_svc.origin,
        APNS_PROVIDER="apns", APNS_KEY_ID="KEY1234567", APNS_TEAM_ID="TEAM123456", APNS_PRIVATE_KEY=apns_pem,
        APNS_TOPIC="com.samia.tarot", APNS_BASE_URL=apns_url, APNS_CA_FILE=certs.ca_file, SMS_PROVIDER="twilio",
        WHATSAPP_PROVIDER="twilio", TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_BASE_URL=twilio.url,
        TWILIO_MESSAGING_FROM="+15005550006", TWILIO_WHATSAPP_FROM="+14155238886", SNS_TOPIC_ARNS=TOPIC,
        SNS_CERT_HOST_PATTERN=r"^127\.0\.0\.1$", PROVIDER_TIMEOUT=5)
    message = PushMessage(title, body, {"siren_id": "1"}, critical=True)
    recorder = Recorder(delivery.log)
    monkeypatch.setattr(delivery, "log", recorder)

    async def everything() -> list[str]:
        mailer = SmtpMailer(settings)
        out = [await mailer.send_message(build_message(to=to, subject=title, text=body, key=uuid.uuid4(),
                                                       sender=mailer.sender)) for to in (email_to, email_gone)]
        for kind, addresses in (("webpush", [json.dumps(sub), json.dumps(gone_sub)]),
                                ("fcm", [fcm_token, "gone-" + fcm_token]), ("apns", [OK, GONE])):
            ch = make_push(settings, kind)  # type: ignore[arg-type]
            out += [await ch.send(a, message, key=uuid.uuid4()) for a in addresses]
            await ch.aclose()
        for channel in ("sms", "whatsapp"):
            m = make_messenger(settings, channel)  # type: ignore[arg-type]
            out += [await m.send(n, body, key=uuid.uuid4()) for n in (phone, phone_gone)]
            await m.aclose()
        verifier = make_sns_verifier(settings)
        await verifier.verify(json.dumps(signer.notification(bounce(email_to))))
        await verifier.aclose()
        return [d.status for d in out]

    stream = io.StringIO()
    app_logging.configure("DEBUG", stream=stream)
    try:
        statuses = asyncio.run(everything())
    finally:
        app_logging.configure("INFO")
    assert statuses == ["sent", "gone"] * 6
    text = stream.getvalue()
    assert text.count('"event": "delivery_attempt"') == 12, "our attempts were logged"
    assert len(recorder.events) == 12 and {e["outcome"] for e in recorder.events} == {"sent", "gone"}
    raw = json.dumps(recorder.events, ensure_ascii=False, default=str)
    secrets = [email_to, email_gone, phone, phone[1:], phone_gone, fcm_token, OK, GONE, title, body, "S3CR3T",
               "sub-logtest-Q9", sub["keys"]["p256dh"], sub["keys"]["auth"], fake_smtp.PASSWORD, vapid_raw, TOKEN,
               *google_svc.granted, apns_app.received[0].headers["authorization"].removeprefix("bearer "),
               info["private_key"].splitlines()[1]]
    for secret in secrets:
        assert secret not in text, f"{secret[:12]}… leaked into the log output"
        assert secret not in raw, f"{secret[:12]}… was handed to the logger"


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (None, None), ("soon", None),
                                                ("Wed, 02 Dec 2026 10:01:00 GMT", 60.0)])
def test_retry_after(value, seconds) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 02 Dec 2026 10:00:00 GMT").timestamp()
    assert delivery.retry_after(value, now=now) == seconds

"""SES bounces and complaints through SNS: signatures (v1 SHA1, v2 SHA256) checked against a
signing certificate served on loopback, forgeries refused, subscriptions confirmed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from samia.core.problems import AppError
from samia.providers.ses import Feedback, SnsVerifier, make_sns_verifier, parse_ses
from tests.conftest import make_settings

from .sns import TOPIC, SnsSigner, bounce, complaint

LOOPBACK = r"^127\.0\.0\.1$"


def verifier() -> SnsVerifier:
    return make_sns_verifier(make_settings(SNS_TOPIC_ARNS=f"arn:aws:sns:us-east-1:1:other, {TOPIC}",
                                           SNS_CERT_HOST_PATTERN=LOOPBACK))


def verify(v: SnsVerifier, msg: dict[str, Any] | str):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await v.verify(msg if isinstance(msg, str) else json.dumps(msg))
        finally:
            await v.aclose()
    return asyncio.run(go())


def refused(v: SnsVerifier, msg: dict[str, Any] | str) -> AppError:
    with pytest.raises(AppError) as e:
        verify(v, msg)
    assert (e.value.status, e.value.code) == (403, "invalid_signature")
    return e.value


def test_a_signed_hard_bounce_v1_verifies_and_parses(sns) -> None:
    signer, hits, _ = sns
    msg = verify(verifier(), signer.notification(bounce("Layla <layla@example.com>"), subject="Amazon SES Email"))
    assert (msg.type, msg.topic_arn, msg.subscribe_url) == ("Notification", TOPIC, None)
    assert parse_ses(msg.message) == [Feedback("layla@example.com", "hard_bounce", "0102018c-ses-id",
                                               "<5b6f0c1e-0000-4000-8000-000000000000@example.com>", "General")]
    assert hits == ["/SimpleNotificationService-1.pem"]


def test_a_signed_complaint_v2_verifies_and_the_certificate_is_cached(sns) -> None:
    signer, hits, _ = sns
    v = verifier()

    async def twice() -> list[Any]:
        out = [await v.verify(json.dumps(signer.notification(complaint(f"c{i}@example.com"), version="2")))
               for i in range(2)]
        await v.aclose()
        return out

    first, second = asyncio.run(twice())
    assert parse_ses(first.message) == [Feedback("c0@example.com", "complaint", "0102018c-ses-id-2", None, "abuse")]
    assert parse_ses(second.message)[0].address == "c1@example.com"
    assert hits == ["/SimpleNotificationService-1.pem"]  # fetched once


def test_forgeries_are_refused(sns) -> None:
    signer, hits, url = sns
    genuine = signer.notification(bounce("victim@example.com"))
    # the body changed after signing (someone wants an address suppressed)
    tampered = {**genuine, "Message": json.dumps(bounce("someone-else@example.com"))}
    assert "does not match" in (refused(verifier(), tampered).detail or "")
    # signed by another key, pointing at the genuine certificate
    other = SnsSigner.new(url)
    assert "does not match" in (refused(verifier(), {**other.notification(bounce("x@example.com")),
                                                     "SigningCertURL": signer.cert_url}).detail or "")
    # a genuine SNS message from someone else's topic
    assert "topic" in (refused(verifier(), signer.notification(bounce("x@example.com"),
                                                              topic="arn:aws:sns:eu-west-1:999:theirs")).detail or "")
    # a certificate from a host that is not SNS, or over plain http from a real-looking host
    for cert_url in ("http://evil.example.com/cert.pem", "https://sns.eu-west-1.amazonaws.com.evil.example.com/c.pem"):
        refused(verifier(), {**genuine, "SigningCertURL": cert_url})
    default = make_sns_verifier(make_settings(SNS_TOPIC_ARNS=TOPIC))
    assert "not https" in (refused(default, {**genuine, "SigningCertURL":
                                             "http://sns.eu-west-1.amazonaws.com/cert.pem"}).detail or "")
    assert "SNS host" in (refused(default, genuine).detail or "")  # loopback is no SNS host by default
    # unknown signature versions, missing fields, garbage
    refused(verifier(), {**genuine, "SignatureVersion": "3"})
    refused(verifier(), {k: v for k, v in genuine.items() if k != "Timestamp"})
    refused(verifier(), {**genuine, "Signature": "not base64!"})
    refused(verifier(), "not json")
    assert hits.count("/SimpleNotificationService-1.pem") == 2  # only the two that got as far as the key


def test_subscription_confirmation(sns) -> None:
    signer, hits, url = sns
    subscribe = f"{url}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425"
    v = verifier()

    async def go() -> str | None:
        msg = await v.verify(json.dumps(signer.confirmation(subscribe)))
        await v.confirm(msg)
        await v.aclose()
        return msg.subscribe_url

    assert asyncio.run(go()) == subscribe
    assert hits[-1].startswith("/?Action=ConfirmSubscription")
    # a confirmation whose SubscribeURL leads elsewhere is refused before anything is fetched
    refused(verifier(), signer.confirmation("http://127.0.0.2:1/?Action=ConfirmSubscription"))


def test_an_unreachable_certificate_is_503_so_sns_retries(sns) -> None:
    signer, _, url = sns
    msg = {**signer.notification(bounce("a@example.com")), "SigningCertURL": f"{url}/missing.pem"}
    with pytest.raises(AppError) as e:
        verify(verifier(), msg)
    assert (e.value.status, e.value.code) == (503, "provider_unavailable")


def test_parse_soft_bounces_deliveries_and_event_publishing() -> None:
    soft = parse_ses(json.dumps(bounce("full@example.com", kind="Transient")))
    assert [(f.kind, f.detail) for f in soft] == [("soft_bounce", "MailboxFull")]
    undetermined = bounce("u@example.com", kind="Undetermined")
    assert parse_ses(undetermined)[0].kind == "soft_bounce"
    event = {**complaint("e@example.com"), "eventType": "Complaint"}
    del event["notificationType"]
    assert parse_ses(event)[0].kind == "complaint"
    delivered = {"notificationType": "Delivery", "mail": {"messageId": "m1"},
                 "delivery": {"recipients": ["d@example.com"], "smtpResponse": "250 ok"}}
    assert parse_ses(delivered) == [Feedback("d@example.com", "delivered", "m1", None, None)]
    assert parse_ses({"eventType": "Open", "mail": {"messageId": "m2"}}) == []


def test_topics_are_required() -> None:
    with pytest.raises(AppError) as e:
        make_sns_verifier(make_settings())
    assert (e.value.status, e.value.extra["setting"]) == (503, "SNS_TOPIC_ARNS")

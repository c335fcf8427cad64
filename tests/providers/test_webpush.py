"""Web Push against a push service on loopback: the payload decrypts with the subscription's
own keys, the VAPID JWT verifies, and the service's answers map to sent/gone/retry/failed."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from samia.core.problems import AppError
from samia.providers.push import WebPushSender, WebPushSubscription, make_push, webpush_public_key
from samia.providers.push_message import PushMessage
from tests.conftest import make_settings

from .fake_webpush import Browser, b64

LOOPBACK = r"^127\.0\.0\.1$"


def vapid_keys() -> tuple[str, str, str]:
    """(raw private key as VAPID_PRIVATE_KEY usually holds it, the same as PEM, the public key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64(key.private_numbers().private_value.to_bytes(32, "big"))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = b64(key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint))
    return raw, pem, public


def sender(private: str, public: str | None = None) -> WebPushSender:
    env = {"WEBPUSH_PROVIDER": "vapid", "VAPID_PRIVATE_KEY": private, "VAPID_SUBJECT": "mailto:ops@example.com",
           "WEBPUSH_ENDPOINT_HOST_PATTERN": LOOPBACK, "PROVIDER_TIMEOUT": 5}
    if public:
        env["VAPID_PUBLIC_KEY"] = public
    ch = make_push(make_settings(**env), "webpush")
    assert isinstance(ch, WebPushSender)
    return ch


def send_all(ch: WebPushSender, jobs: list[tuple[str, PushMessage, uuid.UUID]]):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return [await ch.send(a, m, key=k) for a, m, k in jobs]
        finally:
            await ch.aclose()
    return asyncio.run(go())


def test_a_siren_push_decrypts_to_its_payload_with_the_subscription_keys(push_service) -> None:
    raw, _, public = vapid_keys()
    ch = sender(raw, public)
    assert ch.public_key == public  # what the browser subscribes with
    browser = Browser.new()
    address = json.dumps(browser.subscription(f"{push_service.origin}/push/sub-1"))
    key = uuid.uuid4()
    siren = PushMessage("Emergency call", "A client needs a reader now", {"type": "siren", "siren_id": "4711"},
                        critical=True, ttl=60)
    ar = PushMessage("قراءتك جاهزة", "استمع الآن", {"order_id": "9"}, lang="ar")
    d1, d2 = send_all(ch, [(address, siren, key), (address, ar, uuid.uuid4())])
    assert (d1.status, d1.provider_ref) == ("sent", f"{push_service.origin}/m/1") and d2.status == "sent"
    first, second = push_service.received
    assert browser.decrypt(first.body) == {"title": "Emergency call", "body": "A client needs a reader now",
                                           "data": {"type": "siren", "siren_id": "4711"}, "lang": "en", "dir": "ltr"}
    assert browser.decrypt(second.body)["dir"] == "rtl" and browser.decrypt(second.body)["title"] == "قراءتك جاهزة"
    assert b"4711" not in first.body and "قراءتك".encode() not in second.body  # encrypted on the wire
    h = {k.lower(): v for k, v in first.headers.items()}
    assert (h["urgency"], h["ttl"], h["topic"], h["content-encoding"]) == ("high", "60", key.hex, "aes128gcm")
    assert {k.lower(): v for k, v in second.headers.items()}["urgency"] == "normal"
    assert first.vapid_claims["aud"] == push_service.origin and first.vapid_claims["sub"] == "mailto:ops@example.com"
    assert first.vapid_key == public
    # the VAPID JWT is signed once per push service and reused
    assert first.headers["Authorization"] == second.headers["Authorization"]


@pytest.mark.parametrize(("path", "status", "error", "retry_after"), [
    ("gone", "gone", "http_410", None), ("busy", "retry", "http_429", 120.0),
    ("down", "retry", "http_503", None), ("big", "failed", "payload_too_large", None),
])
def test_push_service_answers(push_service, path, status, error, retry_after) -> None:
    raw, _, _ = vapid_keys()
    address = json.dumps(Browser.new().subscription(f"{push_service.origin}/push/{path}"))
    (d,) = send_all(sender(raw), [(address, PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error, d.retry_after, d.provider_ref) == (status, error, retry_after, None)
    assert len(push_service.received) == 1  # it reached the service and passed its VAPID check


def test_a_pem_key_works_and_nothing_is_sent_for_what_cannot_go(push_service) -> None:
    _, pem, public = vapid_keys()
    ch = sender(pem, public)
    good = json.dumps(Browser.new().subscription(f"{push_service.origin}/push/x"))
    stale = json.dumps({"endpoint": f"{push_service.origin}/push/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}})
    huge = PushMessage("t", "x" * 4000)
    ok, bad, big = send_all(ch, [(good, PushMessage("t", "b"), uuid.uuid4()), (stale, PushMessage("t", "b"),
                                 uuid.uuid4()), (good, huge, uuid.uuid4())])
    assert ok.status == "sent" and len(push_service.received) == 1
    assert (bad.status, bad.error) == ("gone", "invalid_subscription")
    assert (big.status, big.error) == ("failed", "payload_too_large")


def test_an_unreachable_push_service_is_retried() -> None:
    raw, _, _ = vapid_keys()
    address = json.dumps(Browser.new().subscription("http://127.0.0.1:9/push/x"))
    (d,) = send_all(sender(raw), [(address, PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error) == ("retry", "ConnectError")


def test_subscriptions_are_validated_at_registration() -> None:
    b = Browser.new()
    sub = b.subscription("https://fcm.googleapis.com/fcm/send/abc:def")
    default = make_settings().webpush_endpoint_host_pattern
    parsed = WebPushSubscription.parse(json.dumps(sub), host_pattern=default)
    assert json.loads(parsed.address()) == {"endpoint": sub["endpoint"], "keys": sub["keys"]}
    for host in ("https://updates.push.services.mozilla.com/wpush/v2/x", "https://web.push.apple.com/Q",
                 "https://wns2-par02p.notify.windows.com/w/?token=x"):
        WebPushSubscription.parse({**sub, "endpoint": host}, host_pattern=default)
    for bad, why in [({**sub, "endpoint": "https://169.254.169.254/latest"}, "known push service"),
                     ({**sub, "endpoint": "https://fcm.googleapis.com.evil.example.com/x"}, "known push service"),
                     ({**sub, "endpoint": "http://fcm.googleapis.com/x"}, "not https"),
                     ({**sub, "keys": {"p256dh": sub["keys"]["p256dh"], "auth": "AAAA"}}, "keys"),
                     ({**sub, "keys": {"p256dh": b64(b"\x04" + b"\x01" * 64), "auth": sub["keys"]["auth"]}}, "keys"),
                     ({"endpoint": sub["endpoint"]}, "endpoint and keys")]:
        with pytest.raises(ValueError, match=why):
            WebPushSubscription.parse(bad, host_pattern=default)


def test_vapid_settings() -> None:
    raw, _, public = vapid_keys()
    _, _, other_public = vapid_keys()
    with pytest.raises(AppError) as e:
        sender(raw, other_public)
    assert e.value.extra["setting"] == "VAPID_PUBLIC_KEY"
    with pytest.raises(AppError) as e:
        make_push(make_settings(WEBPUSH_PROVIDER="vapid", VAPID_SUBJECT="mailto:a@example.com"), "webpush")
    assert (e.value.status, e.value.code, e.value.extra["setting"]) == (503, "provider_not_configured",
                                                                        "VAPID_PRIVATE_KEY")
    with pytest.raises(AppError) as e:
        make_push(make_settings(WEBPUSH_PROVIDER="vapid", VAPID_PRIVATE_KEY="bm90IGEga2V5",
                                VAPID_SUBJECT="mailto:a@example.com"), "webpush")
    assert e.value.extra["setting"] == "VAPID_PRIVATE_KEY"
    # py_vapid agrees with our public key derivation
    assert base64.urlsafe_b64encode(Vapid.from_string(raw).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).decode().rstrip("=") == public


def test_the_public_key_for_browsers() -> None:
    raw, pem, public = vapid_keys()
    for private in (raw, pem):
        assert webpush_public_key(make_settings(WEBPUSH_PROVIDER="vapid", VAPID_PRIVATE_KEY=private)) == public
    for env, setting in [({}, "WEBPUSH_PROVIDER"), ({"WEBPUSH_PROVIDER": "vapid"}, "VAPID_PRIVATE_KEY"),
                         ({"WEBPUSH_PROVIDER": "vapid", "VAPID_PRIVATE_KEY": "bm90IGEga2V5"}, "VAPID_PRIVATE_KEY")]:
        with pytest.raises(AppError) as e:
            webpush_public_key(make_settings(**env))
        assert (e.value.status, e.value.extra["setting"]) == (503, setting)

"""APNs over HTTP/2 + TLS against a loopback server that checks the ES256 provider token."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from samia.core.problems import AppError
from samia.providers.apns import TOKEN_LIFETIME, ApnsSender
from samia.providers.push import make_push
from samia.providers.push_message import PushMessage
from tests.conftest import make_settings

from .fake_apns import BAD, BUSY, DOWN, GONE, OK


def apns_sender(url: str, pem: str, ca: object | None, **over: object) -> ApnsSender:
    env: dict[str, object] = {"APNS_PROVIDER": "apns", "APNS_KEY_ID": "KEY1234567", "APNS_TEAM_ID": "TEAM123456",
                              "APNS_PRIVATE_KEY": pem, "APNS_TOPIC": "com.samia.tarot", "APNS_BASE_URL": url,
                              "PROVIDER_TIMEOUT": 5}
    if ca is not None:
        env["APNS_CA_FILE"] = ca
    env.update(over)
    ch = make_push(make_settings(**env), "apns")
    assert isinstance(ch, ApnsSender)
    return ch


def run(ch: ApnsSender, jobs: list[tuple[str, PushMessage, uuid.UUID]]):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return [await ch.send(a, m, key=k) for a, m, k in jobs]
        finally:
            await ch.aclose()
    return asyncio.run(go())


def test_a_critical_push_over_http2_with_our_idempotency_key(apns, certs) -> None:
    url, app, pem = apns
    ch = apns_sender(url, pem, certs.ca_file)
    k1, k2 = uuid.uuid4(), uuid.uuid4()
    siren = PushMessage("Emergency call", "A client needs you", {"siren_id": "31"}, critical=True, ttl=60)
    d1, d2 = run(ch, [(OK, siren, k1), (OK, PushMessage("Reading ready", "Listen", lang="ar"), k2)])
    assert (d1.status, d1.provider_ref) == ("sent", str(k1)) and d2.status == "sent"
    first, second = app.received
    assert first.http_version == "2" and first.token == OK
    h = first.headers
    assert (h["apns-id"], h["apns-push-type"], h["apns-priority"], h["apns-topic"]) == (
        str(k1), "alert", "10", "com.samia.tarot")
    assert time.time() + 50 < int(h["apns-expiration"]) <= time.time() + 61
    assert first.payload == {"aps": {"alert": {"title": "Emergency call", "body": "A client needs you"},
                                     "sound": "default", "interruption-level": "time-sensitive"},
                             "siren_id": "31", "lang": "en"}
    assert second.headers["apns-priority"] == "5" and second.payload["aps"]["interruption-level"] == "active"
    assert first.jwt_claims["iss"] == "TEAM123456"
    assert first.headers["authorization"] == second.headers["authorization"]  # one provider token, reused


@pytest.mark.parametrize(("token", "status", "error"), [
    (GONE, "gone", "apns_Unregistered"), (BAD, "gone", "apns_BadDeviceToken"),
    (BUSY, "retry", "apns_TooManyRequests"), (DOWN, "retry", "apns_ServiceUnavailable"),
])
def test_apns_answers(apns, certs, token, status, error) -> None:
    url, app, pem = apns
    (d,) = run(apns_sender(url, pem, certs.ca_file), [(token, PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error) == (status, error)
    assert len(app.received) == 1


def test_the_provider_token_is_renewed_when_expired_or_old(apns, certs) -> None:
    url, app, pem = apns
    ch = apns_sender(url, pem, certs.ca_file)
    app.expire_next = True
    (d,) = run(ch, [(OK, PushMessage("t", "b"), uuid.uuid4())])
    assert d.status == "sent" and len(app.received) == 1 and len(app.expired) == 1
    assert app.received[0].headers["authorization"].removeprefix("bearer ") not in app.expired
    # renewed before Apple's one-hour limit
    ch = apns_sender(url, pem, certs.ca_file)
    first = ch.provider_token()
    assert ch.provider_token() == first
    ch._token = (first, time.time() - TOKEN_LIFETIME - 1)
    assert ch.provider_token() != first
    asyncio.run(ch.aclose())


def test_wrong_key_untrusted_server_and_bad_tokens(apns, certs) -> None:
    url, app, pem = apns
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    (d,) = run(apns_sender(url, other, certs.ca_file), [(OK, PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error) == ("failed", "apns_InvalidProviderToken")
    (d,) = run(apns_sender(url, pem, None), [(OK, PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error) == ("retry", "ConnectError")  # the certificate is not trusted
    (d,) = run(apns_sender(url, pem, certs.ca_file), [("../../admin", PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error) == ("gone", "apns_BadDeviceToken")
    (d,) = run(apns_sender(url, pem, certs.ca_file), [(OK, PushMessage("t", "x" * 5000), uuid.uuid4())])
    assert (d.status, d.error) == ("failed", "payload_too_large")
    assert app.received == []


def test_missing_and_malformed_settings() -> None:
    with pytest.raises(AppError) as e:
        make_push(make_settings(APNS_PROVIDER="apns", APNS_TEAM_ID="T", APNS_PRIVATE_KEY="x", APNS_TOPIC="t"), "apns")
    assert (e.value.status, e.value.code, e.value.extra["setting"]) == (503, "provider_not_configured", "APNS_KEY_ID")
    with pytest.raises(AppError) as e:
        make_push(make_settings(APNS_PROVIDER="apns", APNS_KEY_ID="K", APNS_TEAM_ID="T", APNS_TOPIC="t",
                                APNS_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"),
                  "apns")
    assert e.value.extra["setting"] == "APNS_PRIVATE_KEY"

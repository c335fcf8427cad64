"""Loopback fakes of every messaging provider, one per module (no network beyond 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import serving

from . import fake_apns, fake_fcm, fake_smtp
from .fake_twilio import FakeTwilioMessages
from .fake_webpush import FakePushService
from .sns import SnsSigner, cert_server
from .tls import ServerCert, make_server_cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    return make_server_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def smtp(certs: ServerCert) -> Iterator[tuple[int, fake_smtp.Handler]]:
    controller, handler = fake_smtp.start(certs)
    try:
        yield controller.port, handler
    finally:
        controller.stop()


@pytest.fixture
def push_service() -> Iterator[type[FakePushService]]:
    svc: type[FakePushService] = type("Svc", (FakePushService,), {"received": []})  # type: ignore[assignment]
    with serving(svc) as url:
        svc.origin = url
        yield svc


@pytest.fixture
def google() -> Iterator[tuple[type[fake_fcm.FakeGoogle], dict[str, Any]]]:
    svc: Any = type("Google", (fake_fcm.FakeGoogle,), {"granted": [], "sent": [], "revoke_next": False})
    with serving(svc) as url:
        info, public = fake_fcm.service_account(f"{url}/token")
        svc.public_key, svc.client_email, svc.origin = public, info["client_email"], url
        yield svc, info


@pytest.fixture
def apns(certs: ServerCert) -> Iterator[tuple[str, fake_apns.FakeApns, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    app = fake_apns.FakeApns(key.public_key(), "KEY1234567", "TEAM123456", "com.samia.tarot")
    with fake_apns.serving_h2(app, certs) as url:
        yield url, app, pem


@pytest.fixture
def twilio() -> Iterator[type[FakeTwilioMessages]]:
    svc: Any = type("Twilio", (FakeTwilioMessages,), {"requests": []})
    with serving(svc) as url:
        svc.url = url
        yield svc


@pytest.fixture
def sns() -> Iterator[tuple[SnsSigner, list[str], str]]:
    ref: list[SnsSigner] = []
    hits: list[str] = []
    with serving(cert_server(ref, hits)) as url:
        ref.append(SnsSigner.new(url))
        yield ref[0], hits, url

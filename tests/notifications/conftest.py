"""The messaging tests' app: Web Push through VAPID to a loopback push service, Twilio and
SES/SNS webhooks verifiable, everything else the local default."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from samia import db
from samia.config import Settings
from samia.jobs import worker
from samia.providers.email import MemoryMailer
from tests.conftest import make_settings
from tests.providers.conftest import push_service, sns  # noqa: F401  (fixtures used by the tests here)
from tests.providers.fake_twilio import TOKEN
from tests.providers.sns import TOPIC
from tests.providers.test_webpush import vapid_keys

VAPID_RAW = vapid_keys()[0]


def messaging_settings(**extra: object) -> Settings:
    return make_settings(WEBPUSH_PROVIDER="vapid", VAPID_PRIVATE_KEY=VAPID_RAW, VAPID_SUBJECT="mailto:ops@example.com",
                         WEBPUSH_ENDPOINT_HOST_PATTERN=r"^127\.0\.0\.1$", TWILIO_AUTH_TOKEN=TOKEN,
                         SNS_TOPIC_ARNS=TOPIC, SNS_CERT_HOST_PATTERN=r"^127\.0\.0\.1$", PROVIDER_TIMEOUT=5,
                         **extra)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return messaging_settings()


def work(settings: Settings, dsns: db.Dsns, mailer: MemoryMailer | None = None, *,
         at: dt.datetime | None = None) -> None:
    """One worker run of the delivery job (a fresh worker each time: a restart), the clock at `at`."""
    args: dict[str, Any] = {"at": at.isoformat()} if at is not None else {}
    with psycopg.connect(dsns.owner) as conn:
        conn.execute("select app.defer_job('send_outbox', %s)", (json.dumps(args),))
    asyncio.run(worker.run(settings, dsns, concurrency=1, wait=False, mailer=mailer or MemoryMailer()))


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """From a routable address (the emergency call records the caller's IP)."""
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.7", 50000)) as c:
        yield c

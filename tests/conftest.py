"""Test harness: a real PostgreSQL for every test that touches data.

One throwaway cluster per session (or TEST_DATABASE_URL), one migrated template
database, and a fresh database cloned from it for each test module.

TEST_VIA_POOLER=1 runs the whole suite in the production topology: the app's connections go
through Debian's PgBouncer in transaction mode (DB_TRANSACTION_POOLER=true), the owner's
(migrations, fixtures, jobs' queue) straight to the server."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from samia import db
from samia.app import create_app
from samia.config import Settings
from samia.db import migrate, pooler
from samia.db.cluster import Cluster
from samia.providers.email import MemoryMailer
from samia.providers.phone import MemorySink

from .analytics.pii import pii_findings
from .helpers import Api

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
VIA_POOLER = os.environ.get("TEST_VIA_POOLER") == "1"


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    """A superuser DSN on a server the suite may create databases on."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    base = Path(tempfile.mkdtemp(prefix="samia-test-", dir="/var/tmp" if os.geteuid() == 0 else None))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=False)
    dsn = cluster.start()
    try:
        yield db.with_dbname(dsn, "postgres")
    finally:
        cluster.destroy()
        base.rmdir() if base.exists() and not any(base.iterdir()) else None


@pytest.fixture(scope="session")
def bouncer(admin_dsn: str) -> Iterator[pooler.Bouncer | None]:
    """With TEST_VIA_POOLER=1: one PgBouncer (transaction pooling) in front of the test server."""
    if not VIA_POOLER:
        yield None
        return
    started = pooler.Bouncer(admin_dsn, size=8).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def template_db(admin_dsn: str) -> str:
    name = f"samia_tpl_{uuid.uuid4().hex[:8]}"
    db.create_database(admin_dsn, name)
    migrate.up(db.with_dbname(admin_dsn, name), echo=lambda _: None)
    return name


def fresh_database(admin_dsn: str, template: str) -> str:
    name = f"samia_t_{uuid.uuid4().hex[:10]}"
    db.create_database(admin_dsn, name, template=template)
    return db.with_dbname(admin_dsn, name)


@pytest.fixture(scope="module")
def owner_dsn(admin_dsn: str, template_db: str) -> Iterator[str]:
    dsn = fresh_database(admin_dsn, template_db)
    # every test login comes from one address; the per-address limits get their own test
    with psycopg.connect(dsn) as conn:
        conn.execute("update rate_limits set limit_count = 100000 where name in ('login', 'signup')")
    yield dsn
    # issue 17: whatever the module did, no email, phone or name of its users reached events_raw
    leaks = pii_findings(dsn)
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
    assert leaks == [], leaks[:5]


def make_settings(**overrides: object) -> Settings:
    env = {"SAMIA_ENV": "test", "SECRET_KEY": TEST_SECRET, "ARGON2_TIME_COST": "1",
           "ARGON2_MEMORY_KIB": "1024", "SAMIA_DATA_DIR": tempfile.gettempdir(), "LOG_LEVEL": "INFO",
           "DB_TRANSACTION_POOLER": str(VIA_POOLER).lower()}
    env.update({k: str(v) for k, v in overrides.items()})
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings()  # type: ignore[call-arg]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="module")
def dsns(owner_dsn: str, bouncer: pooler.Bouncer | None) -> db.Dsns:
    direct = db.as_user(owner_dsn, "authenticator")
    if bouncer is not None:  # as in production, the job queue keeps a session connection of its own
        name = str(psycopg.conninfo.conninfo_to_dict(owner_dsn)["dbname"])
        return db.Dsns(owner=owner_dsn, app=bouncer.dsn(name), queue=direct)
    return db.Dsns(owner=owner_dsn, app=direct)


@pytest.fixture(scope="module")
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture(scope="module")
def sms() -> MemorySink:
    return MemorySink()


@pytest.fixture(scope="module")
def app(settings: Settings, dsns: db.Dsns, mailer: MemoryMailer, sms: MemorySink):  # type: ignore[no-untyped-def]
    return create_app(settings, dsns=dsns, mailer=mailer, sms_sink=sms)


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def api(client: TestClient, dsns: db.Dsns, settings: Settings) -> Api:
    return Api(client, dsns.owner, settings)


@pytest.fixture(scope="module")
def served(dsns: db.Dsns) -> Iterator[str]:
    """The app served by uvicorn on a loopback port (real HTTP, real concurrency), with every
    optional setting present (the 503 "not configured" answers have their own tests)."""
    app = create_app(make_settings(JOB_TOKEN="served-job-token-" + "q" * 32,
                                   STRIPE_WEBHOOK_SECRET="whsec_served", USDT_IPN_SECRET="ipn_served",
                                   SQUARE_WEBHOOK_SIGNATURE_KEY="sq_served", METRICS_TOKEN="served-metrics-token-x",
                                   TWILIO_AUTH_TOKEN="served-twilio-token",
                                   SNS_TOPIC_ARNS="arn:aws:sns:eu-west-1:123456789012:served-ses",
                                   ALERTMANAGER_TOKEN="served-alertmanager-token"),
                     dsns=dsns)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)

"""M43 data freeze and clean-up: the schema-lock sign-off in the audit log, the data-QA report
(seeds 003 §13C) that fails on dirty data, the purge of test users (anonymised, payments still
refused), and logs and audit exports past their retention archived to storage with a note."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from samia.app import create_app
from samia.audit.verify import verify_audit
from samia.db import migrate
from samia.privacy.freeze import archive_now, data_qa, freeze, purge_test_users

from ..conftest import TEST_SECRET
from ..helpers import Api, ok
from .conftest import person, png


def cli(api: Api, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": api.owner_dsn, "SECRET_KEY": TEST_SECRET, "SAMIA_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "samia.cli", *args], env=env, capture_output=True, text=True,
                          check=False)


def test_data_qa_names_orphan_media_and_exits_non_zero(api, data_dir: Path) -> None:
    clean, lines = data_qa(api.owner_dsn)
    assert clean and lines[-1] == "data QA: clean", lines
    assert [line.split(":")[0] for line in lines[:3]] == ["ok   profiles_without_role", "ok   orders_without_service",
                                                          "ok   media_orphans"]
    user = api.user("client")
    (orphan,) = api.sql("insert into media_assets (owner_id, kind, storage_key, created_at) values "
                        "(%s, 'image', 'qa/orphan', now() - interval '2 days') returning id", (user.id,))[0]
    api.sql("insert into media_assets (owner_id, kind, storage_key) values (%s, 'image', 'qa/just-uploaded')",
            (user.id,))  # an upload still in flight is not an orphan yet
    clean, lines = data_qa(api.owner_dsn)
    assert not clean and f"FAIL media_orphans: 1 (e.g. {orphan})" in lines
    r = cli(api, data_dir, "data-qa")
    assert r.returncode == 1 and "FAIL media_orphans: 1" in r.stdout, r.stdout + r.stderr
    api.sql("update media_assets set removed_at = now() where id = %s", (orphan,))
    assert cli(api, data_dir, "data-qa").returncode == 0


def test_freeze_records_the_sign_off_with_migrations_and_parity(api, settings, dsns, data_dir: Path) -> None:
    admin = api.user("admin")
    refused, lines = freeze(create_app(settings, dsns=dsns), dsns, api.user("monitor").email)
    assert not refused and "not an active admin" in lines[0]
    (orphan,) = api.sql("insert into media_assets (kind, storage_key, created_at) values "
                        "('image', 'qa/orphan-2', now() - interval '2 days') returning id")[0]
    done, lines = freeze(create_app(settings, dsns=dsns), dsns, admin.email)
    assert not done and "nothing recorded" in lines[-1] and not api.audit_rows("schema.freeze")
    api.sql("update media_assets set removed_at = now() where id = %s", (orphan,))
    r = cli(api, data_dir, "freeze", "--by", admin.email)
    assert r.returncode == 0 and "signed off by" in r.stdout, r.stdout + r.stderr
    ((actor, role, _event, entity, entity_id, meta),) = api.audit_rows("schema.freeze")
    assert (actor, role, entity) == (admin.id, "admin", "schema") and entity_id == max(
        u.name for u in migrate.available() if u.kind == "migration")
    assert meta["migrations"]["004_privacy.sql"] and meta["migrations"]["schema/15_privacy.sql"]
    assert "(100%)" in meta["parity"]["summary"] and len(meta["parity"]["report"]) > 50
    assert meta["data_qa"][-1] == "data QA: clean"
    assert admin.email not in json.dumps(meta)  # the audit log holds ids


def test_purging_test_users_anonymises_them_and_their_payments_stay_refused(client, api, settings, dsns,
                                                                            data_dir: Path) -> None:
    tester, real = person(api), person(api)
    api.sql("update profiles set is_test = true where id = %s", (tester.id,))
    o = ok(client.post("/orders", json={"service": "coffee", "question": "test cup"}, headers=tester.h), 201)["id"]
    ok(client.post(f"/orders/{o}/photos", content=png(tester.first), headers={**tester.h, "Content-Type": "image/png"}))
    (key,) = api.sql("select storage_key from media_assets where owner_id = %s", (tester.id,))[0]
    assert (data_dir / "storage" / key).exists()
    users, objects = purge_test_users(settings, dsns)
    assert (users, objects) == (1, 1)
    assert not (data_dir / "storage" / key).exists()
    assert api.sql("select email, first_name, dob, is_test, deleted_at is not null from profiles where id = %s",
                   (tester.id,)) == [(None, None, None, True, True)]
    assert api.sql("select question_text from orders where id = %s", (o,)) == [(None,)]
    assert ok(client.get("/me", headers=real.h))["email"] == real.email  # real users untouched
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(tester.id, "insert into payment_transactions (user_id, provider, kind, amount_minor, currency) "
                              "values (auth.uid(), 'testcard', 'topup', 500, 'USD')")
    # the RESTRICTIVE test-account policy still stands behind the gate
    assert api.sql("select permissive from pg_policies where policyname = 'pay_tx_block_tests'") == [("RESTRICTIVE",)]
    assert api.audit_rows("privacy.test_users_purged")[-1][5] == {"users": 1}
    assert purge_test_users(settings, dsns) == (0, 0)


def test_old_logs_and_audit_exports_are_archived_with_a_retention_note(client, api, settings, dsns,
                                                                       data_dir: Path) -> None:
    user = api.user("client")
    api.sql("insert into notification_outbox (recipient_id, channel, template, status, created_at) values "
            "(%s, 'email', 'booking_reminder', 'sent', now() - interval '200 days'), "
            "(%s, 'email', 'booking_reminder', 'pending', now() - interval '200 days'), "
            "(%s, 'email', 'booking_reminder', 'sent', now() - interval '10 days')", (user.id, user.id, user.id))
    api.sql("insert into webhook_events (provider, event_id, event_type, received_at) values "
            "('stripe', 'evt_old', 'payment_intent.succeeded', now() - interval '400 days')")
    admin = api.user("admin")
    first = ok(client.post("/admin/audit/attest", headers=admin.h), 201)
    ok(client.post("/admin/audit/attest", headers=admin.h), 201)
    api.sql("update audit_attestations set created_at = now() - interval '500 days' where id = %s", (first["id"],))
    out = archive_now(settings, dsns)
    assert out == {"notification_outbox": 1, "webhook_events": 1, "audit_exports": 1}
    # the old sent notification left the table; the pending and the recent ones stayed
    assert api.sql("select status, created_at > now() - interval '30 days' from notification_outbox "
                   "where recipient_id = %s order by id", (user.id,)) == [("pending", False), ("sent", True)]
    archive = data_dir / "storage" / "archive"
    (batch,) = (archive / "notification_outbox").glob("*.jsonl.gz")
    rows = [json.loads(x) for x in gzip.decompress(batch.read_bytes()).decode().splitlines()]
    assert [(r["recipient_id"], r["status"]) for r in rows] == [(user.id, "sent")]
    note = json.loads((archive / "notification_outbox" / (batch.name + ".note.json")).read_text())
    assert note["rows"] == 1 and note["why"].startswith("sent and failed") and note["keep_until"]
    assert note["sha256"] and (archive / "webhook_events").is_dir()
    # the old audit export moved to the archive with its anchor and a note; verification still reads it
    (key,) = api.sql("select storage_key from audit_attestations where id = %s", (first["id"],))[0]
    assert key.startswith("archive/audit-exports/") and (data_dir / "storage" / key).exists()
    assert (data_dir / "storage" / (key + ".anchor.json")).exists()
    assert (data_dir / "storage" / (key + ".note.json")).exists()
    assert client.get(f"/admin/audit/attestations/{first['id']}/export", headers=admin.h).status_code == 200
    good, message = verify_audit(api.owner_dsn, settings)
    assert good and "2 signed exports" in message, message
    assert [r[5]["rows"] for r in api.audit_rows("archive.logs")] == [1, 1]
    assert archive_now(settings, dsns) == {"notification_outbox": 0, "webhook_events": 0, "audit_exports": 0}
    assert dt.datetime.fromisoformat(note["keep_until"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=700)

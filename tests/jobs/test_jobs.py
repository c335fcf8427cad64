"""The job engine: transactional defers, whitelisted tasks, the cron endpoint, idempotent
tasks run by a real worker, jittered retries, one schedule list."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient
from procrastinate import App, testing

from samia.app import create_app
from samia.jobs import tasks, worker
from samia.providers.email import MemoryMailer
from tests.conftest import make_settings
from tests.helpers import problem

TOKEN = "job-token-" + "z" * 40


def queued(api, task: str) -> int:  # type: ignore[no-untyped-def]
    return api.sql("select count(*) from procrastinate.procrastinate_jobs where task_name = %s and status = 'todo'",
                   (task,))[0][0]


def run_worker(settings, dsns, mailer=None) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(worker.run(settings, dsns, concurrency=1, wait=False, mailer=mailer or MemoryMailer()))


def test_queue_lives_outside_public(api) -> None:
    rows = api.sql("select table_schema from information_schema.tables where table_name = 'procrastinate_jobs'")
    assert rows == [("procrastinate",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(api.user("admin").id, "select count(*) from procrastinate.procrastinate_jobs")


def test_signup_queues_delivery_in_its_own_transaction(client, api, settings, dsns) -> None:
    api.sql("delete from procrastinate.procrastinate_jobs")
    email = f"jobs-{uuid.uuid4().hex[:6]}@example.com"
    body = {"email": email, "password": "correct horse battery", "dob": "1990-01-01", "country": "LB",
            "first_name": "J", "last_name": "Q"}
    assert client.post("/auth/signup", json=body).status_code == 201
    assert queued(api, "send_outbox") == 1
    assert client.post("/auth/signup", json=body).status_code == 409  # rolled back: nothing new queued
    assert queued(api, "send_outbox") == 1
    mailer = MemoryMailer()
    run_worker(settings, dsns, mailer)
    assert [m["To"] for m in mailer.sent] == [email]
    assert re.search(r"verify-email\?token=", mailer.sent[0].get_content())
    assert api.sql("select status from notification_outbox o join profiles p on p.id = o.recipient_id "
                   "where p.email = %s", (email,)) == [("sent",)]
    assert queued(api, "send_outbox") == 0
    run_worker(settings, dsns, mailer)  # idempotent: nothing is sent twice
    assert len(mailer.sent) == 1


def test_defer_is_whitelisted_and_deduplicated(api) -> None:
    api.sql("delete from procrastinate.procrastinate_jobs")
    u = api.user("client")
    first = api.sql_as(u.id, "select app.defer('purge_old')")[0][0]
    again = api.sql_as(u.id, "select app.defer('purge_old')")[0][0]
    assert first is not None and again is None
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not be deferred"):
        api.sql_as(u.id, "select app.defer('drop_everything')")


def test_cron_endpoint(api, dsns) -> None:
    api.sql("delete from procrastinate.procrastinate_jobs")
    with TestClient(create_app(make_settings(), dsns=dsns)) as c:
        b = problem(c.post("/api/cron/purge_old", headers={"X-Job-Token": TOKEN}), 503, "provider_not_configured")
        assert b["setting"] == "JOB_TOKEN"
    with TestClient(create_app(make_settings(JOB_TOKEN=TOKEN), dsns=dsns)) as c:
        problem(c.post("/api/cron/purge_old"), 401, "invalid_job_token")
        problem(c.post("/api/cron/purge_old", headers={"X-Job-Token": TOKEN[:-1] + "y"}), 401, "invalid_job_token")
        problem(c.post("/api/cron/rm_rf", headers={"X-Job-Token": TOKEN}), 404, "not_found")
        r = c.post("/api/cron/purge_old", headers={"X-Job-Token": TOKEN})
        assert r.status_code == 202
        assert r.json()["task"] == "purge_old" and isinstance(r.json()["job_id"], int)
        assert c.post("/api/cron/purge_old", headers={"X-Job-Token": TOKEN}).json()["job_id"] is None
    assert queued(api, "purge_old") == 1


def test_purge_old_removes_only_what_is_old_and_is_audited(api, settings, dsns) -> None:
    api.sql("delete from procrastinate.procrastinate_jobs")
    u = api.user("client")
    api.sql("""insert into app_auth.sessions (id, user_id, created_at, revoked_at)
               values ('00000000-0000-4000-8000-000000000001', %s, now() - interval '90 days',
                       now() - interval '60 days')""", (u.id,))
    api.sql("""insert into app_auth.refresh_tokens (token_hash, session_id, issued_at, expires_at)
               values ('old-token-hash', '00000000-0000-4000-8000-000000000001', now() - interval '90 days',
                       now() - interval '60 days')""")
    api.sql("""insert into phone_verifications (profile_id, phone, provider, status, expires_at, created_at)
               values (%s, '+96171000999', 'local', 'expired', now() - interval '40 days',
                       now() - interval '40 days')""", (u.id,))
    live_sessions = api.sql("select count(*) from app_auth.sessions where user_id = %s", (u.id,))[0][0]
    api.sql("select app.defer('purge_old')")
    run_worker(settings, dsns)
    assert api.sql("select count(*) from app_auth.sessions where user_id = %s", (u.id,))[0][0] == live_sessions - 1
    assert api.sql("select count(*) from app_auth.refresh_tokens where token_hash = 'old-token-hash'") == [(0,)]
    assert api.sql("select count(*) from phone_verifications where profile_id = %s", (u.id,)) == [(0,)]
    (actor, role, _e, _ent, _id, meta), = api.audit_rows("job.purge_old")[-1:]
    assert (actor, role) == (None, "system:purge_old")
    assert meta["refresh_tokens"] >= 1 and meta["sessions"] >= 1 and meta["phone_verifications"] >= 1
    # the user's live session still works
    assert api.client.get("/me", headers=u.h).status_code == 200


def test_backoff_is_exponential_with_full_jitter() -> None:
    class FakeJob:
        def __init__(self, attempts: int) -> None:
            self.attempts = attempts
    strategy = tasks.JitteredBackoff(max_attempts=8, base=2.0, cap=60.0)
    for attempts in range(7):
        ceiling = min(60.0, 2.0 * 2 ** attempts)
        draws = []
        for _ in range(200):
            decision = strategy.get_retry_decision(exception=RuntimeError(), job=FakeJob(attempts))
            draws.append(round((decision.retry_at - dt.datetime.now(dt.UTC)).total_seconds()))
        assert all(1 <= d <= ceiling for d in draws), (attempts, min(draws), max(draws))
        if ceiling >= 8:
            assert len(set(draws)) > 3, "jitter spreads the retries"
    assert strategy.get_retry_decision(exception=RuntimeError(), job=FakeJob(7)) is None


def test_a_failing_task_is_rescheduled_not_lost() -> None:
    app = App(connector=testing.InMemoryConnector())
    calls = []

    @app.task(name="flaky", retry=tasks.JitteredBackoff(max_attempts=3))
    async def flaky() -> None:
        calls.append(1)
        raise RuntimeError("provider down")

    async def go() -> list[dict]:  # type: ignore[type-arg]
        async with app.open_async():
            await flaky.defer_async()
            await app.run_worker_async(wait=False, install_signal_handlers=False)
            return list(app.connector.jobs.values())  # type: ignore[attr-defined]
    jobs = asyncio.run(go())
    assert calls == [1]
    assert jobs[0]["status"] == "todo" and jobs[0]["attempts"] == 1 and jobs[0]["scheduled_at"] is not None


def test_every_schedule_is_declared_in_one_place() -> None:
    periodic = {t.task.name: t.cron for t in tasks.app.periodic_registry.periodic_tasks.values()}
    assert periodic == {"send_outbox": "* * * * *", "purge_old": "17 3 * * *", "sweep_rate_buckets": "41 * * * *",
                        "expire_holds": "* * * * *", "booking_reminders": "* * * * *", "reader_no_show": "* * * * *",
                        "order_clocks": "* * * * *", "lift_expired_blocks": "* * * * *",
                        "moderation_sweeps": "30 2 * * *", "retention_purge": "45 2 * * *",
                        "audit_seal": "* * * * * */10", "audit_attest": "0 4 1 * *",
                        "emergency_escalate": "* * * * * */5", "incident_escalate": "* * * * * */30",
                        "dsr_process": "* * * * *", "dsr_sweep": "*/15 * * * *", "archive_logs": "55 3 * * *",
                        "analytics_rollup": "20 0 * * *", "horoscope_publish": "* * * * *",
                        "horoscope_push": "*/5 * * * *", "voice_refresh": "0 5 1 * *"}
    assert set(tasks.CRON_TASKS) == set(periodic)


def test_the_cron_route_and_the_database_agree_on_what_may_be_queued(api) -> None:
    assert {n for (n,) in api.sql("select name from app.deferrable_tasks")} == set(tasks.CRON_TASKS)


def test_every_email_the_database_queues_has_a_template() -> None:
    import re
    from pathlib import Path

    from samia.notifications.templates import EN as TEMPLATES

    sql = "\n".join(p.read_text() for p in Path(tasks.__file__).parents[1].glob("*/*.sql"))  # schema/, migrations/
    queued = set(re.findall(r"'email', '([a-z_]+)', jsonb_build_object", sql))
    queued |= set(re.findall(r"\(new\.\w+, '([a-z_]+)', new\.status", sql))  # the orders trigger's table
    assert {"order_assigned", "order_rejected", "reading_delivered"} <= queued
    code = "\n".join(p.read_text() for p in Path(tasks.__file__).parents[1].rglob("*.py"))
    queued |= set(re.findall(r"'email', '([a-z_]+)', jsonb_build_object", code))  # SQL inside the jobs
    assert queued, "found no queued templates"
    assert queued - {"verify_email"} <= set(TEMPLATES), queued - set(TEMPLATES)

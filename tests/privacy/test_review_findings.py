"""Regressions of a security review of the catalogue, privacy and analytics work: each test is
one finding, reproduced as it was reported, now refused or fixed."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from samia.audit.verify import verify_audit
from samia.config import Settings

from ..helpers import Api, User, ok, problem
from .conftest import person


def as_user(api: Api, user: User | None, query: str, params: object = None) -> list[tuple[object, ...]]:
    return api.sql_as(user.id if user else None, query, params)


def delivered_order(api: Api, client: User, reader: User) -> int:
    """A tarot order of the client's, delivered by the reader (moved along by the owner)."""
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot' "
            "on conflict do nothing", (reader.id,))
    order = int(api.sql("insert into orders (user_id, service_id) select %s, id from services where code = 'tarot' "
                        "returning id", (client.id,))[0][0])
    api.sql("update orders set status = 'assigned', assigned_reader = %s where id = %s", (reader.id, order))
    api.sql("update orders set status = 'in_progress' where id = %s", (order,))
    api.sql("with m as (insert into media_assets (owner_id, kind, storage_key, sha256) values "
            "(%s, 'audio', %s, repeat('c', 64)) returning id) update orders set output_media_id = m.id "
            "from m where orders.id = %s", (reader.id, f"t/{order}", order))
    for status in ("awaiting_approval", "approved", "delivered"):
        api.sql("update orders set status = %s where id = %s", (status, order))
    return order


def test_a_reader_photo_is_only_ever_their_own_image(client: TestClient, api: Api) -> None:
    """H1: a reader pointed their photo at a client's file and the public directory signed it."""
    reader, someone = person(api, "reader"), person(api, "client")
    ok(client.put("/readers/me/profile", json={"display_name": "Nadia"}, headers=reader.h))
    (cup,) = api.sql("insert into media_assets (owner_id, kind, storage_key, sha256) "
                     "values (%s, 'image', 'orders/1/photos/x', repeat('b', 64)) returning id", (someone.id,))[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_user(api, reader, "update reader_profiles set photo_media_id = %s where reader_id = auth.uid()", (cup,))
    # even written past the policy (by the owner), the directory never signs another's file
    api.sql("update reader_profiles set photo_media_id = %s where reader_id = %s", (cup, reader.id))
    assert ok(client.get(f"/readers/{reader.id}"))["photo_url"] is None


def test_erasure_forgets_analytics_ids_and_the_drafts_quoting_the_question(
        client: TestClient, api: Api, settings: Settings) -> None:
    """H2, M1: after erasure no analytics row names the person; no draft quotes their question."""
    c, r = person(api, "client"), person(api, "reader")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (r.id,))
    order = ok(client.post("/orders", json={"service": "tarot", "question": "Will Quillfeather call?"},
                           headers=c.h), 201)["id"]
    api.sql("update orders set status = 'assigned', assigned_reader = %s where id = %s", (r.id, order))
    api.sql("insert into reading_drafts (order_id, author_id, provider, body) values (%s, %s, 'local', %s)",
            (order, r.id, "The client asks about: Will Quillfeather call?"))
    assert api.sql("select count(*) from events_raw where user_id = %s", (c.id,))[0][0] > 0
    api.sql("select set_config('request.jwt.claims', '{\"actor\": \"test\"}', true), app.erase_user(%s, 'test')",
            (c.id,))
    assert api.sql("select count(*) from events_raw where user_id = %s or reader_id = %s", (c.id, c.id)) == [(0,)]
    assert api.sql("select count(*) from metrics_daily_users where user_id = %s", (c.id,)) == [(0,)]
    assert api.sql("select count(*) from reading_drafts where order_id = %s", (order,)) == [(0,)]


def test_an_explicit_analytics_no_unlinks_events_whoever_causes_them(client: TestClient, api: Api) -> None:
    """H3: a reader's action (or a webhook's) used to link the event to a client who said no.
    The "no" also unlinks what was recorded before it (their sign-up and log-in)."""
    c, r = person(api, "client"), person(api, "reader")
    ok(client.put("/consent", json={"analytics": False, "marketing": False}, headers=c.h))
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (r.id,))
    order = ok(client.post("/orders", json={"service": "tarot"}, headers=c.h), 201)["id"]
    api.sql("update orders set status = 'assigned', assigned_reader = %s where id = %s", (r.id, order))
    as_user(api, r, "update orders set status = 'in_progress' where id = %s", (order,))  # the reader's act
    assert api.sql("select count(*) from events_raw where user_id = %s", (c.id,)) == [(0,)]
    assert api.sql("select count(*) from events_raw where type like 'order.%%' and subject_id = %s::bigint",
                   (order,)) == [(0,)]
    # and a request cannot ask the rule about someone else
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_user(api, r, "select app.analytics_allowed(%s, null, 'operational')", (c.id,))


def test_the_superadmin_deletes_a_staff_account_through_the_erasure(client: TestClient, api: Api) -> None:
    """H4: deleting any staff account answered 422 dob_required, and deletion skipped erasure."""
    boss, monitor = person(api, "superadmin", dob="1960-01-01"), person(api, "monitor", dob="1980-01-01")
    problem(client.delete(f"/admin/users/{boss.id}", headers=boss.h), 409)
    assert client.delete(f"/admin/users/{monitor.id}", headers=boss.h).status_code == 204
    row = api.sql("select email, dob, deleted_at is not null from profiles where id = %s", (monitor.id,))
    assert row == [(None, None, True)]
    assert api.sql("select count(*) from app_auth.credentials where user_id = %s", (monitor.id,)) == [(0,)]
    problem(client.delete(f"/admin/users/{monitor.id}", headers=boss.h), 404)


def test_held_reviews_are_the_monitors_until_published(client: TestClient, api: Api) -> None:
    """M2: the reader read a held review's contact details and could answer it."""
    c, r = person(api, "client"), person(api, "reader")
    order = delivered_order(api, c, r)
    held = ok(client.post("/reviews", json={"order_id": order, "rating": 1, "text": "ring me +961 71 123 456"},
                          headers=c.h), 201)
    assert held["status"] == "held"
    assert [x for x in ok(client.get("/me/reviews", headers=r.h)) if x["id"] == held["id"]] == []
    problem(client.post(f"/reviews/{held['id']}/reply", json={"text": "call me"}, headers=r.h), 404)


def test_anonymous_visitors_read_the_disclosures(client: TestClient) -> None:
    """M3: anonymous GET /legal/disclosures answered 403 naming the profiles table."""
    r = client.get("/legal/disclosures")
    assert r.status_code == 200 and "profiles" not in r.text


def test_a_request_cannot_pass_arguments_to_a_job(api: Api) -> None:
    """M5: a client queued dsr_sweep with a clock in 2100 (it would expire every export)."""
    c = person(api, "client")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="defer_job"):
        as_user(api, c, "select app.defer_job('dsr_sweep', '{\"at\": \"2100-01-01T00:00:00Z\"}')")
    with pytest.raises(psycopg.errors.UndefinedFunction):  # the old two-argument door is gone
        as_user(api, c, "select app.defer('dsr_sweep', '{\"at\": \"2100-01-01T00:00:00Z\"}'::jsonb)")
    as_user(api, c, "select app.defer('send_outbox')")  # the argument-less kind still works


def test_an_attestation_must_name_a_sealed_head(client: TestClient, api: Api, settings: Settings) -> None:
    """M6: one admin insert claiming a head that never was stopped the sealer for good."""
    admin = person(api, "admin", dob="1970-01-01")
    bogus = ("insert into audit_attestations (head_pos, head_hash, rows, export_sha256, signature, public_key, "
             "storage_key, created_by) values (999999999, repeat('e', 64), 1, repeat('e', 64), 's', 'k', 'x', "
             "auth.uid())")
    with pytest.raises(psycopg.errors.CheckViolation, match="not a sealed row"):
        as_user(api, admin, bogus)
    api.sql("select set_config('request.jwt.claims', '{\"actor\": \"test\"}', true), app.audit_seal()")
    assert verify_audit(api.owner_dsn, settings)[0]


def test_a_failed_request_waits_between_tries_and_an_admin_retries_it(client: TestClient, api: Api) -> None:
    """M4: five tries burned in milliseconds, and the requester was locked out for good."""
    c, admin = person(api, "client"), person(api, "admin", dob="1970-01-01")
    rid = ok(client.post("/me/data-requests", json={"kind": "export"}, headers=c.h), 201)["id"]
    api.sql("update data_requests set status = 'failed', attempts = 1, started_at = now() where id = %s", (rid,))
    assert rid not in [i for (i,) in api.sql("select id from app.dsr_claim()")], "retried at once"
    api.sql("update data_requests set started_at = now() - interval '3 minutes' where id = %s", (rid,))
    assert rid in [i for (i,) in api.sql("select id from app.dsr_claim()")]
    api.sql("update data_requests set status = 'failed', attempts = 5 where id = %s", (rid,))
    problem(client.post(f"/admin/data-requests/{rid}/retry", headers=c.h), 403)
    assert ok(client.post(f"/admin/data-requests/{rid}/retry", headers=admin.h))["status"] == "approved"
    assert api.sql("select status, attempts from data_requests where id = %s", (rid,)) == [("approved", 0)]


def test_request_roles_cannot_ask_about_other_users(api: Api) -> None:
    """L1, L2: functions answering for any user id are not callable by request roles."""
    c = person(api, "client")
    for call in ("select app.transact_refusal(%s)", "select app.legal_outstanding(%s)",
                 "select app.flag_on_for('feature.tarotV2', %s)",
                 "select * from app.payment_attempt(jsonb_populate_record(null::payment_transactions, "
                 "jsonb_build_object('user_id', %s::text)))"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_user(api, c, call, (c.id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_user(api, None, "select app.provider_use('stripe', true)")  # would spend a provider's budget
    assert as_user(api, c, "select app.my_legal_outstanding()") == [([],)]


def test_the_country_that_sets_prices_is_changed_by_an_admin(client: TestClient, api: Api) -> None:
    """M9: a client chose a cheaper country with PATCH /me."""
    c, admin = person(api, "client", country="FR"), person(api, "admin", dob="1970-01-01")
    problem(client.patch("/me", json={"country": "EG"}, headers=c.h), 403, "protected_field")
    assert api.sql("select country_code from profiles where id = %s", (c.id,)) == [("FR",)]
    ok(client.patch(f"/admin/users/{c.id}", json={"country": "EG"}, headers=admin.h))
    assert api.sql("select country_code from profiles where id = %s", (c.id,)) == [("EG",)]


def test_a_client_never_learns_of_silent_monitoring(api: Api) -> None:
    """L9: call_events showed the client that a monitor had joined."""
    c, r = person(api, "client"), person(api, "reader")
    call = api.sql("insert into calls (client_id, reader_id, kind, status) values (%s, %s, 'instant', 'started') "
                   "returning id", (c.id, r.id))[0][0]
    api.sql("insert into call_events (call_id, event) values (%s, 'started'), (%s, 'monitor_joined'), "
            "(%s, 'flagged')", (call, call, call))
    for who in (c, r):
        assert [e for (e,) in as_user(api, who, "select event from call_events where call_id = %s order by id",
                                      (call,))] == ["started"]


def test_the_job_engine_still_passes_arguments(api: Api) -> None:
    """The argument rule leaves the owner's and the engine's own path alone (tests, backfills)."""
    api.sql("delete from procrastinate.procrastinate_jobs where task_name = 'dsr_sweep' and status = 'todo'")
    args = '{"at": "2030-01-01T00:00:00Z"}'
    (job,) = api.sql("select app.defer_job('dsr_sweep', %s)", (args,))[0]
    assert job is not None
    assert api.sql("select app.defer_job('dsr_sweep', %s)", (args,)) == [(None,)]  # once while it waits
    (other,) = api.sql("select app.defer_job('dsr_sweep', '{\"at\": \"2031-01-01T00:00:00Z\"}')")[0]
    assert other is not None  # other arguments, another job
    api.sql("delete from procrastinate.procrastinate_jobs where id = %s", (other,))
    api.sql("delete from procrastinate.procrastinate_jobs where id = %s", (job,))

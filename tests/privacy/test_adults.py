"""18+ on every path (seeds 000 M38): a profile without an adult date of birth cannot order,
book, pay or call, however it was made — by an admin, by the Supabase Auth sync, or before the
rule — and the database refuses it too, under SQL as that user, whatever the API does."""

from __future__ import annotations

import json
import time
import uuid
from importlib import resources
from pathlib import Path

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from samia.config import Settings

from ..conftest import make_settings
from ..helpers import Api, User, ok, problem
from .conftest import reader_offering, slot

SUPABASE_SECRET = "supabase-jwt-secret-for-tests-0123456789abcdef"


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> Settings:
    return make_settings(SAMIA_DATA_DIR=str(data_dir), SUPABASE_JWT_SECRET=SUPABASE_SECRET)


@pytest.fixture(scope="module")
def reader(api: Api, client: TestClient) -> User:
    return reader_offering(api, client, "tarot")


def refused(api: Api, user_id: str, query: str, params: object, hint: str | None) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
        api.sql_as(user_id, query, params)
    assert e.value.diag.message_hint == hint, e.value.diag.message_primary


def owner_hold(api: Api, client_id: str, reader_id: str) -> int:
    """A held booking made behind the API (as a hold from before the rule would be)."""
    return api.sql("""
        with cap as (insert into reader_capacity (reader_id, during, kind, status, expires_at)
                     values (%(r)s, tstzrange(%(at)s, %(at)s::timestamptz + interval '30 minutes'),
                             'hold', 'held', now() + interval '1 hour') returning id)
        insert into bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, price_minor,
                              currency, policy)
        select %(c)s, %(r)s, s.id, cap.id, %(at)s, %(at)s::timestamptz + interval '30 minutes', 1500,
               'USD', s.policy from cap, services s where s.code = 'tarot' returning id""",
                   {"r": reader_id, "c": client_id, "at": slot()})[0][0]


def cannot_transact(client: TestClient, api: Api, user: User, reader: User, code: str) -> None:
    """403 `code` on ordering, booking, paying and calling through the API, and the database
    refusing the same writes under SQL as the user."""
    problem(client.post("/orders", json={"service": "tarot", "question": "q"}, headers=user.h), 403, code)
    problem(client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot", "starts_at": slot()},
                        headers=user.h), 403, code)
    problem(client.post("/wallet/topups", json={"amount_minor": 500, "card_token": "tok_visa"}, headers=user.h),
            403, code)
    booking = owner_hold(api, user.id, reader.id)
    problem(client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                        headers=user.h), 403, code)
    problem(client.post("/calls/instant", json={"reader_id": reader.id, "service": "direct_call",
                                                        "consent_given": True}, headers=user.h),
            403, code)
    assert api.sql("select count(*) from orders where user_id = %s", (user.id,)) == [(0,)]
    assert api.sql("select count(*) from payment_transactions where user_id = %s", (user.id,)) == [(0,)]
    # under SQL as the user, through the API's own login
    refused(api, user.id, "insert into orders (user_id, service_id) select auth.uid(), id from services "
                          "where code = 'tarot'", None, code)
    refused(api, user.id, "select app.hold_slot(%s, (select id from services where code = 'tarot'), %s, "
                          "interval '10 minutes')", (reader.id, slot()), code)
    refused(api, user.id, "insert into payment_transactions (user_id, provider, kind, amount_minor, currency, "
                          "booking_id) values (auth.uid(), 'testcard', 'charge', 1500, 'USD', %s)", (booking,), code)
    refused(api, user.id, "select app.start_instant_call(%s, (select id from services where code = 'direct_call'), "
                          "'127.0.0.1', 'sql', false)", (reader.id,), code)


def test_a_client_an_admin_created_without_a_birth_date_cannot_order_book_pay_or_call(client, api, reader) -> None:
    admin = api.user("admin")
    email = f"nodob-{uuid.uuid4().hex[:8]}@example.com"
    made = ok(client.post("/admin/users", json={"email": email, "password": "a-long-client-password", "role": "client",
                                               "first_name": "Nodob", "last_name": "Client", "country": "LB"},
                          headers=admin.h), 201)
    assert made["dob"] is None
    user = User(made["id"], email, "client", api.login(email, "a-long-client-password")["access_token"], "")
    cannot_transact(client, api, user, reader, "age_not_verified")
    refusals = [r for r in api.audit_rows("access.denied") if r[0] == user.id]
    assert {r[5]["reason"] for r in refusals} == {"age_not_verified"}
    # a birth date under 18 is refused outright; an adult one moves them on to the terms
    problem(client.patch("/me", json={"dob": "2015-01-01"}, headers=user.h), 422, "under_age")
    ok(client.patch("/me", json={"dob": "1985-04-04"}, headers=user.h))
    problem(client.post("/orders", json={"service": "tarot", "question": "q"}, headers=user.h), 403,
            "terms_not_accepted")
    for doc in ("terms", "privacy"):
        version = ok(client.get(f"/legal/{doc}"))["version"]
        ok(client.post(f"/legal/{doc}/accept", json={"version": version}, headers=user.h))
    ok(client.post("/orders", json={"service": "tarot", "question": "q"}, headers=user.h), 201)


def test_the_restrictive_policies_hold_without_the_triggers(api, reader) -> None:
    """The RESTRICTIVE policies are a second wall: with the gate triggers switched off (as a
    careless migration might), the insert is still refused by row-level security."""
    user = api.user("client")
    api.sql("update profiles set dob = null where id = %s", (user.id,))  # a row from before the rule
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("alter table orders disable trigger trg_orders_new")
        conn.execute("alter table payment_transactions disable trigger trg_payment_transactions_gate")
        conn.commit()
    try:
        refused(api, user.id, "insert into orders (user_id, service_id) select auth.uid(), id from services "
                              "where code = 'tarot'", None, None)
        refused(api, user.id, "insert into payment_transactions (user_id, provider, kind, amount_minor, currency) "
                              "values (auth.uid(), 'testcard', 'topup', 500, 'USD')", None, None)
    finally:
        with psycopg.connect(api.owner_dsn) as conn:
            conn.execute("alter table orders enable trigger trg_orders_new")
            conn.execute("alter table payment_transactions enable trigger trg_payment_transactions_gate")
    # and with a birth date the same statements go through
    api.sql("update profiles set dob = '1980-02-02' where id = %s", (user.id,))
    assert api.sql_as(user.id, "insert into orders (user_id, service_id) select auth.uid(), id from services "
                               "where code = 'tarot' returning status::text") == [("new",)]


def test_staff_accounts_carry_a_birth_date(client, api) -> None:
    admin = api.user("admin")
    body = {"email": f"staff-{uuid.uuid4().hex[:8]}@example.com", "password": "a-long-staff-password",
            "role": "reader", "first_name": "Staff", "last_name": "Nodob"}
    problem(client.post("/admin/users", json=body, headers=admin.h), 422, "dob_required")
    # the database says so too, whatever the API checks
    with pytest.raises(psycopg.errors.CheckViolation) as e:
        api.sql_as(admin.id, "insert into profiles (email, role_id) values (%s, 4)", (body["email"],))
    assert e.value.diag.message_hint == "dob_required"
    # nor does a client without one become staff
    nodob = ok(client.post("/admin/users", json={**body, "role": "client"}, headers=admin.h), 201)
    problem(client.patch(f"/admin/users/{nodob['id']}", json={"role": "monitor"}, headers=admin.h), 422,
            "dob_required")
    assert ok(client.post("/admin/users", json={**body, "email": "x" + body["email"], "dob": "1979-09-09"},
                          headers=admin.h), 201)["role"] == "reader"


@pytest.fixture(scope="module")
def supabase_auth(api: Api) -> None:
    """Supabase's auth.users, simulated on the test cluster, and the identity rules re-applied so
    that their guarded part installs the sync trigger (as it does on a Supabase project)."""
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("create table auth.users (id uuid primary key, email text, email_confirmed_at timestamptz, "
                     "raw_user_meta_data jsonb not null default '{}')")
        conn.execute((resources.files("samia.schema") / "01_identity.sql").read_text())  # type: ignore[arg-type]
    assert api.sql("select count(*) from pg_trigger where tgname = 'samia_sync_profile'") == [(1,)]


def supabase_user(api: Api, meta: dict[str, str] | None = None) -> User:
    uid, email = str(uuid.uuid4()), f"sb-{uuid.uuid4().hex[:8]}@example.com"
    api.sql("insert into auth.users (id, email, email_confirmed_at, raw_user_meta_data) values (%s, %s, now(), %s)",
            (uid, email, json.dumps(meta or {})))
    now = int(time.time())
    token = jwt.encode({"sub": uid, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600,
                        "email": email}, SUPABASE_SECRET, algorithm="HS256")
    return User(uid, email, "client", token, "")


def test_a_supabase_synced_user_cannot_order_book_pay_or_call(client, api, reader, supabase_auth) -> None:
    user = supabase_user(api)
    assert api.sql("select email, dob, role_id from profiles where id = %s", (user.id,)) == [(user.email, None, 5)]
    assert ok(client.get("/me", headers=user.h))["id"] == user.id  # signed in with Supabase's token
    cannot_transact(client, api, user, reader, "age_not_verified")


def test_the_sync_keeps_an_adult_birth_date_from_sign_up_and_drops_a_minor_one(api, supabase_auth) -> None:
    adult, minor, junk = (supabase_user(api, m) for m in ({"dob": "1988-03-03"}, {"dob": "2016-06-06"},
                                                          {"dob": "soon"}))
    dobs = dict(api.sql("select id::text, dob::text from profiles where id = any(%s::uuid[])",
                        ([adult.id, minor.id, junk.id],)))
    assert dobs == {adult.id: "1988-03-03", minor.id: None, junk.id: None}
    # an adult still accepts the terms before ordering
    refused(api, adult.id, "insert into orders (user_id, service_id) select auth.uid(), id from services "
                           "where code = 'tarot'", None, "terms_not_accepted")


def test_an_older_row_without_a_birth_date_cannot_order(client, api, reader) -> None:
    user = api.user("client")
    api.sql("update profiles set dob = null where id = %s", (user.id,))
    problem(client.post("/orders", json={"service": "tarot"}, headers=user.h), 403, "age_not_verified")

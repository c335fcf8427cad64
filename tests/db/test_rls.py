"""RLS is the guard: checked through SQL as the API's login would run it, and through the API."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture(scope="module")
def people(api):  # type: ignore[no-untyped-def]
    alice, bob = api.user("client"), api.user("client")
    reader, monitor, admin = api.user("reader"), api.user("monitor"), api.user("admin")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (reader.id,))
    for c in (alice, bob):
        api.sql("insert into orders (user_id, service_id, question_text) "
                "values (%s, (select id from services where code = 'tarot'), 'q')", (c.id,))
    # new orders start unassigned whatever the insert says; the admin's move assigns
    api.sql("update orders set status = 'assigned', assigned_reader = %s where user_id = %s", (reader.id, alice.id))
    return {"alice": alice, "bob": bob, "reader": reader, "monitor": monitor, "admin": admin}


def test_client_cannot_read_another_clients_profile_or_order_in_sql(api, people) -> None:
    alice, bob = people["alice"], people["bob"]
    assert api.sql_as(alice.id, "select id::text from profiles") == [(alice.id,)]
    assert api.sql_as(alice.id, "select count(*) from profiles where id = %s", (bob.id,)) == [(0,)]
    orders = api.sql_as(alice.id, "select user_id::text from orders")
    assert orders == [(alice.id,)]
    # an update aimed at someone else's row touches nothing
    assert api.sql_as(alice.id, "update profiles set first_name = 'x' where id = %s returning id",
                      (bob.id,)) == []
    assert api.sql("select first_name from profiles where id = %s", (bob.id,)) == [("Client",)]


def test_reader_sees_only_assigned_orders(api, people) -> None:
    rows = api.sql_as(people["reader"].id, "select user_id::text from orders")
    assert rows == [(people["alice"].id,)]


def test_monitor_reads_all_but_writes_no_profiles(api, people) -> None:
    monitor = people["monitor"]
    n_profiles = api.sql("select count(*) from profiles")[0][0]
    assert api.sql_as(monitor.id, "select count(*) from profiles") == [(n_profiles,)]
    assert api.sql_as(monitor.id, "select count(*) from orders")[0][0] == 2
    assert api.sql_as(monitor.id, "update profiles set first_name = 'm' where id = %s returning id",
                      (people["bob"].id,)) == []


def test_anonymous_reads_nothing_private(api, people) -> None:
    for table in ("profiles", "orders", "audit_log", "media_assets", "calls", "moderation_actions",
                  "phone_verifications", "notification_outbox", "rate_limits"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.sql_as(None, psycopg.sql.SQL("select count(*) from {}").format(psycopg.sql.Identifier(table)))
    # horoscopes reach the public only published, through app.horoscopes_public (tests/horoscopes)
    api.sql("insert into horoscopes (scope, zodiac, ref_date) values ('daily', 'Leo', current_date)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(None, "select count(*) from horoscopes")
    assert api.sql_as(people["monitor"].id, "select count(*) from horoscopes") == [(1,)]
    # but the public catalogue is readable
    assert api.sql_as(None, "select count(*) from services")[0][0] == 5


def test_client_cannot_read_another_clients_data_through_the_api(api, client, people) -> None:
    alice = people["alice"]
    r = client.get("/me", headers=alice.h)
    assert r.status_code == 200 and r.json()["id"] == alice.id
    assert client.get("/admin/users", headers=alice.h).status_code == 403


def test_app_login_is_not_superuser_and_cannot_bypass_rls(api, dsns) -> None:
    assert api.sql("select rolsuper, rolbypassrls, rolinherit from pg_roles where rolname = 'authenticator'") \
        == [(False, False, False)]
    for role in ("anon", "authenticated", "samia_auth"):
        assert api.sql("select rolsuper, rolbypassrls from pg_roles where rolname = %s", (role,)) \
            == [(False, False)]
    with psycopg.connect(dsns.app) as conn:
        assert conn.execute("select current_user, current_setting('is_superuser')").fetchone() \
            == ("authenticator", "off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from profiles")


def test_every_public_table_has_forced_rls_and_policies(api) -> None:
    rows = api.sql("""
        select c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (select count(*) from pg_policies p where p.schemaname = 'public' and p.tablename = c.relname)
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname <> '_migrations'""")
    assert len(rows) >= 13
    bad = [r for r in rows if not (r[1] and r[2] and r[3] > 0)]
    assert bad == []

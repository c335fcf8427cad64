"""Events: one catalogue (SQL and Python equal), no room for personal data, emitted in the fact's
own transaction through the real API paths, consent respected, late days marked."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from samia.analytics.catalogue import CATALOGUE, DIMS
from tests.helpers import Api, User, ok, problem


def events(api: Api, where: str = "true", params: Any = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with psycopg.connect(api.owner_dsn, row_factory=dict_row) as conn:
        return conn.execute(psycopg.sql.SQL("select * from events_raw where {} order by id")
                            .format(psycopg.sql.SQL(where)), params).fetchall()  # type: ignore[arg-type]


def test_the_catalogue_is_one_list_in_sql_and_python(api: Api) -> None:
    db = {code: (version, domain, tuple(dims), active, status) for code, version, domain, dims, active, status in
          api.sql("select code, version, domain, dims, counts_active, status from event_types")}
    py = {t.code: (t.version, t.domain, t.dims, t.counts_active, t.status) for t in CATALOGUE}
    assert db == py and len(py) >= 40
    # what other work emits later is named already
    assert {c for c, v in py.items() if v[4] == "reserved"} == {
        "notification.sent", "notification.delivered", "notification.opened", "notification.clicked",
        "horoscope.listen_started", "horoscope.listen_finished"}
    # every column a type may carry exists in events_raw; events_raw has nothing else
    columns = {c for (c,) in api.sql("select column_name from information_schema.columns "
                                     "where table_schema = 'public' and table_name = 'events_raw'")}
    assert columns - set(DIMS) == {"id", "type", "version", "occurred_at", "day", "recorded_at"}


def test_no_column_of_events_raw_can_hold_free_text(api: Api) -> None:
    kinds = dict(api.sql("select column_name, data_type from information_schema.columns "
                         "where table_schema = 'public' and table_name = 'events_raw'"))
    text = {c for c, t in kinds.items() if t in ("text", "character varying", "character", "jsonb", "json")}
    assert text == {"type", "country", "provider", "kind", "code", "reason", "currency", "device"}
    assert not {t for t in kinds.values()} - {"bigint", "smallint", "integer", "uuid", "boolean", "date", "text",
                                              "timestamp with time zone", "character"}
    refused = (psycopg.errors.CheckViolation, psycopg.errors.ForeignKeyViolation,
               psycopg.errors.StringDataRightTruncation)
    for column in sorted(text):
        fixed = [(c, v) for c, v in (("type", "'order.created'"), ("version", "1"), ("occurred_at", "now()"))
                 if c != column]
        insert = psycopg.sql.SQL("insert into events_raw ({}, {}) values ({}, %s)").format(
            psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c, _ in fixed), psycopg.sql.Identifier(column),
            psycopg.sql.SQL(", ").join(psycopg.sql.SQL(v) for _, v in fixed))
        for value in ("zephyrine@example.com", "+96170123456", "Zephyrine", "zephyrine"):
            with pytest.raises(refused):
                api.sql(insert, (value,))


def test_a_code_outside_the_vocabulary_is_stored_as_other(api: Api) -> None:
    api.sql("select app.analytics_emit('moderation.decision', now(), p_kind => 'order', p_code => 'Zephyrine',"
            " p_reason => 'zephyrine@example.com')")
    last = events(api)[-1]
    assert (last["kind"], last["code"], last["reason"]) == ("order", "other", "other")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        api.sql("select app.analytics_emit('order.nonsense', now())")


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, User]:
    api.sql("update services set price_minor = 1500 where code = 'tarot'")
    reader = api.user("reader")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (reader.id,))
    return {"client": api.user("client", country="AE"), "reader": reader, "admin": api.user("admin"),
            "monitor": api.user("monitor")}


def test_a_rolled_back_order_emits_nothing(api: Api, people: dict[str, User]) -> None:
    c = people["client"]
    before = len(events(api))
    # an empty wallet: the order and its charge are written, then rolled back with the 422
    problem(api.client.post("/orders", json={"service": "tarot", "question": "Will it rain?"}, headers=c.h), 422,
            "insufficient_funds")
    assert len(events(api)) == before
    assert api.sql("select count(*) from orders where user_id = %s", (c.id,)) == [(0,)]


def test_an_order_through_the_api_emits_its_facts(api: Api, people: dict[str, User]) -> None:
    c, reader, admin = people["client"], people["reader"], people["admin"]
    ok(api.client.post("/wallet/topups", json={"amount_minor": 5000, "card_token": "tok_visa"}, headers=c.h), 201)
    order = ok(api.client.post("/orders", json={"service": "tarot", "question": "Will it rain?"}, headers=c.h), 201)
    ok(api.client.post(f"/orders/{order['id']}/assign", json={"reader_id": reader.id}, headers=admin.h))
    ok(api.client.post(f"/orders/{order['id']}/start", headers=reader.h))
    mine = events(api, "user_id = %s or subject_id = %s", (c.id, order["id"]))
    kinds = [(e["type"], e["provider"], e["kind"]) for e in mine]
    assert kinds[:6] == [("user.signed_up", None, "client"), ("user.logged_in", None, None),
                         ("payment.attempted", "testcard", "topup"), ("payment.succeeded", "testcard", "topup"),
                         ("order.created", None, None), ("payment.attempted", "wallet", "charge")]
    by_type = {e["type"]: e for e in mine}
    created = by_type["order.created"]
    assert (created["user_id"], created["subject_id"], created["country"], created["amount_minor"]) == \
        (uuid.UUID(c.id), order["id"], "AE", 1500)
    first = by_type["order.first_response"]
    assert first["reader_id"] == uuid.UUID(reader.id) and first["seconds"] >= 0
    # every event carries only the columns of its type's schema, at that schema's version
    schema = {t.code: t for t in CATALOGUE}
    for e in mine:
        t = schema[e["type"]]
        assert e["version"] == t.version
        assert {k for k in DIMS if e[k] is not None} <= set(t.dims), e["type"]


def test_a_restart_is_not_a_second_first_response(api: Api, people: dict[str, User]) -> None:
    c, reader, other = people["client"], people["reader"], api.user("reader")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (other.id,))
    order = ok(api.client.post("/orders", json={"service": "tarot", "question": "Again?"}, headers=c.h), 201)
    # started, reassigned to another reader, started again (as the owner: the workflow's own path)
    for status, who in (("assigned", reader), ("in_progress", reader), ("assigned", other), ("in_progress", other)):
        api.sql("update orders set status = %s, assigned_reader = %s where id = %s", (status, who.id, order["id"]))
    firsts = events(api, "type = 'order.first_response' and subject_id = %s", (order["id"],))
    assert [f["reader_id"] for f in firsts] == [uuid.UUID(reader.id)]
    assert len(events(api, "type = 'order.assigned' and subject_id = %s", (order["id"],))) == 2


def test_without_consent_an_event_is_a_bare_count(api: Api, people: dict[str, User]) -> None:
    c = people["client"]
    # what the privacy work will do with the hook: this user has not consented
    api.sql("create or replace function app.analytics_allowed(p_user uuid) returns boolean "
            "language sql stable security definer set search_path = '' as $$ select p_user <> %s::uuid $$"
            .replace("%s", f"'{c.id}'"))
    try:
        ok(api.client.post("/wallet/topups", json={"amount_minor": 2000, "card_token": "tok_visa"}, headers=c.h), 201)
        last = events(api)[-2:]
        assert [e["type"] for e in last] == ["payment.attempted", "payment.succeeded"]
        assert all(e["user_id"] is None and e["subject_id"] is None for e in last)
        assert all(e["provider"] == "testcard" and e["country"] == "AE" for e in last)   # still counted
    finally:
        api.sql("create or replace function app.analytics_allowed(p_user uuid) returns boolean "
                "language sql stable security definer set search_path = '' as $$ select true $$")


def test_only_a_late_event_marks_its_day(api: Api) -> None:
    api.sql("delete from app_private.analytics_dirty_days")
    api.sql("select app.analytics_emit('incident.opened', now(), p_subject => 1, p_kind => 'manual', p_code => 'sev3')")
    api.sql("select app.analytics_emit('incident.opened', now() - interval '1 day', p_subject => 2, p_kind => 'manual',"
            " p_code => 'sev3')")
    assert api.sql("select count(*) from app_private.analytics_dirty_days") == [(0,)]
    api.sql("select app.analytics_emit('incident.opened', now() - interval '5 days', p_subject => 3, "
            "p_kind => 'manual', p_code => 'sev3')")
    assert api.sql("select day = app.beirut_day(now() - interval '5 days') from app_private.analytics_dirty_days") \
        == [(True,)]


def test_request_roles_cannot_write_or_read_raw_events(api: Api, people: dict[str, User]) -> None:
    for who in ("client", "reader", "monitor"):
        uid = people[who].id
        assert api.sql_as(uid, "select count(*) from events_raw") == [(0,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.sql_as(uid, "insert into events_raw (type, version, occurred_at) values ('order.created', 1, now())")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.sql_as(uid, "select app.analytics_emit('order.created', now())")
    assert api.sql_as(people["admin"].id, "select count(*) from events_raw")[0][0] > 0


def test_raw_events_past_their_retention_go_and_their_figures_stay(api: Api, people: dict[str, User]) -> None:
    c = people["client"].id
    api.sql("select app.analytics_emit('user.logged_in', now() - interval '36 days', p_user => %s)", (c,))
    api.sql("select app.analytics_emit('user.logged_in', now() - interval '20 days', p_user => %s)", (c,))
    old, recent = api.sql("select app.beirut_day(now() - interval '36 days'), "
                          "app.beirut_day(now() - interval '20 days')")[0]
    api.sql("select app.analytics_rollup()")
    cell = "select sum(events) from metrics_daily_events where type = 'user.logged_in' and day = %s"
    assert api.sql(cell, (old,)) == [(1,)]
    api.sql("update app_private.analytics_rollup_state set raw_retention_days = 35")
    try:
        (purged,) = api.sql("select purged from app.analytics_rollup()")[0]
        assert purged >= 1
        assert api.sql("select count(*) from events_raw where day = %s", (old,)) == [(0,)]
        assert api.sql("select count(*) from events_raw where day = %s", (recent,))[0][0] >= 1
        assert api.sql(cell, (old,)) == [(1,)]   # the day's figures are final, and kept
    finally:
        api.sql("update app_private.analytics_rollup_state set raw_retention_days = 400")


def test_forgetting_a_user_keeps_the_counts_and_drops_the_ids(api: Api, people: dict[str, User]) -> None:
    someone = api.user("client")
    api.sql("select app.analytics_emit('user.logged_in', now() - interval '3 days', p_user => %s)", (someone.id,))
    api.sql("select app.analytics_rollup()")
    day = api.sql("select app.beirut_day(now() - interval '3 days')")[0][0]
    before = api.sql("select sum(events) from metrics_daily_events where type = 'user.logged_in' and day = %s", (day,))
    assert api.sql("select count(*) from metrics_daily_users where user_id = %s", (someone.id,)) == [(1,)]
    n = api.sql("select count(*) from events_raw where user_id = %s", (someone.id,))[0][0]
    assert api.sql("select app.analytics_forget(%s)", (someone.id,)) == [(n,)] and n >= 3
    assert api.sql("select count(*) from events_raw where user_id = %s", (someone.id,)) == [(0,)]
    assert api.sql("select count(*) from metrics_daily_users where user_id = %s", (someone.id,)) == [(0,)]
    api.sql("select app.analytics_rollup()")   # recomputing the day keeps the count
    assert api.sql("select sum(events) from metrics_daily_events where type = 'user.logged_in' and day = %s",
                   (day,)) == before

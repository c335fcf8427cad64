"""Personalization (M25): stable rankings, the feature flags' hash for the A/B arms, the
opt-out's non-personalised order, nothing internal reaching a client, and the storefront's hook."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

from samia import db
from samia.analytics import personalization
from samia.core.flags import bucket
from tests.helpers import Api, User, ok, problem


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    readers = [api.user("reader") for _ in range(4)]
    for i, r in enumerate(readers):
        api.sql("insert into reader_profiles (reader_id, display_name) values (%s, %s)", (r.id, f"Reader {'ABCD'[i]}"))
    # the storefront's own order: online first (B), then by rating (A 5, C 3), then by name (D)
    api.sql("insert into reader_status (reader_id, available) values (%s, true)", (readers[1].id,))
    people = {"staff": api.user("monitor"), "admin": api.user("admin"),
              "regular": api.user("client", country="LB"), "newcomer": api.user("client", country="LB"),
              "quitter": api.user("client", country="LB")}
    for who, rating, reader in ((people["regular"], 5, readers[0]), (people["newcomer"], 3, readers[2])):
        order = api.sql("insert into orders (user_id, service_id) select %s, id from services where code = 'tarot' "
                        "returning id", (who.id,))[0][0]
        api.sql("insert into reviews (client_id, reader_id, order_id, rating) values (%s, %s, %s, %s)",
                (who.id, reader.id, order, rating))
    # the regular has a history with D and likes C; clients in Lebanon booked A last week
    for user in (people["regular"], people["quitter"]):
        api.sql("insert into favourites (client_id, reader_id) values (%s, %s)", (user.id, readers[2].id))
        for _ in range(3):
            api.sql("select app.analytics_emit('booking.confirmed', now() - interval '3 days', p_user => %s, "
                    "p_reader => %s, p_subject => 1)", (user.id, readers[3].id))
    for _ in range(5):
        api.sql("select app.analytics_emit('booking.held', now() - interval '2 days', p_user => %s, p_reader => %s)",
                (people["newcomer"].id, readers[0].id))
    api.sql("select app.analytics_rollup()")
    return {"readers": readers, **people}


def recommend(api: Api, staff: User, user: User, **body: Any) -> dict[str, Any]:
    return ok(api.client.post("/personalization/recommend", json={"user_id": user.id, **body}, headers=staff.h))  # type: ignore[no-any-return]


def ids(rec: dict[str, Any]) -> list[str]:
    return [i["id"] for i in rec["items"]]


def split(api: Api, pct: int) -> None:
    api.sql("update personalization_arms set personalised_pct = %s", (pct,))


def test_the_arms_use_the_feature_flags_hash(api: Api, world: dict[str, Any]) -> None:
    split(api, 50)
    for who in ("regular", "newcomer", "quitter", "staff", "admin"):
        user = world[who]
        expected = "personalised" if bucket("personalization.readers", user.id) < 5000 else "control"
        assert recommend(api, world["staff"], user)["variant"] == expected
        assert api.sql("select app.flag_bucket('personalization.readers', %s)", (user.id,)) == \
            [(bucket("personalization.readers", user.id),)]


def test_identical_inputs_give_identical_rankings(api: Api, world: dict[str, Any]) -> None:
    split(api, 100)
    r = [u.id for u in world["readers"]]
    for kind in ("readers", "services", "notifications"):
        first = recommend(api, world["staff"], world["regular"], kind=kind, device="ios")
        again = recommend(api, world["admin"], world["regular"], kind=kind, device="ios")
        assert ids(first) == ids(again) and first["decision_id"] != again["decision_id"]
    # the regular's ranking follows their own use (D), their favourite (C), then the storefront order
    assert ids(recommend(api, world["staff"], world["regular"])) == [r[3], r[2], r[0], r[1]]
    # a newcomer's follows what people in their country book (A), and on a phone who can call now (B)
    assert ids(recommend(api, world["staff"], world["newcomer"], device="android")) == [r[0], r[1], r[2], r[3]]
    assert ids(recommend(api, world["staff"], world["newcomer"], device="web"))[0] == r[0]


def test_an_opted_out_user_gets_the_non_personalised_order(api: Api, world: dict[str, Any]) -> None:
    split(api, 0)
    r = [u.id for u in world["readers"]]
    default = [r[1], r[0], r[2], r[3]]   # online first, then rating, then name
    assert ids(recommend(api, world["staff"], world["regular"])) == default
    split(api, 100)
    quitter = world["quitter"]
    personalised = recommend(api, world["staff"], quitter)
    assert personalised["variant"] == "personalised" and ids(personalised) != default
    assert ok(api.client.put("/me/personalization", json={"personalised": False}, headers=quitter.h)) == \
        {"personalised": False}
    out = recommend(api, world["staff"], quitter)
    assert (out["variant"], ids(out)) == ("opted_out", default)
    assert ok(api.client.get("/me/personalization", headers=quitter.h)) == {"personalised": False}
    assert ok(api.client.put("/me/personalization", json={"personalised": True}, headers=quitter.h)) == \
        {"personalised": True}
    assert ids(recommend(api, world["staff"], quitter)) == ids(personalised)


def test_nothing_internal_reaches_a_client(api: Api, world: dict[str, Any]) -> None:
    split(api, 100)
    client = world["regular"]
    rec = recommend(api, world["staff"], client, limit=2)
    assert set(rec) == {"decision_id", "user_id", "kind", "variant", "items"} and len(rec["items"]) == 2
    assert all(set(i) == {"id", "rank"} for i in rec["items"])
    stored = api.sql("select confidence, rationale, scores from personalization_decisions where id = %s",
                     (rec["decision_id"],))[0]
    assert 0 < stored[0] <= 1 and stored[1] == ["affinity", "favourite"] and len(stored[2]) == 2
    problem(api.client.post("/personalization/recommend", json={"user_id": client.id}, headers=client.h), 403)
    problem(api.client.post("/personalization/recommend", json={"user_id": client.id},
                            headers=world["readers"][0].h), 403)
    assert api.sql_as(client.id, "select count(*) from personalization_decisions") == [(0,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(client.id, "select * from app.personalize(%s, 'readers', null, true)", (client.id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(client.id, "select * from app.record_recommendation(%s, 'readers', null, 3)", (client.id,))
    # the client's own ranking: ids and ranks, nothing else
    own = api.sql_as(client.id, "select * from app.ranked_items('readers')")
    assert [len(row) for row in own] == [2] * 4 and [rank for _, rank in own] == [1, 2, 3, 4]
    problem(api.client.post("/personalization/recommend", json={"user_id": "00000000-0000-0000-0000-000000000000"},
                            headers=world["staff"].h), 404)


def storefront_order(api: Api, user: User, readers: list[dict[str, Any]]) -> list[str]:
    """What the storefront would do inside the caller's request transaction."""
    async def run() -> list[str]:
        async with await psycopg.AsyncConnection.connect(db.as_user(api.owner_dsn, "authenticator")) as conn:
            await conn.execute("select set_config('role', 'authenticated', true), "
                               "set_config('request.jwt.claims', %s, true)",
                               (json.dumps({"sub": user.id, "role": "authenticated"}),))
            ordered = await personalization.order_readers(conn, readers, device="web")
            return [r["reader_id"] for r in ordered]
    return asyncio.run(run())


def test_the_storefront_orders_its_reader_list_by_the_callers_ranking(api: Api, world: dict[str, Any]) -> None:
    split(api, 100)
    r = [u.id for u in world["readers"]]
    listed = [{"reader_id": x, "display_name": f"Reader {'ABCD'[i]}"} for i, x in enumerate(r)]
    listed = [listed[1], listed[0], listed[2], listed[3]]  # as app.reader_directory() lists them
    assert storefront_order(api, world["regular"], listed) == [r[3], r[2], r[0], r[1]]
    assert storefront_order(api, world["regular"], listed[1:]) == [r[3], r[2], r[0]]   # a filtered list
    api.sql("insert into personalization_opt_outs (user_id) values (%s)", (world["regular"].id,))
    assert storefront_order(api, world["regular"], listed) == [x["reader_id"] for x in listed]


def test_the_arms_are_measured(api: Api, world: dict[str, Any]) -> None:
    split(api, 100)
    newcomer, top = world["newcomer"], world["readers"][0].id
    assert ids(recommend(api, world["staff"], newcomer))[0] == top
    api.sql("select app.analytics_emit('booking.held', now() + interval '1 minute', p_user => %s, p_reader => %s)",
            (newcomer.id, top))
    body = ok(api.client.get("/personalization/metrics", params={"from": "2020-01-01", "to": "2020-12-31"},
                             headers=world["admin"].h))
    assert body["arms"] == []
    today = api.sql("select app.beirut_day(now())")[0][0].isoformat()
    body = ok(api.client.get("/personalization/metrics", params={"from": today, "to": today},
                             headers=world["admin"].h))
    readers = {a["variant"]: a for a in body["arms"] if a["kind"] == "readers"}
    assert readers["personalised"]["conversions"] >= 1 and readers["personalised"]["decisions"] >= 1
    assert body["personalised_pct"]["readers"] == 100

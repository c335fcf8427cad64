"""The catalogue and the marketplace: services and prices (per country, honoured at order and
hold time), the reader directory (public fields only), reviews through moderation, favourites."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ..helpers import Api, User, ok, problem
from ..orders.conftest import order, produce, tone

PUBLIC_READER_KEYS = {"reader_id", "display_name", "photo_url", "bio_en", "bio_ar", "specialties", "languages",
                      "rating", "reviews", "online", "instant", "services"}


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """Requests come from a real address, as consent logs record it."""
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.9", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def admin(api: Api) -> User:
    return api.user("admin")


@pytest.fixture(scope="module")
def monitor(api: Api) -> User:
    return api.user("monitor")


@pytest.fixture(scope="module")
def reader(api: Api, client: TestClient) -> User:
    r = api.user("reader")
    api.sql("update profiles set phone = '+96170111222', first_name = 'Mariam', last_name = 'Haddad' where id = %s",
            (r.id,))
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services "
            "where code in ('tarot', 'healing')", (r.id,))
    ok(client.put("/readers/me/profile", json={"display_name": "Layla", "bio_en": "Cards since 2009.",
                                               "bio_ar": "أقرأ الأوراق منذ ٢٠٠٩.", "specialties": ["love", "career"],
                                               "languages": ["ar", "en"]}, headers=r.h))
    return r


def funded(api: Api, client: TestClient, country: str = "LB", amount: int = 20000) -> User:
    c = api.user("client", country=country)
    ok(client.post("/wallet/topups", json={"amount_minor": amount, "card_token": "tok_visa"}, headers=c.h), 201)
    return c


def delivered_order(client: TestClient, c: User, reader: User, admin: User, monitor: User) -> int:
    o = order(client, c)["id"]
    produce(client, o, reader, tone(1.0), admin=admin)
    assert ok(client.post(f"/monitor/orders/{o}/approve", headers=monitor.h))["status"] == "delivered"
    return int(o)


def test_services_are_public_with_both_languages(client: TestClient) -> None:
    services = ok(client.get("/services"))
    assert [s["code"] for s in services] == ["tarot", "coffee", "astro", "healing", "direct_call"]
    tarot = services[0]
    assert tarot["name_en"] == "Tarot Reading" and tarot["name_ar"] == "قراءة التاروت"
    assert tarot["description_en"] and tarot["description_ar"] and tarot["currency"] == "USD"
    healing = services[3]
    assert healing["kind"] == "call" and healing["pre_ritual_en"] and healing["pre_ritual_ar"]
    assert ok(client.get("/services/coffee"))["name_ar"] == "قراءة فنجان القهوة"
    problem(client.get("/services/nope"), 404)


def test_an_admin_sets_prices_audited_and_per_country_prices_hold_at_order_time(
        client: TestClient, api: Api, admin: User, reader: User) -> None:
    c = api.user("client")
    problem(client.put("/admin/services/tarot", json={"price_minor": 1}, headers=c.h), 403)
    body = {"price_minor": 2500, "currency": "USD", "gold_surcharge_minor": 1000,
            "country_prices": {"LB": {"price_minor": 1500}, "EG": {"price_minor": 900}}}
    out = ok(client.put("/admin/services/tarot", json=body, headers=admin.h))
    assert (out["price_minor"], out["country_prices"]["LB"]) == (2500, {"price_minor": 1500, "per_minute_minor": None})
    (meta,) = [m for *_, m in api.audit_rows("service.update", "tarot")][-1:]
    assert meta["price_minor"] == [0, 2500] and "price_minor" in meta["fields"]
    assert {m["country"] for *_, m in api.audit_rows("service.price_insert", "tarot")} >= {"LB", "EG"}
    # the storefront shows the country's price; the order is made at it
    assert ok(client.get("/services/tarot?country=LB"))["price_minor"] == 1500
    assert ok(client.get("/services/tarot?country=FR"))["price_minor"] == 2500
    lebanese, french = funded(api, client, "LB"), funded(api, client, "FR")
    assert ok(client.get("/services/tarot", headers=lebanese.h))["price_minor"] == 1500
    assert order(client, lebanese)["price_minor"] == 1500
    assert order(client, french)["price_minor"] == 2500
    assert order(client, lebanese, is_gold=True)["price_minor"] == 2500
    # replacing the country list drops what is not in it
    out = ok(client.put("/admin/services/tarot", json={"country_prices": {"EG": {"price_minor": 800}}},
                        headers=admin.h))
    assert out["country_prices"] == {"EG": {"price_minor": 800, "per_minute_minor": None}}
    assert ok(client.get("/services/tarot?country=LB"))["price_minor"] == 2500
    # a deactivated service leaves the catalogue and cannot be ordered
    ok(client.put("/admin/services/coffee", json={"is_active": False}, headers=admin.h))
    try:
        assert "coffee" not in [s["code"] for s in ok(client.get("/services"))]
        assert client.post("/orders", json={"service": "coffee", "question": "?"}, headers=french.h).status_code >= 400
    finally:
        ok(client.put("/admin/services/coffee", json={"is_active": True}, headers=admin.h))
    problem(client.put("/admin/services/tarot", json={"price_minor": -1}, headers=admin.h), 422)
    problem(client.put("/admin/services/tarot", json={"country_prices": {"XX": {"price_minor": 5}}},
                       headers=admin.h), 422)


def test_the_reader_directory_shows_public_fields_only(client: TestClient, api: Api, reader: User) -> None:
    hidden = api.user("reader")  # no public profile: not listed
    listed = ok(client.get("/readers"))
    mine = [r for r in listed if r["reader_id"] == reader.id]
    assert len(mine) == 1 and hidden.id not in [r["reader_id"] for r in listed]
    card = mine[0]
    assert set(card) == PUBLIC_READER_KEYS
    assert (card["display_name"], card["languages"], card["online"]) == ("Layla", ["ar", "en"], False)
    assert [s["code"] for s in card["services"]] == ["tarot", "healing"]
    page = client.get(f"/readers/{reader.id}")
    assert page.status_code == 200 and set(page.json()) == PUBLIC_READER_KEYS | {"reviews_page"}
    private = [reader.email, "+96170111222", "Haddad", "Mariam", "1990-05-15", "Test"]
    for text in (json.dumps(listed, ensure_ascii=False), page.text, client.get("/readers?language=ar").text):
        assert not [p for p in private if p in text], "a private field leaked"
    # filters
    assert reader.id in [r["reader_id"] for r in ok(client.get("/readers?service=healing"))]
    assert reader.id not in [r["reader_id"] for r in ok(client.get("/readers?service=coffee"))]
    assert reader.id not in [r["reader_id"] for r in ok(client.get("/readers?language=fr"))]
    # a blocked reader leaves the directory at once
    api.sql("update profiles set blocked_at = now(), blocked_until = now() + interval '1 hour' where id = %s",
            (reader.id,))
    try:
        problem(client.get(f"/readers/{reader.id}"), 404)
    finally:
        api.sql("update profiles set blocked_at = null, blocked_until = null where id = %s", (reader.id,))
    # only readers edit a public profile, and only their own
    c = api.user("client")
    problem(client.put("/readers/me/profile", json={"display_name": "Me"}, headers=c.h), 403)
    problem(client.put("/readers/me/profile", json={"display_name": "<b>x</b>", "specialties": ["<script>"]},
                       headers=reader.h), 422)


def test_a_reader_photo_is_served_by_signed_url_to_anyone(client: TestClient, api: Api, reader: User) -> None:
    png = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=violet:s=64x64", "-frames:v", "1",
                          "-f", "image2", "-c:v", "png", "-"], capture_output=True, check=True).stdout
    problem(client.post("/readers/me/photo", content=b"not an image", headers=reader.h), 422, "unsupported_media")
    ok(client.post("/readers/me/photo", content=png, headers=reader.h))
    url = ok(client.get(f"/readers/{reader.id}"))["photo_url"]
    r = client.get(url)
    assert r.status_code == 200 and r.content == png


def test_reviews_once_per_delivered_order_with_a_reply_and_moderation(
        client: TestClient, api: Api, reader: User, admin: User, monitor: User) -> None:
    api.sql("update services set price_minor = 0 where code = 'tarot'")
    c = funded(api, client)
    o = delivered_order(client, c, reader, admin, monitor)
    pending = order(client, c)["id"]
    problem(client.post("/reviews", json={"order_id": pending, "rating": 5}, headers=c.h), 404)
    stranger = api.user("client")
    problem(client.post("/reviews", json={"order_id": o, "rating": 5}, headers=stranger.h), 404)
    problem(client.post("/reviews", json={"order_id": o, "rating": 6}, headers=c.h), 422)
    problem(client.post("/reviews", json={"rating": 5}, headers=c.h), 422)
    problem(client.post("/reviews", json={"order_id": o, "rating": 5}, headers=reader.h), 403)
    review = ok(client.post("/reviews", json={"order_id": o, "rating": 5, "text": "Spot on. <script>x</script>"},
                            headers=c.h), 201)
    assert review["status"] == "published" and review["body"] == "Spot on. <script>x</script>"
    problem(client.post("/reviews", json={"order_id": o, "rating": 1}, headers=c.h), 409, "already_reviewed")
    # a flagged text waits for a monitor and opens a case; it is not public and not averaged
    c2 = funded(api, client)
    o2 = delivered_order(client, c2, reader, admin, monitor)
    held = ok(client.post("/reviews", json={"order_id": o2, "rating": 1, "text": "call me on +961 3 123 456"},
                          headers=c2.h), 201)
    assert held["status"] == "held"
    assert api.sql("select source, reason, subject_kind from moderation_cases where subject_id = %s "
                   "and subject_kind = 'review'", (str(held["id"]),)) == [("sweep", "spam", "review")]
    page = ok(client.get(f"/readers/{reader.id}"))
    assert (page["rating"], page["reviews"]) == (5.0, 1)
    assert [r["id"] for r in page["reviews_page"]] == [review["id"]]
    assert [r["id"] for r in ok(client.get("/monitor/reviews", headers=monitor.h))] == [held["id"]]
    problem(client.get("/monitor/reviews", headers=c.h), 403)
    ok(client.post(f"/monitor/reviews/{held['id']}/publish", json={"reason": "other", "note": "fine"},
                   headers=monitor.h))
    assert ok(client.get(f"/readers/{reader.id}"))["rating"] == 3.0
    # removing one takes it out of the average; both acts are moderation records
    ok(client.post(f"/monitor/reviews/{held['id']}/remove", json={"reason": "spam", "note": "contact details"},
                   headers=monitor.h))
    assert (ok(client.get(f"/readers/{reader.id}"))["rating"], ok(client.get(f"/readers/{reader.id}"))["reviews"]) \
        == (5.0, 1)
    assert [a for (a,) in api.sql("select action from moderation_actions where target_kind = 'review' "
                                  "and target_id = %s order by id", (str(held["id"]),))] == \
        ["publish_review", "remove_review"]
    # the reader replies once; nobody else can
    other_reader = api.user("reader")
    problem(client.post(f"/reviews/{review['id']}/reply", json={"text": "Hi"}, headers=other_reader.h), 404)
    problem(client.post(f"/reviews/{review['id']}/reply", json={"text": "email me: x@example.com"},
                        headers=reader.h), 422, "flagged_text")
    replied = ok(client.post(f"/reviews/{review['id']}/reply", json={"text": "Thank you!"}, headers=reader.h))
    assert replied["reply"] == "Thank you!"
    problem(client.post(f"/reviews/{review['id']}/reply", json={"text": "Again"}, headers=reader.h), 409,
            "already_replied")
    assert ok(client.get(f"/readers/{reader.id}/reviews"))[0]["reply"] == "Thank you!"
    assert {r["id"] for r in ok(client.get("/me/reviews", headers=reader.h))} >= {review["id"], held["id"]}
    # anyone may report a review into the monitors' queue
    ok(client.post("/reports", json={"subject_kind": "review", "subject_id": str(review["id"]), "reason": "abuse",
                                     "details": "rude"}, headers=other_reader.h), 201)


def test_favourites_are_a_clients_own_list(client: TestClient, api: Api, reader: User) -> None:
    c, other = api.user("client"), api.user("client")
    assert client.put(f"/me/favourites/{reader.id}", headers=c.h).status_code == 204
    assert client.put(f"/me/favourites/{reader.id}", headers=c.h).status_code == 204  # idempotent
    assert [r["reader_id"] for r in ok(client.get("/me/favourites", headers=c.h))] == [reader.id]
    assert ok(client.get("/me/favourites", headers=other.h)) == []
    unlisted = api.user("reader")
    problem(client.put(f"/me/favourites/{unlisted.id}", headers=c.h), 404)
    problem(client.put(f"/me/favourites/{reader.id}", headers=reader.h), 403)
    assert client.delete(f"/me/favourites/{reader.id}", headers=c.h).status_code == 204
    assert ok(client.get("/me/favourites", headers=c.h)) == []


def confirmed_healing(api: Api, c: User, reader: User) -> int:
    return int(api.sql("""
        with cap as (insert into reader_capacity (reader_id, during, kind, status)
                     values (%(r)s, tstzrange(now(), now() + interval '30 minutes'), 'booking', 'confirmed')
                     returning id)
        insert into bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, status,
                              price_minor, currency, policy)
        select %(c)s, %(r)s, s.id, cap.id, now(), now() + interval '30 minutes', 'confirmed', 4500, 'USD', s.policy
          from cap, services s where s.code = 'healing' returning id""", {"r": reader.id, "c": c.id})[0][0])


def test_healing_energy_starts_only_after_the_pre_ritual_is_confirmed(
        client: TestClient, api: Api, reader: User) -> None:
    c = api.user("client")
    b = confirmed_healing(api, c, reader)
    ok(client.post(f"/calls/{b}/consent", json={"consent_given": True}, headers=c.h), 201)
    problem(client.post(f"/calls/{b}/start", headers=reader.h), 400, "pre_ritual_required")
    problem(client.post(f"/bookings/{b}/pre-ritual", headers=reader.h), 403)
    problem(client.post(f"/bookings/{b}/pre-ritual", headers=api.user("client").h), 404)
    first = ok(client.post(f"/bookings/{b}/pre-ritual", headers=c.h))
    assert first["pre_ritual"] is True and first["pre_ritual_confirmed_at"]
    again = ok(client.post(f"/bookings/{b}/pre-ritual", headers=c.h))
    assert again["pre_ritual_confirmed_at"] == first["pre_ritual_confirmed_at"]
    seen = ok(client.get(f"/bookings/{b}", headers=reader.h))
    assert seen["pre_ritual_confirmed_at"] == first["pre_ritual_confirmed_at"]
    call = ok(client.post(f"/calls/{b}/start", headers=reader.h), 201)
    assert call["per_minute_minor"] == 0, "a session paid in advance is not billed again by the minute"


@pytest.mark.parametrize("progressive", [True, False])
def test_emergency_calls_bill_rising_rates_only_while_the_flag_is_on(
        client: TestClient, api: Api, admin: User, progressive: bool) -> None:
    ok(client.patch("/admin/flags/billing.emergencyProgressivePricing", json={"enabled": progressive},
                    headers=admin.h))
    responder = api.user("reader")
    c = funded(api, client, amount=10000)
    siren = ok(client.post("/calls/emergency", json={"note": "please", "consent_given": True}, headers=c.h), 201)
    call = ok(client.post(f"/calls/emergency/{siren['id']}/answer", headers=responder.h), 201)
    t0 = dt.datetime.now(dt.UTC)
    ok(client.post(f"/calls/{call['id']}/simulate", json={"event": "started", "at": t0.isoformat()},
                   headers=c.h))
    end: Any = ok(client.post(f"/calls/{call['id']}/simulate", json={
        "event": "ended", "at": (t0 + dt.timedelta(minutes=11, seconds=30)).isoformat()}, headers=c.h))
    # 12 started minutes: 10 at the first step, 2 at the second
    assert end["billed_minor"] == (10 * 299 + 2 * 399 if progressive else 0)
    assert ok(client.get("/wallet", headers=c.h))["balance_minor"] == 10000 - end["billed_minor"]
    ok(client.patch("/admin/flags/billing.emergencyProgressivePricing", json={"enabled": False}, headers=admin.h))

"""Readings: the deck, Tarot V2 reveals in order, the natal chart from the ephemeris, the
assistant drafts that no client route returns, and the service clocks."""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest

from samia.providers.ai import LABEL

from ..helpers import ok, problem, run_jobs
from .conftest import order, produce


def test_the_deck_has_78_face_cards_with_both_languages_and_a_back(client, api) -> None:
    assert api.sql("select count(*) filter (where is_back), count(*) filter (where not is_back), "
                   "count(*) filter (where arcana = 'major'), count(distinct suit) from deck_cards") == [(1, 78, 22, 4)]
    cards = ok(client.get("/tarot/deck"))
    faces = [c for c in cards if not c["is_back"]]
    assert len(faces) == 78 and len({c["code"] for c in faces}) == 78
    for c in faces:
        assert all(c[k] for k in ("name_en", "name_ar", "upright_en", "upright_ar", "reversed_en", "reversed_ar"))
        assert re.search("[\u0600-\u06ff]", c["name_ar"] + c["upright_ar"])
    spreads = {s["code"]: len(s["positions"]) for s in ok(client.get("/tarot/spreads"))}
    assert spreads == {"single": 1, "three_card": 3, "celtic_cross": 10}


def test_cards_are_drawn_server_side_and_revealed_strictly_in_order(client, api, reader, admin) -> None:
    c = api.user("client")
    o = order(client, c, spread="celtic_cross")
    rid = o["reading_id"]
    rows = api.sql("select card_position, card_id from tarot_v2_card_selections where reading_id = %s "
                   "order by card_position", (rid,))
    assert [p for p, _ in rows] == list(range(1, 11)) and len({cid for _, cid in rows}) == 10
    # face down for the client, even through SQL under their own role
    view = ok(client.get(f"/readings/{rid}", headers=c.h))
    assert [p["card"] for p in view["positions"]] == [None] * 10 and view["back"]["code"] == "back"
    assert api.sql_as(c.id, "select count(*) from tarot_v2_card_selections where reading_id = %s", (rid,)) == [(0,)]
    body = problem(client.post(f"/readings/{rid}/reveals", json={"card_position": 2}, headers=c.h), 400,
                   "reveal_out_of_order")
    assert body["next_position"] == 1
    first = ok(client.post(f"/readings/{rid}/reveals", json={"card_position": 1}, headers=c.h))
    assert first["positions"][0]["revealed"] and first["positions"][0]["card"]["name_en"]
    assert first["positions"][1]["card"] is None
    problem(client.post(f"/readings/{rid}/reveals", json={"card_position": 1}, headers=c.h), 409, "already_revealed")
    problem(client.post(f"/readings/{rid}/reveals", json={"card_position": 3}, headers=c.h), 400)
    ok(client.post(f"/readings/{rid}/reveals", json={"card_position": 2}, headers=c.h))
    # the database keeps the order whoever writes, and nobody else turns the client's cards
    with pytest.raises(psycopg.Error, match="reveal card 4 first"):
        api.sql("update tarot_v2_card_selections set revealed_at = now() where reading_id = %s and card_position = 5",
                (rid,))
    stranger = api.user("client")
    problem(client.post(f"/readings/{rid}/reveals", json={"card_position": 3}, headers=stranger.h), 404)
    problem(client.get(f"/readings/{rid}", headers=stranger.h), 404)
    # the seeds' integrity check: positions start at 1
    assert api.sql("select min(card_position) = 1 from tarot_v2_card_selections where reading_id = %s", (rid,)) == [
        (True,)]
    # a client cannot record a draw of their own choosing
    with pytest.raises(psycopg.Error, match="permission denied"):
        api.sql_as(c.id, "select app.record_draw(%s, 'rider_waite', 'single', array[1]::bigint[], array[false])",
                   (o["id"],))


def test_with_tarot_v2_off_the_whole_spread_is_shown_at_once(client, api) -> None:
    """feature.tarotV2 gates in-order reveals: off (for this client), every card of a new reading is
    face up from the start and there is nothing to turn; on again, the next reading hides them."""
    c = api.user("client")
    api.sql("update feature_flags set enabled = false where key = 'feature.tarotV2'")
    try:
        rid = order(client, c, spread="three_card")["reading_id"]
    finally:
        api.sql("update feature_flags set enabled = true where key = 'feature.tarotV2'")
    view = ok(client.get(f"/readings/{rid}", headers=c.h))
    assert [p["revealed"] for p in view["positions"]] == [True] * 3
    assert all(p["card"]["name_en"] for p in view["positions"])
    assert api.sql_as(c.id, "select count(*) from tarot_v2_card_selections where reading_id = %s", (rid,)) == [(3,)]
    problem(client.post(f"/readings/{rid}/reveals", json={"card_position": 1}, headers=c.h), 409, "already_revealed")
    hidden = order(client, c, spread="three_card")["reading_id"]
    assert [p["card"] for p in ok(client.get(f"/readings/{hidden}", headers=c.h))["positions"]] == [None] * 3


def test_draws_vary_and_come_from_the_whole_deck(client, api) -> None:
    c = api.user("client")
    api.sql("update rate_limits set limit_count = 1000 where name = 'orders'")
    try:
        first_cards = set()
        for _ in range(12):
            rid = order(client, c, spread="single")["reading_id"]
            first_cards |= {cid for (cid,) in api.sql("select card_id from tarot_v2_card_selections "
                                                      "where reading_id = %s", (rid,))}
        assert len(first_cards) >= 6  # 12 draws from 78 cards: a constant or narrow draw fails this
    finally:
        api.sql("update rate_limits set limit_count = 10 where name = 'orders'")


def test_natal_chart_from_the_ephemeris(client, api, reader, admin) -> None:
    from skyfield.api import Loader
    from skyfield_data import get_skyfield_data_path

    c = api.user("client")
    o = order(client, c, service="astro", birth={"date": "1990-05-15", "time": "14:30", "lat": 33.89, "lon": 35.50,
                                                 "tz": "Asia/Beirut"})
    assert "chart" not in o or o["chart"] is None  # for the reader, not the client
    ok(client.post(f"/orders/{o['id']}/assign", json={"reader_id": reader.id}, headers=admin.h))
    chart = ok(client.get(f"/orders/{o['id']}", headers=reader.h))["chart"]
    assert chart["planets"]["sun"]["sign"] == "Taurus"
    # the Moon's sign, computed here independently from the same JPL ephemeris
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        load = Loader(get_skyfield_data_path(), expire=False)
    ts, eph = load.timescale(builtin=True), load("de421.bsp")
    try:
        t = ts.utc(1990, 5, 15, 11, 30)  # 14:30 in Beirut (UTC+3, summer time)
        _, lon, _ = eph["earth"].at(t).observe(eph["moon"]).apparent().ecliptic_latlon(epoch="date")
    finally:
        eph.close()
    signs = ["Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo", "Libra", "Scorpio", "Sagittarius",
             "Capricorn", "Aquarius", "Pisces"]
    assert chart["planets"]["moon"]["sign"] == signs[int(lon.degrees // 30)]
    assert chart["house_system"] == "whole_sign" and len(chart["houses"]) == 12
    assert chart["ascendant"]["sign"] == "Virgo"  # Swiss Ephemeris gives Virgo 22.35° for this birth
    assert any(a["aspect"] in ("trine", "square", "conjunction", "opposition", "sextile") for a in chart["aspects"])

    # no birth time: no ascendant, no houses, and the Moon flagged if it changes sign that day
    o2 = order(client, c, service="astro", birth={"date": "1990-05-15"})
    ok(client.post(f"/orders/{o2['id']}/assign", json={"reader_id": reader.id}, headers=admin.h))
    c2 = ok(client.get(f"/orders/{o2['id']}", headers=reader.h))["chart"]
    assert "ascendant" not in c2 and "houses" not in c2 and c2["birth_time_known"] is False
    assert c2["planets"]["sun"]["sign"] == "Taurus"
    assert all("house" not in p for p in c2["planets"].values())
    # bad birth data is a clear 422 and leaves no order behind
    before = api.sql("select count(*) from orders where user_id = %s", (c.id,))
    for bad in ({"date": "1990-05-15", "time": "14:30"}, {"date": "1990-05-15", "lat": 10},
                {"date": "1990-05-15", "time": "14:30", "tz": "Mars/Olympus"}, {"date": "1850-01-01"}):
        problem(client.post("/orders", json={"service": "astro", "birth": bad}, headers=c.h), 422)
    assert api.sql("select count(*) from orders where user_id = %s", (c.id,)) == before


def _walk_as_client(client, user, ids: dict[str, int]) -> list[str]:  # type: ignore[no-untyped-def]
    """Call every route in the OpenAPI document as the client, with the ids given for its
    path parameters, and return every response body."""
    bodies = []
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        if path in ("/auth/logout",):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)
        for method in ops:
            if method == "get":
                r = client.get(url, headers=user.h)
            else:
                r = client.request(method.upper(), url, json={}, headers=user.h)
            bodies.append(f"{method} {path} {r.status_code} {r.text}")
    return bodies


def test_no_client_route_returns_a_draft_or_unapproved_audio(client, api, reader, monitor, admin, audio) -> None:
    c = api.user("client")
    o = order(client, c, question="About my career")
    produce(client, o["id"], reader, audio, admin=admin)
    d = client.post(f"/reader/orders/{o['id']}/assist/draft", headers=reader.h)
    assert d.status_code == 201, d.text
    draft = d.json()
    assert draft["label"] == LABEL and "About my career" in draft["body"] and "Position 1" in draft["body"]
    assert ok(client.get(f"/readings/{o['reading_id']}/draft", headers=monitor.h))["id"] == draft["id"]
    assert [x["id"] for x in ok(client.get(f"/reader/orders/{o['id']}/drafts", headers=reader.h))] == [draft["id"]]
    problem(client.get(f"/readings/{o['reading_id']}/draft", headers=c.h), 404)
    problem(client.get(f"/reader/orders/{o['id']}/drafts", headers=c.h), 403)
    assert api.sql_as(c.id, "select count(*) from reading_drafts") == [(0,)]
    with pytest.raises(psycopg.Error, match="check"):
        api.sql("update tarot_v2_readings set ai_draft_visible_to_client = true where id = %s", (o["reading_id"],))

    (media,) = api.sql("select output_media_id from orders where id = %s", (o["id"],))[0]
    ids = {"order_id": o["id"], "reading_id": o["reading_id"], "media_id": media, "booking_id": 1,
           "payment_id": 1, "user_id": 1}
    body_lines = [b for b in draft["body"].splitlines() if len(b) > 20]
    before_approval = _walk_as_client(client, c, ids)
    for text in before_approval:
        assert "Assistant Draft" not in text and not any(line in text for line in body_lines), text[:200]
        assert f"/media/{media}/content?sha=" not in text, text[:200]
        assert '"output_media_id":' + str(media) not in text.replace(" ", ""), text[:200]
    ok(client.post(f"/monitor/orders/{o['id']}/approve", json={}, headers=monitor.h))
    for text in _walk_as_client(client, c, ids):
        assert "Assistant Draft" not in text and not any(line in text for line in body_lines), text[:200]
    assert any(f"/media/{media}/content?sha=" in t for t in _walk_as_client(client, c, ids))  # now it may


def test_assist_drafts_are_limited_to_ten_an_hour(client, api, reader, admin) -> None:
    c = api.user("client")
    o = order(client, c)["id"]
    ok(client.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h))
    api.sql("delete from app_private.rate_buckets where bucket like 'assist_draft:%%'")
    codes = [client.post(f"/reader/orders/{o}/assist/draft", headers=reader.h).status_code for _ in range(11)]
    assert codes == [201] * 10 + [429]
    other = api.user("reader")
    problem(client.post(f"/reader/orders/{o}/assist/draft", headers=other.h), 404)  # not their order


def run_clocks(settings, dsns) -> None:  # type: ignore[no-untyped-def]
    run_jobs(settings, dsns, "order_clocks")


def test_breached_clocks_strike_escalate_and_refund_once(client, api, reader, monitor, admin, audio, settings,
                                                         dsns) -> None:
    api.sql("update services set price_minor = 1200 where code = 'tarot'")
    try:
        c = api.user("client")
        assert client.post("/wallet/topups", json={"amount_minor": 5000, "card_token": "tok_visa"},
                           headers=c.h).status_code == 201
        late = order(client, c)["id"]
        on_time = order(client, c)["id"]
        slow_review = order(client, c)["id"]
        ok(client.post(f"/orders/{late}/assign", json={"reader_id": reader.id}, headers=admin.h))
        produce(client, slow_review, reader, audio, admin=admin)
        assert ok(client.get("/wallet", headers=c.h))["balance_minor"] == 5000 - 3 * 1200
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        api.sql("update orders set deliver_by = %s where id = %s", (past, late))
        api.sql("update orders set review_by = %s where id = %s", (past, slow_review))
        queue = {q["id"]: q for q in ok(client.get("/reader/queue", headers=reader.h))}
        assert queue[late]["delivery_overdue"] is True
        run_clocks(settings, dsns)
        run_clocks(settings, dsns)  # twice: still one strike, one escalation, one refund
        assert api.sql("select reader_id::text, order_id, reason from reader_strikes where order_id = any(%s)",
                       ([late, on_time, slow_review],)) == [(reader.id, late, "delivery_breach")]
        assert sorted(api.sql("select order_id, kind from order_escalations where order_id = any(%s)",
                              ([late, on_time, slow_review],))) == sorted(
            [(late, "delivery_breach"), (slow_review, "review_overdue")])
        assert api.sql("select count(*) from payment_transactions where order_id = %s and kind = 'refund'",
                       (late,)) == [(1,)]
        assert ok(client.get("/wallet", headers=c.h))["balance_minor"] == 5000 - 2 * 1200
        mq = {q["id"]: q for q in ok(client.get("/monitor/queue", headers=monitor.h))}
        assert mq[slow_review]["review_overdue"] is True
        assert ("review_overdue",) in api.sql("select template from notification_outbox where recipient_id = %s",
                                              (admin.id,))
        # the reader still delivers late: the client gets the audio, the refund stands, not doubled
        ok(client.post(f"/orders/{late}/start", headers=reader.h))
        ok(client.post(f"/orders/{late}/output", content=audio, headers=reader.h))
        ok(client.post(f"/orders/{late}/submit", headers=reader.h))
        ok(client.post(f"/monitor/orders/{late}/approve", json={}, headers=monitor.h))
        run_clocks(settings, dsns)
        assert ok(client.get("/wallet", headers=c.h))["balance_minor"] == 5000 - 2 * 1200
        assert len(api.audit_rows("order.delivery_breached", str(late))) == 1
    finally:
        api.sql("update services set price_minor = 0 where code = 'tarot'")
    assert api.sql("select coalesce(sum(amount_minor), 0) from ledger_entries") == [(0,)]


def test_the_openai_compatible_drafter_through_a_loopback_endpoint(dsns, settings, api, admin) -> None:
    import json

    from fastapi.testclient import TestClient

    from samia.app import create_app

    from ..conftest import make_settings
    from ..helpers import JsonHandler, serving

    seen: list[dict] = []

    class FakeAI(JsonHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"auth": self.headers["Authorization"], "path": self.path, "body": body})
            self.reply(200, {"choices": [{"message": {"role": "assistant", "content": "Open with the Tower."}}]})

    c, reader = api.user("client"), api.user("reader")  # a reader with assist drafts left this hour
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (reader.id,))
    ai = {"AI_PROVIDER": "openai", "AI_API_KEY": "sk-test-key", "SAMIA_DATA_DIR": str(settings.data_dir)}
    with serving(FakeAI) as url, TestClient(create_app(make_settings(**ai, AI_BASE_URL=url + "/v1"), dsns=dsns),
                                            raise_server_exceptions=False) as http:
        o = order(http, c, question="Is it time to change jobs?")["id"]
        ok(http.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h))
        r = http.post(f"/reader/orders/{o}/assist/draft", headers=reader.h)
        assert r.status_code == 201, r.text
        assert r.json()["provider"] == "openai" and r.json()["body"].endswith("Open with the Tower.")
        assert r.json()["body"].startswith(f"[{LABEL}]")
    assert seen[0]["auth"] == "Bearer sk-test-key" and seen[0]["path"] == "/v1/chat/completions"
    assert "Is it time to change jobs?" in seen[0]["body"]["messages"][1]["content"]
    with TestClient(create_app(make_settings(AI_PROVIDER="openai"), dsns=dsns),
                    raise_server_exceptions=False) as http:
        body = problem(http.post(f"/reader/orders/{o}/assist/draft", headers=reader.h), 503,
                       "provider_not_configured")
        assert "AI_API_KEY" in body["detail"]

"""Availability computed in the database (DST included), holds with TTL under a real
exclusion constraint, concurrency through HTTP, and the policy snapshot."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo

import httpx
import pytest

from samia.bookings.policy import evaluate_refund, may_reschedule
from samia.jobs import worker
from samia.providers.email import MemoryMailer
from tests.helpers import problem

UTC = dt.UTC
BEIRUT = zoneinfo.ZoneInfo("Asia/Beirut")


@pytest.fixture(scope="module")
def reader(api, client):  # type: ignore[no-untyped-def]
    """A reader offering tarot (30 min) every day 00:00-23:30 UTC."""
    r = api.user("reader")
    admin = api.user("admin")
    assert client.put(f"/admin/readers/{r.id}/services", json={"services": ["tarot", "coffee"]},
                      headers=admin.h).json() == ["coffee", "tarot"]
    rules = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]
    assert client.put("/readers/me/availability", json={"tz": "UTC", "rules": rules}, headers=r.h).status_code == 200
    return r


def slot(days: int, hour: int, minute: int = 0) -> dt.datetime:
    base = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=days)
    return base.replace(hour=hour, minute=minute)


def test_probe_follows_the_readers_wall_clock_across_dst(client, api) -> None:
    r = api.user("reader")
    admin = api.user("admin")
    assert client.put(f"/admin/readers/{r.id}/services", json={"services": ["tarot"]},
                      headers=admin.h).status_code == 200
    rules = [{"weekday": d, "start": "09:00", "end": "10:00"} for d in range(1, 8)]
    assert client.put("/readers/me/availability", json={"tz": "Asia/Beirut", "rules": rules},
                      headers=r.h).status_code == 200
    c = api.user("client")
    # Lebanon moves to summer time on the last Sunday of March 2027 (28 March)
    got = client.get("/availability/probe", headers=c.h, params={
        "reader": r.id, "service": "tarot", "from": "2027-03-26T00:00:00Z", "to": "2027-03-31T00:00:00Z"}).json()
    starts = [dt.datetime.fromisoformat(s["starts_at"]) for s in got["slots"]]
    expected = [dt.datetime(2027, 3, day, h, m, tzinfo=BEIRUT).astimezone(UTC)
                for day in range(26, 31) for h, m in ((9, 0), (9, 30))]
    assert starts == expected
    assert {s.astimezone(UTC).hour for s in starts[:4]} == {7}, "winter: 09:00 Beirut is 07:00 UTC"
    assert {s.astimezone(UTC).hour for s in starts[-4:]} == {6}, "summer: 09:00 Beirut is 06:00 UTC"


def test_probe_subtracts_blocks_and_adds_openings(client, api, reader) -> None:
    c = api.user("client")
    start, end = slot(3, 10), slot(3, 12)
    before = client.get("/availability/probe", headers=c.h, params={
        "reader": reader.id, "service": "tarot", "from": start.isoformat(), "to": end.isoformat()}).json()["slots"]
    assert len(before) == 4
    r = client.post("/readers/me/availability/exceptions", headers=reader.h,
                    json={"starts_at": slot(3, 10, 30).isoformat(), "ends_at": slot(3, 11, 30).isoformat(),
                          "kind": "block"})
    assert r.status_code == 201
    after = client.get("/availability/probe", headers=c.h, params={
        "reader": reader.id, "service": "tarot", "from": start.isoformat(), "to": end.isoformat()}).json()["slots"]
    assert [s["starts_at"][11:16] for s in after] == ["10:00", "11:30"]
    problem(client.get("/availability/probe", headers=c.h, params={
        "reader": reader.id, "service": "tarot", "from": start.isoformat(),
        "to": (start + dt.timedelta(days=40)).isoformat()}), 422)


def test_hold_then_409_then_expiry_frees_the_slot(client, api, reader, settings, dsns) -> None:
    a, b = api.user("client"), api.user("client")
    when = slot(4, 14)
    r = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                            "starts_at": when.isoformat()}, headers=a.h)
    assert r.status_code == 201, r.text
    held = r.json()
    assert held["status"] == "held" and held["price_minor"] == 0
    ttl = dt.datetime.fromisoformat(held["hold_expires_at"]) - dt.datetime.now(UTC)
    assert dt.timedelta(seconds=590) < ttl <= dt.timedelta(seconds=600)
    problem(client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                                "starts_at": when.isoformat()}, headers=b.h), 409, "slot_taken")
    # the probe no longer offers it
    slots = client.get("/availability/probe", headers=b.h, params={
        "reader": reader.id, "service": "tarot", "from": when.isoformat(),
        "to": (when + dt.timedelta(hours=1)).isoformat()}).json()["slots"]
    assert [s["starts_at"][11:16] for s in slots] == ["14:30"]
    # the hold lapses: the next claim clears it in its own transaction and wins
    api.sql("update reader_capacity set expires_at = now() - interval '1 second' "
            "where id = (select capacity_id from bookings where id = %s)", (held["id"],))
    r = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                            "starts_at": when.isoformat()}, headers=b.h)
    assert r.status_code == 201, r.text
    assert client.get(f"/bookings/{held['id']}", headers=a.h).json()["status"] == "expired"
    # and the sweep job expires lapsed holds nobody contended for
    lone = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                               "starts_at": slot(4, 16).isoformat()}, headers=a.h).json()
    api.sql("update reader_capacity set expires_at = now() - interval '1 second' "
            "where id = (select capacity_id from bookings where id = %s)", (lone["id"],))
    api.sql("select app.defer('expire_holds')")
    asyncio.run(worker.run(settings, dsns, concurrency=1, wait=False, mailer=MemoryMailer()))
    assert client.get(f"/bookings/{lone['id']}", headers=a.h).json()["status"] == "expired"


def test_hold_refusals(client, api, reader) -> None:
    c = api.user("client")
    body = {"reader_id": reader.id, "service": "tarot", "starts_at": slot(5, 23, 45).isoformat()}
    problem(client.post("/bookings/hold", json=body, headers=c.h), 422, "not_available")
    body["starts_at"] = slot(5, 9).isoformat()
    problem(client.post("/bookings/hold", json={**body, "service": "healing"}, headers=c.h), 422)
    problem(client.post("/bookings/hold", json=body, headers=reader.h), 403)
    problem(client.post("/bookings/hold", json={**body, "starts_at": "2020-01-01T09:00:00Z"}, headers=c.h), 422)
    problem(client.post("/bookings/hold", json={**body, "starts_at": "2030-01-01T09:00:00"}, headers=c.h), 422)


def test_bookings_are_private_to_their_parties(client, api, reader) -> None:
    a, b, monitor = api.user("client"), api.user("client"), api.user("monitor")
    held = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "coffee",
                                               "starts_at": slot(6, 8).isoformat()}, headers=a.h).json()
    problem(client.get(f"/bookings/{held['id']}", headers=b.h), 404)
    assert client.get(f"/bookings/{held['id']}", headers=reader.h).status_code == 200
    assert client.get(f"/bookings/{held['id']}", headers=monitor.h).status_code == 200
    assert [x["id"] for x in client.get("/bookings", headers=a.h).json()] == [held["id"]]
    assert client.get("/bookings", headers=b.h).json() == []


def test_policy_is_a_snapshot(client, api, reader) -> None:
    c = api.user("client")
    held = client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                               "starts_at": slot(7, 9).isoformat()}, headers=c.h).json()
    before = api.sql("select policy from bookings where id = %s", (held["id"],))[0][0]
    api.sql("update services set policy = jsonb_set(policy, '{refund_curve}', '[]') where code = 'tarot'")
    after = api.sql("select policy from bookings where id = %s", (held["id"],))[0][0]
    assert after == before and after["refund_curve"]


def test_fifty_concurrent_holds_one_winner_twenty_times(served, api, reader) -> None:
    clients = [api.user("client") for _ in range(5)]

    async def race(when: dt.datetime) -> list[tuple[int, str, str]]:
        async with httpx.AsyncClient(base_url=served, timeout=30) as http:
            async def one(i: int) -> tuple[int, str, str]:
                r = await http.post("/bookings/hold", headers=clients[i % 5].h,
                                    json={"reader_id": reader.id, "service": "tarot", "starts_at": when.isoformat()})
                body = r.json()
                return r.status_code, body.get("code", ""), body.get("detail", "")
            return await asyncio.gather(*(one(i) for i in range(50)))

    for round_ in range(20):
        when = slot(10 + round_ // 40, (round_ % 40) // 2, 30 * (round_ % 2))
        results = asyncio.run(race(when))
        assert [r[0] for r in results].count(201) == 1, results
        assert all(r[:2] == (409, "slot_taken") for r in results if r[0] != 201), results
    overlaps = api.sql("""select count(*) from reader_capacity a join reader_capacity b
                           on a.reader_id = b.reader_id and a.id < b.id and a.during && b.during
                          where a.status in ('held', 'confirmed', 'live')
                            and b.status in ('held', 'confirmed', 'live')""")
    assert overlaps == [(0,)]


def test_refund_curve_is_evaluated_from_the_snapshot() -> None:
    policy = {"refund_curve": [{"hours_before": 2, "refund_pct": 50}, {"hours_before": 24, "refund_pct": 100},
                               {"hours_before": 0, "refund_pct": 0}], "refund_to": "wallet",
              "reschedule": {"max": 1, "notice_hours": 12}}
    start = dt.datetime(2027, 1, 10, 12, tzinfo=UTC)
    cases = [(48, 1999), (24, 1999), (23.9, 999), (2, 999), (1, 0), (-1, 0)]
    for hours, amount in cases:
        r = evaluate_refund(policy, price_minor=1999, starts_at=start,
                            cancelled_at=start - dt.timedelta(hours=hours), by="client")
        assert (r.amount_minor, r.destination) == (amount, "wallet"), hours
    assert evaluate_refund(policy, price_minor=1999, starts_at=start, cancelled_at=start + dt.timedelta(hours=1),
                           by="reader").amount_minor == 1999
    assert may_reschedule(policy, done=0, starts_at=start, now=start - dt.timedelta(hours=13)) is None
    assert "12 h" in may_reschedule(policy, done=0, starts_at=start, now=start - dt.timedelta(hours=11))
    assert "at most 1" in may_reschedule(policy, done=1, starts_at=start, now=start - dt.timedelta(days=3))

"""Circuit breakers per provider and the admin on/off switch."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from samia.app import create_app
from samia.core.breaker import Breaker
from samia.core.problems import AppError
from tests.conftest import make_settings
from tests.helpers import JsonHandler, problem, serving
from tests.payments.test_payments import hold, reader  # noqa: F401  (module fixture)


def test_breaker_opens_after_five_failures_and_a_half_open_probe_closes_it() -> None:
    now = [0.0]
    b = Breaker("x", threshold=5, cooldown=30, clock=lambda: now[0])
    calls = []

    async def failing() -> None:
        calls.append(1)
        raise AppError(503, "provider_unavailable")

    async def fine() -> str:
        calls.append(1)
        return "ok"

    async def run() -> None:
        for _ in range(5):
            with pytest.raises(AppError):
                await b.call(failing)
        assert b.state == "open" and len(calls) == 5
        with pytest.raises(AppError, match="circuit open"):
            await b.call(fine)
        assert len(calls) == 5, "an open breaker does not call the provider"
        now[0] = 31
        assert b.state == "half_open"
        with pytest.raises(AppError):
            await b.call(failing)  # the trial fails: open again, for a new cool-down
        assert b.state == "open"
        now[0] = 62
        assert await b.call(fine) == "ok"
        assert b.state == "closed" and b.failures == 0
    asyncio.run(run())


class DownStripe(JsonHandler):
    healthy: ClassVar[list[bool]] = [False]
    hits: ClassVar[list[int]] = [0]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.hits[0] += 1
        if not self.healthy[0]:
            return self.reply(500, {"error": {"type": "api_error", "message": "Something went wrong"}})
        self.reply(200, {"id": "pi_ok", "object": "payment_intent", "status": "succeeded", "client_secret": "s"})


def test_a_failing_provider_opens_its_breaker_until_a_probe_succeeds(dsns, client, api, reader) -> None:  # noqa: F811
    c, admin = api.user("client"), api.user("admin")
    with serving(DownStripe) as url:
        settings = make_settings(CARD_PROVIDER="stripe", STRIPE_API_KEY="sk_test_x", STRIPE_MAX_RETRIES=0,
                                 STRIPE_API_BASE=url)
        app = create_app(settings, dsns=dsns)
        now = [1000.0]
        app.state.platform.clock = lambda: now[0]
        with TestClient(app) as s:
            booking = hold(client, reader, c)
            pay = {"booking_id": booking, "method": "card", "card_token": "pm_card_visa"}
            for _ in range(5):
                problem(s.post("/payments", json=pay, headers=c.h), 503, "provider_unavailable")
            assert DownStripe.hits[0] == 5
            b = problem(s.post("/payments", json=pay, headers=c.h), 503, "provider_unavailable")
            assert "circuit open" in b["detail"] and DownStripe.hits[0] == 5
            health = {h["provider"]: h for h in s.get("/admin/providers/health", headers=admin.h).json()}
            assert (health["stripe"]["breaker"], health["stripe"]["failures"]) == ("open", 5)
            assert api.sql("select count(*) from payment_transactions where booking_id = %s", (booking,)) == [(0,)]
            DownStripe.healthy[0] = True
            now[0] += 31  # the cool-down passes: one trial call goes through and succeeds
            r = s.post("/payments", json=pay, headers=c.h)
            assert r.status_code == 201, r.text
            health = {h["provider"]: h for h in s.get("/admin/providers/health", headers=admin.h).json()}
            assert (health["stripe"]["breaker"], health["stripe"]["failures"]) == ("closed", 0)


def test_an_admin_switch_stops_a_provider_at_once(client, api, reader) -> None:  # noqa: F811
    c, admin = api.user("client"), api.user("admin")
    problem(client.post("/admin/providers/toggle", json={"provider": "testcard", "enabled": False}, headers=c.h), 403)
    r = client.post("/admin/providers/toggle", json={"provider": "testcard", "enabled": False,
                                                     "reason": "processor incident"}, headers=admin.h)
    assert r.json()["enabled"] is False
    booking = hold(client, reader, c)
    b = problem(client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                            headers=c.h), 503, "provider_disabled")
    assert b["provider"] == "testcard"
    meta = api.audit_rows("provider.toggle", "testcard")[-1][5]
    assert meta == {"enabled": False, "reason": "processor incident"}
    client.post("/admin/providers/toggle", json={"provider": "testcard", "enabled": True}, headers=admin.h)
    assert client.post("/payments", json={"booking_id": booking, "method": "card", "card_token": "tok_visa"},
                       headers=c.h).status_code == 201

"""Behind PgBouncer in transaction pooling mode: claims stay inside their transaction even when
every client shares one server connection, concurrent holds through two API processes win
each slot exactly once, and the job queue runs on its own session connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from samia import db
from samia.core.access import PRELUDE
from samia.jobs import worker
from samia.providers.email import MemoryMailer

from .conftest import api_process, bouncing, dbname, pooled_env

UTC = dt.UTC


# what a request leaves on its server connection: claims, request id, role (the login's own)
LEFT = ("select nullif(current_setting('request.jwt.claims', true), ''), "
        "nullif(current_setting('request.id', true), ''), current_user, pg_backend_pid()")


def claims(uid: str) -> str:
    return json.dumps({"sub": uid, "role": "authenticated", "aud": "authenticated"})


@pytest.fixture(scope="module")
def pair(api):  # type: ignore[no-untyped-def]
    return api.user("client"), api.user("client")


def test_claims_stay_in_their_transaction_on_one_server_connection(owner_dsn, pair) -> None:
    a, b = pair
    with bouncing(owner_dsn, size=1) as bouncer:
        dsn = bouncer.dsn(dbname(owner_dsn))
        with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
            first.execute(PRELUDE, ("authenticated", claims(a.id), "req-a"))
            uid, pid = first.execute("select auth.uid()::text, pg_backend_pid()").fetchone()  # type: ignore[misc]
            assert uid == a.id
            first.commit()
            # another client, the same server connection: nothing of the first request is left
            row = second.execute(LEFT).fetchone()
            assert row == (None, None, "authenticator", pid)
            second.rollback()
            # a request that fails after setting its claims leaves nothing either
            first.execute(PRELUDE, ("authenticated", claims(b.id), "req-b"))
            with pytest.raises(psycopg.errors.DivisionByZero):
                first.execute("select 1 / 0")
            first.rollback()
            row = second.execute(LEFT).fetchone()
            assert row == (None, None, "authenticator", pid)
            second.rollback()

        async def interleaved() -> list[tuple[str, str | None, tuple[str | None, ...]]]:
            """Forty requests of two users at once through a pool of four client connections
            sharing one server connection; every fourth fails half-way."""
            async with AsyncConnectionPool(dsn, min_size=4, max_size=4, open=False,
                                           kwargs={"prepare_threshold": None}) as pool:
                async def one(i: int) -> tuple[str, str | None, tuple[str | None, ...]]:
                    me = (a, b)[i % 2].id
                    async with pool.connection() as conn:
                        try:
                            async with conn.transaction():
                                await conn.execute(PRELUDE, ("authenticated", claims(me), f"req-{i}"))
                                await conn.execute("select pg_sleep(0.002)")
                                cur = await conn.execute("select auth.uid()::text")
                                seen = (await cur.fetchone())[0]  # type: ignore[index]
                                if i % 4 == 3:
                                    await conn.execute("select 1 / 0")
                        except psycopg.errors.DivisionByZero:
                            pass
                        cur = await conn.execute(LEFT)  # after commit / rollback
                        after = (await cur.fetchone())[:3]  # type: ignore[index]
                        await conn.rollback()
                        return me, seen, after
                return await asyncio.gather(*(one(i) for i in range(40)))

        results = asyncio.run(interleaved())
        assert all(seen == me and after == (None, None, "authenticator") for me, seen, after in results), results


def test_api_processes_on_one_server_connection_answer_each_caller_as_themselves(owner_dsn, pair) -> None:
    a, b = pair
    with bouncing(owner_dsn, size=1) as bouncer, api_process(pooled_env(owner_dsn, bouncer)) as one, \
            api_process(pooled_env(owner_dsn, bouncer)) as two:
        async def storm() -> list[tuple[str, int, str | None]]:
            async with httpx.AsyncClient(timeout=30) as http:
                async def call(i: int) -> tuple[str, int, str | None]:
                    user = (a, b)[i % 2]
                    if i % 5 == 4:  # a refused request in between: its claims were set, then rolled back
                        r = await http.get(f"{(one, two)[i % 2]}/admin/users", headers=user.h)
                        return "refused", r.status_code, None
                    r = await http.get(f"{(one, two)[(i // 2) % 2]}/me", headers=user.h)
                    return user.id, r.status_code, r.json().get("id")
                return await asyncio.gather(*(call(i) for i in range(60)))

        for me, status, seen in asyncio.run(storm()):
            if me == "refused":
                assert status == 403
            else:
                assert (status, seen) == (200, me)


@pytest.fixture(scope="module")
def reader(api, client):  # type: ignore[no-untyped-def]
    """A reader offering tarot every day 00:00-23:30 UTC."""
    r = api.user("reader")
    admin = api.user("admin")
    assert client.put(f"/admin/readers/{r.id}/services", json={"services": ["tarot"]},
                      headers=admin.h).status_code == 200
    rules = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]
    assert client.put("/readers/me/availability", json={"tz": "UTC", "rules": rules}, headers=r.h).status_code == 200
    return r


def test_concurrent_holds_through_two_api_processes_win_each_slot_once(owner_dsn, api, reader) -> None:
    clients = [api.user("client") for _ in range(4)]
    day = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=12)
    with bouncing(owner_dsn, size=4) as bouncer, api_process(pooled_env(owner_dsn, bouncer)) as one, \
            api_process(pooled_env(owner_dsn, bouncer)) as two:
        async def race(when: dt.datetime) -> list[tuple[int, str]]:
            async with httpx.AsyncClient(timeout=30) as http:
                async def hold(i: int) -> tuple[int, str]:
                    r = await http.post(f"{(one, two)[i % 2]}/bookings/hold", headers=clients[i % 4].h,
                                        json={"reader_id": reader.id, "service": "tarot",
                                              "starts_at": when.isoformat()})
                    return r.status_code, r.json().get("code", "")
                return await asyncio.gather(*(hold(i) for i in range(30)))

        for n in range(12):
            outcomes = asyncio.run(race(day + dt.timedelta(minutes=30 * n)))
            assert [s for s, _ in outcomes].count(201) == 1, outcomes
            assert all(o == (409, "slot_taken") for o in outcomes if o[0] != 201), outcomes
    held = api.sql("select count(*), count(distinct lower(during)) from reader_capacity "
                   "where reader_id = %s and status = 'held'", (reader.id,))
    assert held == [(12, 12)]


def test_the_queue_needs_its_own_session_connection(owner_dsn, settings, dsns, api, reader) -> None:
    """procrastinate's connections carry a startup role (options), LISTEN and session locks:
    PgBouncer refuses them; with QUEUE_DATABASE_URL direct, a worker whose tasks go through
    the pooler runs a queued job."""
    client = api.user("client")
    when = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=20)
    r = api.client.post("/bookings/hold", headers=client.h,
                        json={"reader_id": reader.id, "service": "tarot", "starts_at": when.isoformat()})
    assert r.status_code == 201, r.text
    api.sql("update reader_capacity set expires_at = now() - interval '1 second' "
            "where reader_id = %s and lower(during) = %s", (reader.id, when))
    with bouncing(owner_dsn, size=2) as bouncer:
        pooled = bouncer.dsn(dbname(owner_dsn))
        with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
            psycopg.connect(pooled + " options='-c role=service_role'").close()
        api.sql("select app.defer('expire_holds')")
        queue_direct = settings.model_copy(update={"queue_database_url": db.as_user(owner_dsn, "authenticator")})
        asyncio.run(worker.run(queue_direct, db.Dsns(owner=dsns.owner, app=pooled), concurrency=1, wait=False,
                               mailer=MemoryMailer()))
    assert api.sql("select status from bookings where reader_id = %s and starts_at = %s",
                   (reader.id, when)) == [("expired",)]

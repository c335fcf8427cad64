"""The API against pgbench running the identical SQL, every guard's cost, and latency under load.

In one run, on a private durable cluster (fsync on), with the same number of concurrent clients:
  reads   GET /me, GET /services, GET /readers, GET /readers/{id}, the storefront home page,
          GET /horoscopes/today (twelve published signs)
  writes  PATCH /me (the row and its audit entry), contended POST /bookings/hold
Each is measured through the real service (uvicorn or granian, 2 workers, access log and metrics on)
with wrk on loopback, and as pgbench running the statements the service sends (BEGIN, one
set_config round trip, the queries, COMMIT); reads and writes also as a BYPASSRLS role.
Then each guard, on ÷ off, on the route where it applies (POST /orders for the idempotency
key and the rate limiter, GET /me for the access log + metrics), and p50/p95/p99 at about
70 % of the measured maximum rate. Prints a table of ratios against the goals (issue 18).

Usage: make bench   (or .venv/bin/python bench/run.py [--seconds 10] [--clients 8] [--server granian])
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack

import psycopg
from lib import load_note, login, migrated_cluster, pgbench, row, serve, wrk
from psycopg import sql

from horoscopes import publish_today
from horoscopes import sql_script as horoscopes_sql
from samia import db
from samia.catalogue.service import DIRECTORY, SERVICES
from samia.cli import create_user
from samia.config import Settings
from samia.core.access import ANON_CLAIMS
from samia.horoscopes.service import beirut_day
from samia.profiles.service import COLUMNS

PASSWORD = "bench-password-123"
SLOTS = 48 * 7  # half-hour slots over a week, 00:00-24:00 UTC
GOALS = {"GET /me": 0.6, "PATCH /me": 0.8, "POST /bookings/hold": 0.75}


def lit(value: object) -> str:
    return sql.Literal(value).as_string(None)


def prelude(role: str, claims: str) -> str:
    return (f"select set_config('role', {lit(role)}, true), set_config('request.jwt.claims', {lit(claims)}, true), "
            "set_config('request.id', 'bench', true), app.request_identity();")


def one_line(text: str, **values: object) -> str:
    """A service's psycopg query as a pgbench statement: %(name)s → the value as a literal."""
    for name, value in values.items():
        text = text.replace(f"%({name})s", lit(value) if value is not None else "NULL")
    return " ".join(text.split()) + ";"


def claims_of(uid: str) -> str:
    return json.dumps({"sub": uid, "role": "authenticated", "aud": "authenticated"})


def sql_scripts(uid: str, reader: str) -> dict[str, str]:
    """The statements the service sends for each request, literally."""
    me = one_line(sql.SQL("select {} from profiles p join roles r on r.id = p.role_id "
                          "where p.id = {} and p.deleted_at is null").format(COLUMNS, sql.Literal(uid))
                  .as_string(None))
    update = (f"update profiles set first_name = 'Bench' || :n where id = {lit(uid)} and deleted_at is null "  # noqa: S608 (pgbench script, SQL literals)
              "returning id;")
    anon = prelude("anon", ANON_CLAIMS)
    services = one_line(SERVICES, country=None, code=None)
    directory = dict(reader=None, country=None, service=None, online=None, language=None)
    out = {}
    for tag, role in (("", "authenticated"), ("_bypass", "service_role")):
        p = prelude(role, claims_of(uid))
        out["me" + tag] = f"BEGIN READ ONLY;\n{p}\n{me}\nCOMMIT;\n"
        out["patch" + tag] = f"\\set n random(1, 1000000)\nBEGIN;\n{p}\n{update}\n{me}\nCOMMIT;\n"
    out["services"] = f"BEGIN READ ONLY;\n{anon}\n{services}\nCOMMIT;\n"
    out["readers"] = f"BEGIN READ ONLY;\n{anon}\n{one_line(DIRECTORY, **directory)}\nCOMMIT;\n"
    out["reader"] = (f"BEGIN READ ONLY;\n{anon}\n{one_line(DIRECTORY, **{**directory, 'reader': reader})}\n"
                     f"select * from app.reader_reviews({lit(reader)}, 20, NULL);\nCOMMIT;\n")
    out["home"] = (f"BEGIN READ ONLY;\n{anon}\n{services}\n{one_line(DIRECTORY, **{**directory, 'online': True})}\n"
                   "COMMIT;\n")
    return out


def hold_lua(reader: str, base: dt.datetime) -> str:
    """Each request claims a random half-hour slot of the week: contention on every slot."""
    return f"""
request = function()
  local t = {int(base.timestamp())} + math.random(0, {SLOTS - 1}) * 1800
  local body = string.format('{{"reader_id": "{reader}", "service": "tarot", "starts_at": "%s"}}',
                             os.date("!%Y-%m-%dT%H:%M:%SZ", t))
  return wrk.format(nil, nil, nil, body)
end"""


def hold_script(client_id: str, reader: str, base: dt.datetime) -> str:
    """The same claim in pgbench, through the same function; a lost race is caught so that
    pgbench keeps going (the API answers it 409): the savepoint costs pgbench, not us."""
    return (f"\\set n random(0, {SLOTS - 1})\nBEGIN;\n{prelude('authenticated', claims_of(client_id))}\n"  # noqa: S608
            f"select bench.try_hold({lit(reader)}, (select id from services where code = 'tarot'), "
            f"{lit(base.isoformat())}::timestamptz + :n * interval '30 minutes');\nCOMMIT;\n")


def orders_lua(tokens: list[str], keyed: bool) -> str:
    """Free tarot orders from many clients (each under its own limit), with or without a fresh
    Idempotency-Key per request."""
    return f"""
local tokens = {{{", ".join(json.dumps(t) for t in tokens)}}}
local n, me = 0, tostring({{}}):sub(8)  -- a table's address: distinct per wrk thread
request = function()
  n = n + 1
  local h = {{["Content-Type"] = "application/json",
             ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}}
  {'h["Idempotency-Key"] = string.format("k-%s-%d-%d", me, os.time(), n)' if keyed else ''}
  return wrk.format("POST", "/orders", h, '{{"service": "tarot", "question": "bench", "spread": "single"}}')
end"""


def alternate(seconds: int, runs: dict[str, Callable[[int], dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each run three times for a third of `seconds`, in turn, the order reversed every other
    round (so that no side always follows the same neighbour); the median run of each."""
    third = max(2, seconds // 3)
    seen: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
    for i in range(3):
        for key, run in (runs.items() if i % 2 == 0 else reversed(runs.items())):
            seen[key].append(run(third))
    return {k: sorted(v, key=lambda x: x["rps"])[1] for k, v in seen.items()}


def at70(peak: dict[str, float], clients: int) -> dict[str, float]:
    """Pacing for ~70 % of a measured peak: a response under that load takes about 40 % of a
    connection's cycle at the peak (clients / peak rate)."""
    return {"rate": 0.7 * peak["rps"], "busy_ms": 0.4 * clients * 1000 / peak["rps"]}


TRY_HOLD = """
create schema if not exists bench;
grant usage on schema bench to authenticated;
create or replace function bench.try_hold(p_reader uuid, p_service bigint, p_starts timestamptz) returns boolean
language plpgsql as $$
begin
  perform app.hold_slot(p_reader, p_service, p_starts, interval '10 minutes');
  return true;
exception when exclusion_violation then
  return false;
end $$;
grant execute on function bench.try_hold(uuid, bigint, timestamptz) to authenticated;
"""


def seed(owner: str, settings: Settings, cheap: Settings) -> dict[str, object]:
    """The bench's people: a client, 16 ordering clients, 8 public readers (4 online) and
    two readers open all week for the holds."""
    uid = create_user(owner, email="bench@example.com", password=PASSWORD, role="client", dob="1990-05-15",
                      country="LB", first_name="Bench", settings=settings)
    for i in range(16):
        create_user(owner, email=f"buyer-{i}@example.com", password=PASSWORD, role="client",
                          dob="1990-05-15", country="LB", settings=cheap)
    readers = [create_user(owner, email=f"reader-{i}@example.com", password=PASSWORD, role="reader",
                           settings=cheap) for i in range(10)]
    with psycopg.connect(owner) as conn:
        conn.execute("update rate_limits set limit_count = 1000000")  # the limiter runs; nobody is refused
        conn.execute("update services set price_minor = 0 where code = 'tarot'")  # free orders: no wallet
        conn.execute("delete from service_prices where service_id = (select id from services where code = 'tarot')")
        for i, rid in enumerate(readers):
            conn.execute("insert into reader_services (reader_id, service_id) select %s, id from services "
                         "where code in ('tarot', 'coffee')", (rid,))
            conn.execute("insert into reader_profiles (reader_id, display_name, bio_en, specialties, languages) "
                         "values (%s, %s, 'Cards and cups since 2009.', '{love,career}', '{en,ar}')",
                         (rid, f"Reader {i}"))
            conn.execute("insert into reader_status (reader_id, available) values (%s, %s)", (rid, i % 2 == 0))
        for rid in readers[8:]:
            conn.execute("insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
                         "select %s, d, '00:00', '24:00', 'UTC' from generate_series(1, 7) d", (rid,))
        conn.execute(TRY_HOLD)
    return {"uid": uid, "readers": readers[:8], "hold_readers": readers[8:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10, help="per path (at most 15 is plenty)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: run `make bench` (it installs Debian's wrk)")
    s, c = args.seconds, args.clients
    r: dict[str, dict[str, float]] = {}
    with migrated_cluster("samia-bench-") as (owner, base):
        env = {"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "prod", "LOG_LEVEL": "INFO",
               "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
               "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "PHONE_PROVIDER": "twilio", "SAMIA_DATA_DIR": str(base)}
        os.environ.update(env)
        settings = Settings()  # type: ignore[call-arg]
        cheap = settings.model_copy(update={"argon2_time_cost": 1, "argon2_memory_kib": 1024})
        people = seed(owner, settings, cheap)
        publish_today(owner, settings, base)
        uid, readers, hold_readers = people["uid"], people["readers"], people["hold_readers"]
        assert isinstance(uid, str)
        assert isinstance(readers, list)
        assert isinstance(hold_readers, list)
        app_dsn = db.as_user(owner, "authenticator")
        scripts = sql_scripts(uid, readers[0])
        scripts["horoscopes"] = horoscopes_sql(beirut_day().isoformat())
        week = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
        patch = json.dumps({"first_name": "Bench"})
        with ExitStack() as servers:
            on = {"workers": args.workers, "server": args.server}
            url = servers.enter_context(serve(env, **on))
            # the guards switched off, for on ÷ off ratios (bench/variants.py); idle until used
            nolimit = servers.enter_context(serve(env, factory="variants:no_rate_limit", **on))
            quiet = servers.enter_context(serve(env, factory="variants:quiet", **on))
            token = login(url, "bench@example.com", PASSWORD)
            buyers = [login(url, f"buyer-{i}@example.com", PASSWORD) for i in range(16)]
            wrk(f"{url}/me", token=token, seconds=2, clients=c)  # warm-up: pools, prepared statements
            for name, path in (("services", "/services"), ("readers", "/readers"),
                               ("reader", f"/readers/{readers[0]}"), ("home", "/"),
                               ("horoscopes", "/horoscopes/today?sign=Leo")):
                r[f"api_{name}"] = wrk(url + path, seconds=s, clients=c)
                r[f"pg_{name}"] = pgbench(app_dsn, scripts[name], s, c)
            r["api_me"] = wrk(f"{url}/me", token=token, seconds=s, clients=c)
            r["pg_me"] = pgbench(app_dsn, scripts["me"], s, c)
            r["pg_me_bypass"] = pgbench(app_dsn, scripts["me_bypass"], s, c)
            r["api_patch"] = wrk(f"{url}/me", "PATCH", token, patch, seconds=s, clients=c)
            r["pg_patch"] = pgbench(app_dsn, scripts["patch"], s, c)
            r["pg_patch_bypass"] = pgbench(app_dsn, scripts["patch_bypass"], s, c)
            # each guard on and off in alternating thirds: the machine's load drifts within a run.
            # The reads first: a read measured right after a burst of writes pays for their
            # checkpoint and autovacuum work.
            r.update(alternate(s, {
                "api_me_on": lambda t: wrk(f"{url}/me", token=token, seconds=t, clients=c),
                "api_me_quiet": lambda t: wrk(f"{quiet}/me", token=token, seconds=t, clients=c)}))
            keyed, plain = orders_lua(buyers, True), orders_lua(buyers, False)
            r.update(alternate(s, {
                "api_orders_keyed": lambda t: wrk(f"{url}/orders", seconds=t, clients=c, extra=keyed),
                "api_orders": lambda t: wrk(f"{url}/orders", seconds=t, clients=c, extra=plain),
                "api_orders_nolimit": lambda t: wrk(f"{nolimit}/orders", seconds=t, clients=c, extra=plain)}))
            # latency under load: ~70 % of the maximum just measured
            r["lat_me"] = wrk(f"{url}/me", token=token, seconds=s, clients=c, **at70(r["api_me"], c))
            r["lat_patch"] = wrk(f"{url}/me", "PATCH", token, patch, seconds=s, clients=c,
                                 **at70(r["api_patch"], c))
            # holds last: their thousands of inserts wake autovacuum, which would skew the others
            r["api_hold"] = wrk(f"{url}/bookings/hold", "POST", token, seconds=s, clients=c,
                                extra=hold_lua(hold_readers[0], week))
            r["pg_hold"] = pgbench(app_dsn, hold_script(uid, hold_readers[1], week), s, c)
            with psycopg.connect(owner) as conn:  # the paced run needs free slots again
                conn.execute("update reader_capacity set status = 'expired' where reader_id = %s",
                             (hold_readers[0],))
            r["lat_hold"] = wrk(f"{url}/bookings/hold", "POST", token, seconds=s, clients=c,
                                extra=hold_lua(hold_readers[0], week) + "\n", **at70(r["api_hold"], c))
        with psycopg.connect(owner) as conn:
            audited = conn.execute("select count(*) from audit_log where event = 'profile.update'").fetchone()[0]
            broken = conn.execute("select id from app.audit_verify()").fetchone()
            won = dict(conn.execute("select reader_id::text, count(*) from bookings group by 1").fetchall())
            overlaps = conn.execute("""select count(*) from reader_capacity a join reader_capacity b
                                        on a.reader_id = b.reader_id and a.id < b.id and a.during && b.during
                                       where a.status in ('held', 'confirmed', 'live')
                                         and b.status in ('held', 'confirmed', 'live')""").fetchone()[0]
            orders = conn.execute("select count(*) from orders").fetchone()[0]
    report(r, args, audited=audited, broken=broken, won=won, hold_readers=hold_readers, overlaps=overlaps,
           orders=orders)


def report(r: dict[str, dict[str, float]], args: argparse.Namespace, **facts: object) -> None:
    s, c = args.seconds, args.clients
    print(f"\nSamia bench — {c} concurrent clients, {s} s per path, {load_note()},\n"
          f"{args.server} {args.workers} workers (access log + metrics on), pgbench -M prepared, fsync on\n")
    labels = [("GET /me", "me"), ("PATCH /me + audit", "patch"), ("GET /services", "services"),
              ("GET /readers", "readers"), ("GET /readers/{id}", "reader"), ("GET / (storefront home)", "home"),
              ("GET /horoscopes/today?sign=Leo", "horoscopes"),
              ("POST /bookings/hold (contended)", "hold")]
    for label, key in labels:
        print(label)
        print(row(f"API  (wrk → {args.server} → PostgreSQL)", r[f"api_{key}"]))
        print(row("SQL  (pgbench, identical statements)", r[f"pg_{key}"]))
        if f"pg_{key}_bypass" in r:
            print(row("SQL  as BYPASSRLS role", r[f"pg_{key}_bypass"]))
    print("guards (medians of 3 alternating runs of a third of the time each)")
    for name in ("orders_keyed", "orders", "orders_nolimit", "me_on", "me_quiet"):
        print(row({"orders_keyed": "POST /orders, Idempotency-Key", "orders": "POST /orders, no key",
                   "orders_nolimit": "POST /orders, rate limiter off", "me_on": "GET /me, access log + metrics on",
                   "me_quiet": "GET /me, access log + metrics off"}[name], r[f"api_{name}"]))
    print("latency at ~70 % of the maximum")
    for name, key in (("GET /me", "me"), ("PATCH /me", "patch"), ("POST /bookings/hold", "hold")):
        print(row(f"{name} at {r['lat_' + key]['rps'] / r['api_' + key]['rps']:.0%} of max", r[f"lat_{key}"]))

    def ratio(a: str, b: str) -> float:
        return r[a]["rps"] / r[b]["rps"]

    won = facts["won"]
    hold_readers = facts["hold_readers"]
    assert isinstance(won, dict)
    assert isinstance(hold_readers, list)
    print("\n| measure | ratio | goal | met |\n|---|---|---|---|")
    table = [(f"{label} API / pgbench", ratio(f"api_{key}", f"pg_{key}"), GOALS.get(label.split(" +")[0]
             .split(" (")[0])) for label, key in labels]
    table += [("GET /me RLS / BYPASSRLS (SQL)", ratio("pg_me", "pg_me_bypass"), 0.9),
              ("PATCH /me RLS / BYPASSRLS (SQL)", ratio("pg_patch", "pg_patch_bypass"), 0.9),
              ("Idempotency-Key on ÷ off (POST /orders)", ratio("api_orders_keyed", "api_orders"), 0.9),
              ("rate limiter on ÷ off (POST /orders)", ratio("api_orders", "api_orders_nolimit"), 0.95),
              ("access log + metrics on ÷ off (GET /me)", ratio("api_me_on", "api_me_quiet"), 0.9)]
    for name, value, goal in table:
        print(f"| {name} | {value:.2f} | {'≥ ' + format(goal, '.2f') if goal else '—'} | "
              f"{'—' if not goal else 'yes' if value >= goal else 'no'} |")
    for name, key in (("GET /me", "me"), ("PATCH /me", "patch"), ("POST /bookings/hold", "hold")):
        lat = r[f"lat_{key}"]
        p95, p99 = lat["p95"] / lat["p50"], lat["p99"] / lat["p50"]
        print(f"| {name} at ~70 %: p95 / p50, p99 / p50 | {p95:.1f}, {p99:.1f} | ≤ 2.5, ≤ 4 | "
              f"{'yes' if p95 <= 2.5 and p99 <= 4 else 'no'} |")
    print(f"\nholds won: API {won.get(hold_readers[0], 0)}, pgbench {won.get(hold_readers[1], 0)}; "
          f"refused as slot_taken by the API: {int(r['api_hold']['non2xx'])}; "
          f"overlapping active holds (a slot won twice): {facts['overlaps']}")
    broken = facts["broken"]
    print(f"orders placed: {facts['orders']}; audit rows of PATCH /me: {facts['audited']}, "
          f"chain {'BROKEN at ' + str(broken[0]) if isinstance(broken, tuple) else 'intact'}")
    bad = {k: v["errors"] for k, v in r.items() if v["errors"]}
    non2xx = {k: v["non2xx"] for k, v in r.items() if v["non2xx"] and "hold" not in k}
    if bad or non2xx:
        print(f"socket errors: {bad}; non-2xx answers: {non2xx}")


if __name__ == "__main__":
    main()

"""Foundation benchmark: the API against pgbench running the identical SQL.

In one run, on a private durable cluster, with the same number of concurrent clients:
  (a) GET /me        — an authenticated RLS-scoped read of the caller's own profile;
  (b) PATCH /me      — an authenticated write that changes the row and appends its audit entry.
Each is measured through the real service (uvicorn, 2 workers, no reload, no access log)
with wrk on loopback, and as pgbench running the same statements the service sends
(BEGIN, one set_config round trip, the query, COMMIT). Also printed: the RLS cost, i.e.
the same pgbench SQL as a BYPASSRLS role. Prints requests/s, ratios and p50/p95/p99.

Usage: make bench   (or .venv/bin/python bench/run.py [--seconds 15] [--clients 8])
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from samia import db  # noqa: E402
from samia.cli import create_user  # noqa: E402
from samia.config import Settings  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster, pg_bin  # noqa: E402
from samia.profiles.service import COLUMNS  # noqa: E402

WRK_LUA = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
{body}
{extra}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, method: str, token: str, body: str | None, seconds: int, clients: int,
        extra: str = "") -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA.format(method=method, token=token, extra=extra,
                               body=f"wrk.body = {json.dumps(body)}" if body else ""))
    out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "-s", f.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    n, dur_us, p50, p95, p99, bad_status, sock_err = line.split()[1:]
    return {"rps": int(n) / (int(dur_us) / 1e6), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "errors": int(sock_err), "non2xx": int(bad_status)}


def pgbench(dsn: str, script: str, seconds: int, clients: int) -> dict[str, float]:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    work = Path(tempfile.mkdtemp(prefix="samia-pgbench-"))
    (work / "script.sql").write_text(script)
    env = {**os.environ, "PGHOST": params["host"], "PGUSER": params["user"], "PGDATABASE": params["dbname"]}
    res = subprocess.run([pg_bin("pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds),
                    "-f", str(work / "script.sql"), "--log", "--log-prefix", str(work / "tx")],
                   env=env, capture_output=True, text=True, check=False, cwd=work)
    if res.returncode != 0:
        sys.exit(f"pgbench failed:\n{res.stderr[-2000:]}")
    lat_ms, first, last = [], None, None
    for path in glob.glob(str(work / "tx*")):
        for row in open(path):
            parts = row.split()
            lat_ms.append(int(parts[2]) / 1000)
            t = int(parts[4]) + int(parts[5]) / 1e6
            first, last = min(first or t, t), max(last or t, t)
    shutil.rmtree(work)
    q = statistics.quantiles(lat_ms, n=100)
    return {"rps": len(lat_ms) / max(seconds, (last or 0) - (first or 0)), "p50": q[49], "p95": q[94], "p99": q[98],
            "errors": 0}


def sql_scripts(user_id: str, role: str) -> dict[str, str]:
    """The statements the service sends for each request, literally."""
    claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
    # script text for pgbench (a file, not a driver call): values quoted as SQL literals
    prelude = sql.SQL("select set_config('role', {}, true), set_config('request.jwt.claims', {}, true), "
                      "set_config('request.id', 'bench', true), app.request_identity();").format(
        sql.Literal(role), sql.Literal(claims)).as_string(None)
    read = sql.SQL("select {} from profiles p join roles r on r.id = p.role_id "
                   "where p.id = {} and p.deleted_at is null;").format(
        COLUMNS, sql.Literal(user_id)).as_string(None).replace("\n", " ")
    update = sql.SQL("update profiles set first_name = 'Bench' || :n where id = {} and deleted_at is null "
                     "returning id;").format(sql.Literal(user_id)).as_string(None)
    write = f"\\set n random(1, 1000000)\nBEGIN;\n{prelude}\n{update}\n{read}\nCOMMIT;\n"
    return {"read": f"BEGIN READ ONLY;\n{prelude}\n{read}\nCOMMIT;\n", "write": write}


SLOTS = 48 * 7  # half-hour slots over a week, 00:00-24:00 UTC


def hold_lua(reader: str, base: dt.datetime) -> str:
    """Each request claims a random half-hour slot of the week: contention on every slot."""
    epoch = int(base.timestamp())
    return f"""
request = function()
  local t = {epoch} + math.random(0, {SLOTS - 1}) * 1800
  local body = string.format('{{"reader_id": "{reader}", "service": "tarot", "starts_at": "%s"}}',
                             os.date("!%Y-%m-%dT%H:%M:%SZ", t))
  return wrk.format(nil, nil, nil, body)
end"""


def hold_script(client_id: str, reader: str, base: dt.datetime) -> str:
    """The same claim in pgbench, through the same function; a lost race is caught so that
    pgbench keeps going (the API answers it 409): the savepoint costs pgbench, not us."""
    claims = json.dumps({"sub": client_id, "role": "authenticated", "aud": "authenticated"})
    statements = sql.SQL(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', {}, true), "
        "set_config('request.id', 'bench', true), app.request_identity();\n"
        "select bench.try_hold({}, (select id from services where code = 'tarot'), "
        "{}::timestamptz + :n * interval '30 minutes');").format(
        sql.Literal(claims), sql.Literal(reader), sql.Literal(base.isoformat())).as_string(None)
    return f"\\set n random(0, {SLOTS - 1})\nBEGIN;\n{statements}\nCOMMIT;\n"


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


def row(name: str, r: dict[str, float]) -> str:
    return (f"  {name:34} {r['rps']:8.0f} req/s   p50 {r['p50']:6.2f} ms   p95 {r['p95']:6.2f} ms"
            f"   p99 {r['p99']:6.2f} ms" + (f"   errors {int(r['errors'])}" if r["errors"] else ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: run `make bench` (it installs Debian's wrk)")

    base = Path(tempfile.mkdtemp(prefix="samia-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)  # production-like: fsync on
    superuser = cluster.start()
    server = None
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        with psycopg.connect(owner) as conn:  # the bench is not about the limiter
            conn.execute("update rate_limits set limit_count = 1000000")
        secret = "bench-secret-" + "x" * 40
        os.environ.update({"SECRET_KEY": secret, "SAMIA_ENV": "prod", "LOG_LEVEL": "WARNING",
                           "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
                           "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "PHONE_PROVIDER": "twilio",
                           "SAMIA_DATA_DIR": str(base)})
        settings = Settings()  # type: ignore[call-arg]
        uid = create_user(owner, email="bench@example.com", password="bench-password-123", role="client",
                          dob="1990-05-15", country="LB", first_name="Bench", settings=settings)
        port = free_port()
        server = subprocess.Popen([str(ROOT / ".venv/bin/uvicorn"), "samia.app:from_env", "--factory",
                                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                                   "--no-access-log", "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/api/ops/live", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        req = urllib.request.Request(f"{url}/auth/login", method="POST",
                                     data=json.dumps({"email": "bench@example.com",
                                                      "password": "bench-password-123"}).encode(),
                                     headers={"Content-Type": "application/json"})
        token = json.load(urllib.request.urlopen(req))["access_token"]
        app_dsn = db.as_user(owner, "authenticator")
        rls, bypass = sql_scripts(uid, "authenticated"), sql_scripts(uid, "service_role")
        s, c = args.seconds, args.clients
        wrk(f"{url}/me", "GET", token, None, 3, c)  # warm-up: pools, prepared statements
        # (c) holds under contention: two readers with the same week open, one per side
        base = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
        readers = []
        for i in range(2):
            rid = create_user(owner, email=f"bench-reader-{i}@example.com", password="bench-password-123",
                              role="reader", settings=settings)
            with psycopg.connect(owner) as conn:
                conn.execute("insert into reader_services (reader_id, service_id) "
                             "select %s, id from services where code = 'tarot'", (rid,))
                conn.execute("insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
                             "select %s, d, '00:00', '24:00', 'UTC' from generate_series(1, 7) d", (rid,))
            readers.append(rid)
        with psycopg.connect(owner) as conn:
            conn.execute(TRY_HOLD)
        # holds run last: their thousands of inserts wake autovacuum, which would skew the others
        results = {
            "api_read": wrk(f"{url}/me", "GET", token, None, s, c),
            "pg_read": pgbench(app_dsn, rls["read"], s, c),
            "pg_read_bypass": pgbench(app_dsn, bypass["read"], s, c),
            "api_write": wrk(f"{url}/me", "PATCH", token, json.dumps({"first_name": "Bench"}), s, c),
            "pg_write": pgbench(app_dsn, rls["write"], s, c),
            "pg_write_bypass": pgbench(app_dsn, bypass["write"], s, c),
            "api_hold": wrk(f"{url}/bookings/hold", "POST", token, None, s, c, extra=hold_lua(readers[0], base)),
            "pg_hold": pgbench(app_dsn, hold_script(uid, readers[1], base), s, c),
        }
        with psycopg.connect(owner) as conn:
            audited = conn.execute("select count(*) from audit_log where event = 'profile.update'").fetchone()[0]
            broken = conn.execute("select id from app.audit_verify()").fetchone()
            won = dict(conn.execute("select reader_id::text, count(*) from bookings group by 1").fetchall())
            overlaps = conn.execute("""select count(*) from reader_capacity a join reader_capacity b
                                        on a.reader_id = b.reader_id and a.id < b.id and a.during && b.during
                                       where a.status in ('held', 'confirmed', 'live')
                                         and b.status in ('held', 'confirmed', 'live')""").fetchone()[0]
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)

    r = results
    print(f"\nSamia foundation bench — {c} concurrent clients, {s} s each, {os.cpu_count()} cores, "
          f"uvicorn {args.workers} workers, pgbench -M prepared, fsync on\n")
    print("(a) authenticated RLS-scoped read of the caller's profile (GET /me)")
    print(row("API  (wrk → uvicorn → PostgreSQL)", r["api_read"]))
    print(row("SQL  (pgbench, identical statements)", r["pg_read"]))
    print(row("SQL  as BYPASSRLS role", r["pg_read_bypass"]))
    print("(b) authenticated profile update + its audit entry (PATCH /me)")
    print(row("API  (wrk → uvicorn → PostgreSQL)", r["api_write"]))
    print(row("SQL  (pgbench, identical statements)", r["pg_write"]))
    print(row("SQL  as BYPASSRLS role", r["pg_write_bypass"]))
    print("\nratios")
    print(f"  read : API / pgbench = {r['api_read']['rps'] / r['pg_read']['rps']:.2f}   "
          f"RLS cost (RLS / BYPASSRLS) = {r['pg_read']['rps'] / r['pg_read_bypass']['rps']:.2f}")
    print(f"  write: API / pgbench = {r['api_write']['rps'] / r['pg_write']['rps']:.2f}   "
          f"RLS cost (RLS / BYPASSRLS) = {r['pg_write']['rps'] / r['pg_write_bypass']['rps']:.2f}")
    print("(c) POST /bookings/hold under contention (random half-hour slot of one week, 336 slots)")
    print(row("API  (wrk → uvicorn → PostgreSQL)", r["api_hold"]))
    print(row("SQL  (pgbench, same app.hold_slot)", r["pg_hold"]))
    print(f"  holds won: API {won.get(readers[0], 0)}, pgbench {won.get(readers[1], 0)};"
          f" refused as slot_taken by the API: {int(r['api_hold']['non2xx'])}; overlapping active rows: {overlaps}")
    print(f"  hold : API / pgbench = {r['api_hold']['rps'] / r['pg_hold']['rps']:.2f}")
    print(f"\naudit rows written: {audited}, chain {'BROKEN at ' + str(broken[0]) if broken else 'intact'}")


if __name__ == "__main__":
    main()

"""Analytics benchmark (issue 17): the nightly roll-up of 1,000,000 events and GET /metrics/overview.

On a private durable cluster (as bench/run.py):
  (a) 1,000,000 events over 30 Beirut days are written straight into events_raw (a spread of types,
      readers, services, countries, providers, codes and durations like the platform's);
  (b) the roll-up, day by day (app.analytics_rollup_day: aggregate, compare, write the difference),
      timed per day, then again (nothing to write); against pgbench running one plain GROUP BY of
      a day's rows on the same keys (count only, no durations kept, nothing written);
  (c) GET /metrics/overview?date=… through the real service (uvicorn, 2 workers) with wrk, as an
      admin (every section), and as a reader (their own rows).

Usage: .venv/bin/python bench/analytics.py [--events 1000000] [--seconds 15] [--clients 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from lib import free_port, pgbench, row, wrk  # noqa: E402

from samia import db  # noqa: E402
from samia.cli import create_user  # noqa: E402
from samia.config import Settings  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster  # noqa: E402

DAYS = 30
FIRST = dt.date(2026, 10, 1)

# Events shaped like the platform's: each type with the columns its schema carries.
GENERATE = """
    insert into events_raw (type, version, occurred_at, user_id, reader_id, subject_id, service_id, country, provider,
                            kind, code, reason, is_gold, attempt, seconds, amount_minor, currency)
    select t.type, 1, %(first)s::timestamptz + (g %% %(days)s) * interval '1 day' + random() * interval '1 day',
           (%(users)s::uuid[])[1 + (g * 7) %% cardinality(%(users)s::uuid[])],
           case when t.has_reader then (%(readers)s::uuid[])[1 + (g * 3) %% cardinality(%(readers)s::uuid[])] end,
           g, case when t.has_service then 1 + g %% 5 end,
           case when t.has_country then (array['LB', 'AE', 'SA', 'US', 'GB', 'FR', 'EG', 'JO'])[1 + g %% 8] end,
           case when t.type like 'payment.%%'
                then (array['testcard', 'stripe', 'square', 'usdt', 'bank_transfer', 'wallet'])[1 + (g / 3) %% 6] end,
           t.kind, t.code, t.reason, case when t.type like 'order.%%' then g %% 5 = 0 end,
           case when t.type like 'payment.%%' then 1 + (g %% 9 = 0)::int end,
           case when t.has_seconds then (random() * 86400)::int end,
           case when t.type in ('order.created', 'payment.attempted', 'payment.succeeded') then 1500 end,
           case when t.type in ('order.created', 'payment.attempted', 'payment.succeeded') then 'USD' end
      from generate_series(1, %(n)s) g
      join (values (0, 'order.created', false, true, true, false, null, null, null),
                   (1, 'order.first_response', true, true, false, true, null, null, null),
                   (2, 'order.delivered', true, true, false, true, null, null, null),
                   (3, 'order.approved', true, true, false, true, null, null, null),
                   (4, 'payment.attempted', false, false, true, false, 'charge', null, null),
                   (5, 'payment.succeeded', false, false, true, true, 'charge', null, null),
                   (6, 'payment.failed', false, false, true, true, 'charge', null, null),
                   (7, 'booking.held', true, true, true, false, null, null, null),
                   (8, 'call.created', true, false, true, false, 'instant', null, null),
                   (9, 'call.answered', true, false, false, true, 'instant', null, null),
                   (10, 'call.ended', true, false, false, true, 'instant', null, 'completed'),
                   (11, 'moderation.decision', true, false, false, false, 'order', 'approve', 'unspecified'),
                   (12, 'user.logged_in', false, false, true, false, null, null, null),
                   (13, 'case.opened', false, false, false, false, 'profile', 'report', 'spam'))
        as t (k, type, has_reader, has_service, has_country, has_seconds, kind, code, reason)
        on t.k = g %% 14"""

PLAIN = """\\set d random(0, {last})
select day, type, reader_id, service_id, country, provider, kind, code, reason, is_gold, attempt = 1, count(*)
  from events_raw where day = date '{first}' + :d::integer
 group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
"""

PLAIN_ALL = """select day, type, reader_id, service_id, country, provider, kind, code, reason, is_gold, attempt = 1,
       count(*)
  from events_raw group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
"""


def stats(xs: list[float]) -> str:
    return (f"mean {statistics.mean(xs) * 1000:7.1f} ms   median {statistics.median(xs) * 1000:7.1f} ms   "
            f"max {max(xs) * 1000:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: run `scripts/setup.sh wrk` (it installs Debian's wrk)")

    base = Path(tempfile.mkdtemp(prefix="samia-bench-analytics-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)
    superuser = cluster.start()
    server = None
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        secret = "bench-secret-" + "x" * 40
        os.environ.update({"SECRET_KEY": secret, "SAMIA_ENV": "prod", "LOG_LEVEL": "WARNING",
                           "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
                           "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "PHONE_PROVIDER": "twilio",
                           "SAMIA_DATA_DIR": str(base)})
        settings = Settings()  # type: ignore[call-arg]
        with psycopg.connect(owner) as conn:
            conn.execute("update rate_limits set limit_count = 1000000")
        create_user(owner, email="bench-admin@example.com", password="bench-password-123", role="admin",
                    settings=settings)
        reader_ids = [create_user(owner, email=f"bench-reader-{i}@example.com", password="bench-password-123",
                                  role="reader", settings=settings) for i in range(50)]
        with psycopg.connect(owner) as conn:
            conn.execute("select set_config('request.jwt.claims', '{\"actor\": \"bench\"}', true)")
            users = [r[0] for r in conn.execute(
                "insert into profiles (email, role_id) select format('bench-client-%s@example.com', g), 5 "
                "from generate_series(1, 5000) g returning id::text").fetchall()]
        started = time.perf_counter()
        with psycopg.connect(owner) as conn:
            conn.execute(GENERATE, {"n": args.events, "first": FIRST, "days": DAYS, "users": users,
                                    "readers": reader_ids})
        generated = time.perf_counter() - started
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute("vacuum analyze events_raw")
            total = conn.execute("select count(*) from events_raw where day between %s and %s",
                                 (FIRST, FIRST + dt.timedelta(days=DAYS - 1))).fetchone()[0]  # type: ignore[index]
            days = [FIRST + dt.timedelta(days=i) for i in range(DAYS)]
            first_pass, again = [], []
            for d in days:
                t0 = time.perf_counter()
                conn.execute("select app.analytics_rollup_day(%s)", (d,))
                first_pass.append(time.perf_counter() - t0)
            written = conn.execute("select count(*) from metrics_daily_events").fetchone()[0]  # type: ignore[index]
            for d in days:
                t0 = time.perf_counter()
                changed = conn.execute("select app.analytics_rollup_day(%s)", (d,)).fetchone()[0]  # type: ignore
                again.append(time.perf_counter() - t0)
                assert changed == 0, f"re-rolling {d} changed {changed} rows"
            conn.execute("update app_private.analytics_rollup_state set rolled_through = %s", (days[-1],))
            t0 = time.perf_counter()
            conn.execute(PLAIN_ALL)
            plain_all = time.perf_counter() - t0
        plain = pgbench(owner, PLAIN.format(last=DAYS - 1, first=FIRST), args.seconds, 1)
        day_to_show = FIRST + dt.timedelta(days=DAYS // 2)

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
        tokens = {}
        for who, email in (("admin", "bench-admin@example.com"), ("reader", "bench-reader-0@example.com")):
            req = urllib.request.Request(f"{url}/auth/login", method="POST",
                                         data=f'{{"email": "{email}", "password": "bench-password-123"}}'.encode(),
                                         headers={"Content-Type": "application/json"})
            tokens[who] = json.load(urllib.request.urlopen(req))["access_token"]
        overview = f"{url}/metrics/overview?date={day_to_show}"
        wrk(overview, "GET", tokens["admin"], None, 3, args.clients)  # warm-up
        api_admin = wrk(overview, "GET", tokens["admin"], None, args.seconds, args.clients)
        api_reader = wrk(overview, "GET", tokens["reader"], None, args.seconds, args.clients)
        month = f"{url}/metrics/fulfillment?from={FIRST}&to={days[-1]}"
        api_month = wrk(month, "GET", tokens["admin"], None, args.seconds, args.clients)
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)

    per_day = statistics.mean(first_pass)
    print(f"\nSamia analytics bench — {os.cpu_count()} cores, fsync on, {args.clients} HTTP clients, "
          f"uvicorn {args.workers} workers\n")
    print(f"(a) {total:,} events over {DAYS} Beirut days written in {generated:.1f} s "
          f"({total / generated:,.0f} events/s, straight into events_raw)")
    print(f"(b) roll-up, one day at a time (about {total // DAYS:,} events a day, {written:,} cells in all)")
    print(f"  first pass  {stats(first_pass)}   total {sum(first_pass):6.1f} s")
    print(f"  re-run      {stats(again)}   total {sum(again):6.1f} s   (0 rows written)")
    print(f"  plain GROUP BY of one day, same keys (pgbench, 1 client): mean {1000 / plain['rps']:.1f} ms"
          f"   p95 {plain['p95']:.1f} ms")
    print(f"  plain GROUP BY of all {total:,} rows at once: {plain_all:.2f} s")
    print(f"  ratio roll-up / plain GROUP BY per day = {per_day / (1 / plain['rps']):.2f}")
    print(f"(c) GET /metrics/overview?date={day_to_show} (headlines of every section the caller sees: one pass)")
    print(row("API as admin", api_admin))
    print(row("API as a reader (own rows)", api_reader))
    print(row("GET /metrics/fulfillment, 30 days", api_month))


if __name__ == "__main__":
    main()

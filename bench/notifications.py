"""Messaging benchmark (issue 12): a Web Push campaign to N synthetic opted-in users spread
over 20 time zones, through the real engine to a loopback push service.

On a private durable cluster (as bench/run.py):
  (a) N users (profiles, an email consent and a push consent, one Web Push subscription each,
      time zones round-robin over 20 zones) written straight into the tables;
  (b) cohort planning: app.schedule_campaign (audience, 20 cohorts, N sends), timed;
  (c) dispatch: the delivery engine (claim under skip locked, encrypt with aes128gcm + VAPID,
      POST to the push service, record) with one worker process, then two, each over the same
      sends again (states reset in between), messages/s;
  (d) pgbench inserting the same send rows (one row per transaction, 8 clients): the database's
      own rate for what the engine must at least write once per message.
The ratio dispatch / pgbench is the engine's database cost per message. The push service is a
minimal ASGI app on uvicorn (answers 201), sharing the machine's cores with everything else.

Usage: .venv/bin/python bench/notifications.py [--users 100000] [--sample 20000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from lib import pgbench  # noqa: E402

from samia import db  # noqa: E402
from samia.config import Settings  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster  # noqa: E402

ZONES = ["Asia/Beirut", "Europe/Paris", "America/New_York", "Asia/Dubai", "Asia/Riyadh", "Africa/Cairo",
         "Europe/London", "America/Los_Angeles", "Asia/Amman", "Europe/Berlin", "Asia/Kuwait", "Asia/Qatar",
         "Africa/Casablanca", "America/Chicago", "America/Toronto", "Australia/Sydney", "Asia/Tokyo",
         "Europe/Istanbul", "Asia/Baghdad", "UTC"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def push_service(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A push service that accepts everything: the cost measured is ours, not the fake's."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def serve_push() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(push_service, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


def seed(owner: str, users: int, origin: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    p256dh = b64(key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint))
    auth = b64(os.urandom(16))
    with psycopg.connect(owner) as conn:
        # in chunks of 5,000 with fresh statistics: one statement of 100,000 rows ran for over
        # 15 minutes (the per-row profile triggers slow down as the table grows within one
        # statement); chunked, 20,000 users take about 25 s
        for lo in range(1, users + 1, 5000):
            conn.execute("""
                insert into profiles (email, dob, role_id, country_code, locale, tz)
                select 'bench-' || g || '@example.com', date '1990-01-01', 5, 'LB',
                       case when g %% 3 = 0 then 'ar' else 'en' end, (%(zones)s::text[])[1 + g %% 20]
                  from generate_series(%(lo)s::int, %(hi)s::int) g""",
                         {"lo": lo, "hi": min(users, lo + 4999), "zones": ZONES})
            conn.commit()
            conn.execute("analyze profiles")
        conn.execute("insert into consents (user_id, channel, opted_in, lawful_basis, source) "
                     "select id, 'push', true, 'consent', 'signup' from profiles where email like 'bench-%%'")
        conn.execute("""
            insert into devices (user_id, kind, address)
            select id, 'webpush', json_build_object('endpoint', %(origin)s::text || '/push/' || id,
                                                    'keys', json_build_object('auth', %(auth)s::text,
                                                                              'p256dh', %(p)s::text))::text
              from profiles where email like 'bench-%%'""", {"origin": origin, "auth": auth, "p": p256dh})
        admin = conn.execute("insert into profiles (email, dob, role_id) values ('bench-admin@example.org', "
                             "'1980-01-01', 2) returning id::text").fetchone()
        conn.execute("analyze")
        assert admin is not None
        return str(admin[0])


def plan(owner: str, admin: str) -> tuple[int, float, int]:
    with psycopg.connect(owner) as conn:
        cid = conn.execute("""insert into campaigns (name, channel, title_en, body_en, title_ar, body_ar, send_on,
                                                    local_time)
                              values ('bench', 'push', 'A new moon', 'Your reading of the month is waiting.',
                                      'هلال جديد', 'قراءتك لهذا الشهر بانتظارك.', current_date - 2, '09:00')
                              returning id""").fetchone()[0]  # type: ignore[index]
        conn.commit()
        conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": admin, "role": "authenticated"}),))
        t0 = time.perf_counter()
        n = conn.execute("select app.schedule_campaign(%s)", (cid,)).fetchone()[0]  # type: ignore[index]
        conn.commit()
        return int(cid), time.perf_counter() - t0, int(n)


def worker(app_dsn: str, env: dict[str, str], limit: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ.update(env)
    from psycopg_pool import AsyncConnectionPool

    from samia.jobs.tasks import Resources
    from samia.notifications.outbox import dispatch_pending
    from samia.providers.email import MemoryMailer

    async def go() -> tuple[int, float]:
        pool = AsyncConnectionPool(app_dsn, min_size=1, max_size=2, kwargs={"autocommit": False}, open=False)
        await pool.open(wait=True)
        res = Resources(Settings(), pool, MemoryMailer())  # type: ignore[call-arg]
        t0 = time.perf_counter()
        n = await dispatch_pending(res, limit=limit, batch=200, concurrency=32)
        dt = time.perf_counter() - t0
        await pool.close()
        return n, dt

    out.put(asyncio.run(go()))


def dispatch(app_dsn: str, env: dict[str, str], workers: int, sample: int) -> tuple[int, float]:
    q: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    ps = [multiprocessing.Process(target=worker, args=(app_dsn, env, sample // workers, q)) for _ in range(workers)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    # each process's own dispatch time (imports and pool start excluded); they ran side by side
    return sum(n for n, _ in results), max(d for _, d in results)


def reset(owner: str, cid: int) -> None:
    with psycopg.connect(owner) as conn:
        conn.execute("update notification_sends set state = 'queued', attempts = 0, claimed_at = null, sent_at = null, "
                     "provider_ref = null where campaign_id = %s", (cid,))
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("vacuum analyze notification_sends")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=20_000, help="messages dispatched per measurement")
    ap.add_argument("--seconds", type=int, default=15)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="samia-bench-notifications-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)
    superuser = cluster.start()
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        vapid = b64(ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big"))
        env = {"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "test", "LOG_LEVEL": "WARNING",
               "SAMIA_DATA_DIR": str(base), "WEBPUSH_PROVIDER": "vapid", "VAPID_PRIVATE_KEY": vapid,
               "VAPID_SUBJECT": "mailto:ops@example.com", "WEBPUSH_ENDPOINT_HOST_PATTERN": r"^127\.0\.0\.1$"}
        origin = serve_push()
        t0 = time.perf_counter()
        admin = seed(owner, args.users, origin)
        print(f"seeded {args.users:,} users, consents and Web Push devices over {len(ZONES)} zones "
              f"in {time.perf_counter() - t0:.1f} s")
        cid, planning, sends = plan(owner, admin)
        print(f"cohort planning: {planning:.2f} s for {sends:,} sends in {len(ZONES)} cohorts "
              f"({sends / planning:,.0f} sends/s)")
        app_dsn = db.as_user(owner, "authenticator")
        rates = {}
        for w in (1, 2):
            n, secs = dispatch(app_dsn, env, w, args.sample)
            rates[w] = n / secs
            print(f"dispatch, {w} worker{'s' if w > 1 else ''}: {n:,} messages in {secs:.1f} s = {rates[w]:,.0f} msg/s")
            reset(owner, cid)
        with psycopg.connect(owner) as conn:
            uid = conn.execute("select id::text from profiles where email like 'bench-%' limit 1").fetchone()[0]  # type: ignore[index]
        script = ("\\set d random(1, 1000000000)\n"
                  f"insert into notification_sends (campaign_id, recipient_id, channel, device_id, template, params, "
                  f"marketing, not_before) values ({cid}, '{uid}', 'webpush', :d, 'campaign', "
                  f"'{{\"campaign\": {cid}}}', true, now()) on conflict do nothing;\n")
        pg = pgbench(owner, script, args.seconds, 8)
        print(f"pgbench inserting the same send rows (8 clients): {pg['rps']:,.0f} rows/s")
        for w, r in rates.items():
            print(f"ratio dispatch/pgbench, {w} worker{'s' if w > 1 else ''}: {r / pg['rps']:.2f}x (goal >= 0.5x)")
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

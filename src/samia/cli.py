"""`samia`: serve, migrate, users, audit, parity."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from samia import db
from samia.audit.verify import verify_audit
from samia.config import Settings, load_settings
from samia.db import migrate
from samia.db.cluster import Cluster

if TYPE_CHECKING:
    from samia.ops.backup import Backups

DEMO_ROLES = ("superadmin", "admin", "monitor", "reader", "client")
CLI_CLAIMS = json.dumps({"actor": "cli"})


def create_user(owner_dsn: str, *, email: str, password: str, role: str, dob: str | None = None,
                country: str | None = None, first_name: str = "", last_name: str = "",
                settings: Settings, accept_terms: bool = True) -> str:
    """Create an account directly as the database owner (bootstrap of the first superadmin).
    The operator accepts the current terms and privacy policy on the person's behalf unless
    `accept_terms` is false (then the person accepts them before ordering, booking or paying)."""
    from samia.core.tokens import Passwords

    pw_hash = asyncio.run(Passwords(settings).hash(password))
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)", (CLI_CLAIMS,))
        row = conn.execute(
            """insert into profiles (email, first_name, last_name, dob, country, role_id, email_verified)
               values (%s, %s, %s, %s, %s, (select id from roles where code = %s), true)
               on conflict (email) do update set role_id = excluded.role_id
               returning id::text""",
            (email, first_name or None, last_name or None, dob, country, role)).fetchone()
        assert row is not None
        conn.execute("select app_auth.set_password_hash(%s, %s)", (row[0], pw_hash))
        if accept_terms:
            conn.execute("select app.legal_accept_current(%s)", (row[0],))
    return str(row[0])


def seed_demo(settings: Settings, owner_dsn: str) -> list[tuple[str, str, str]]:
    """One user per role; passwords generated once per data dir and kept there (0600)."""
    path = settings.data_dir / "demo-credentials.json"
    creds: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    out = []
    for role in DEMO_ROLES:
        email = f"{role}@demo.samia-tarot.example.com"
        password = creds.setdefault(email, secrets.token_urlsafe(12))
        create_user(owner_dsn, email=email, password=password, role=role, dob="1990-05-15",
                    country="LB", first_name=role.capitalize(), last_name="Demo", settings=settings)
        out.append((role, email, password))
    path.write_text(json.dumps(creds, indent=1))
    path.chmod(0o600)
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)", (CLI_CLAIMS,))
        conn.execute(DEMO_MARKET)
    return out


# The demo marketplace: prices a client can pay (set once, while still the baseline's 0, so an
# admin's later change survives a restart), a lower price in Lebanon and Egypt, and a demo reader
# who offers everything, with a public profile and a week of availability in Beirut.
DEMO_MARKET = """
    update services s set price_minor = v.price, gold_surcharge_minor = v.gold, per_minute_minor = v.per_minute,
           duration_minutes = v.minutes
      from (values ('tarot', 2500, 1000, 0, 30), ('coffee', 2000, 1000, 0, 30), ('astro', 3500, 1500, 0, 30),
                   ('healing', 4500, 0, 0, 45), ('direct_call', 6000, 0, 250, 30))
           as v (code, price, gold, per_minute, minutes)
     where s.code = v.code and s.price_minor = 0;
    insert into service_prices (service_id, country_code, price_minor, per_minute_minor)
    select s.id, v.country, v.price, v.per_minute from services s
      join (values ('tarot', 'LB', 1500, null), ('coffee', 'LB', 1200, null), ('astro', 'LB', 2500, null),
                   ('tarot', 'EG', 900, null), ('direct_call', 'LB', 4000, 150))
           as v (code, country, price, per_minute) on v.code = s.code
    on conflict do nothing;
    insert into reader_services (reader_id, service_id)
    select p.id, s.id from profiles p, services s where p.email = 'reader@demo.samia-tarot.example.com'
    on conflict do nothing;
    insert into reader_profiles (reader_id, display_name, bio_en, bio_ar, specialties, languages)
    select p.id, 'Layla', 'Tarot and coffee-cup reader for fifteen years; calm, direct, kind.',
           'قارئة تاروت وفنجان منذ خمسة عشر عامًا؛ هادئة وصريحة ولطيفة.', '{love,career,family}', '{ar,en}'
      from profiles p where p.email = 'reader@demo.samia-tarot.example.com'
    on conflict do nothing;
    insert into availability_rules (reader_id, weekday, start_time, end_time, tz)
    select p.id, d, '10:00', '20:00', 'Asia/Beirut' from profiles p, generate_series(1, 7) d
     where p.email = 'reader@demo.samia-tarot.example.com'
       and not exists (select 1 from availability_rules r where r.reader_id = p.id);
"""


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from samia.jobs.worker import STOP_GRACE

    # links in emails point at this server unless PUBLIC_BASE_URL says otherwise
    if "PUBLIC_BASE_URL" not in os.environ:
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        os.environ["PUBLIC_BASE_URL"] = f"http://{host}:{args.port}"
    settings = load_settings()
    cluster = None if settings.database_url else Cluster(settings.data_dir)
    started_cluster = cluster is not None and not cluster.running()
    dsns = db.resolve(settings)
    migrate.up(dsns.owner)
    if args.demo:
        print("\nDemo accounts (one per role):")
        for role, email, password in seed_demo(settings, dsns.owner):
            print(f"  {role:10} {email:42} {password}")
    os.environ["DATABASE_URL"] = dsns.owner
    os.environ.setdefault("APP_DATABASE_URL", dsns.app)
    worker = None
    if not args.no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "samia.cli", "worker"], env=os.environ.copy())
        print(f"job worker running (pid {worker.pid})")
    print(f"\nAPI on http://{args.host}:{args.port}  (OpenAPI docs at /docs)\n", flush=True)
    try:
        uvicorn.run("samia.app:from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, access_log=False, log_config=None, proxy_headers=False)
    finally:  # Ctrl-C stops everything serve started, within seconds
        if worker:
            worker.terminate()
            try:
                worker.wait(STOP_GRACE + 1)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if started_cluster and cluster is not None:
            cluster.stop()


def cmd_worker(args: argparse.Namespace) -> None:
    from samia.core import logging as app_logging
    from samia.jobs import worker

    settings = load_settings()
    app_logging.configure(settings.log_level)
    asyncio.run(worker.run(settings, db.resolve(settings), concurrency=args.concurrency))


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = load_settings()
    owner = db.resolve(settings).owner
    try:
        if args.action == "up":
            migrate.up(owner)
        elif args.action == "down":
            migrate.down(owner)
        elif not migrate.audit(owner):
            sys.exit(1)
    except migrate.MigrationError as e:
        sys.exit(f"samia migrate: {e}")


def cmd_users(args: argparse.Namespace) -> None:
    settings = load_settings()
    owner = db.resolve(settings).owner
    uid = create_user(owner, email=args.email, password=args.password, role=args.role, dob=args.dob,
                      country=args.country, first_name=args.first_name, last_name=args.last_name,
                      settings=settings, accept_terms=not args.pending_terms)
    print(f"{args.role} {args.email} id={uid}")


def cmd_audit(args: argparse.Namespace) -> None:
    if args.export:
        from samia.audit.trail import verify_export

        if not (args.sig and args.pubkey):
            sys.exit("--export needs --sig and --pubkey")
        ok, message = verify_export(Path(args.export).read_bytes(), Path(args.sig).read_text(),
                                    Path(args.pubkey).read_text())
    else:
        settings = load_settings()
        ok, message = verify_audit(db.resolve(settings).owner, settings)
    print(message)
    if not ok:
        sys.exit(1)


def _embedded(settings: Settings) -> Backups:
    from samia.db.cluster import Cluster
    from samia.ops.backup import Backups

    if settings.database_url:
        sys.exit("backups here are for the embedded cluster; a managed database uses its provider's PITR "
                 "(RUNBOOKS/backup-restore.md)")
    return Backups(Cluster(settings.data_dir))


def cmd_backup(args: argparse.Namespace) -> None:
    settings = load_settings()
    if args.action == "drill":
        import tempfile

        from samia.ops.backup import drill

        work = Path(tempfile.mkdtemp(prefix="samia-drill-", dir="/var/tmp"))
        work.chmod(0o755)
        result = drill(work)
        print(result.report())
        sys.exit(0 if result.ok else 1)
    backups = _embedded(settings)
    if args.action == "setup":
        backups.setup()
        print(backups.info())
    elif args.action == "info":
        print(backups.info())
    else:
        print(backups.backup(args.action))


def cmd_restore(args: argparse.Namespace) -> None:
    import datetime as dt

    target = dt.datetime.fromisoformat(args.to)
    if target.tzinfo is None:
        sys.exit("--to needs a time zone, e.g. 2026-11-21T10:00:00+00:00")
    restored = _embedded(load_settings()).restore(target, Path(args.into))
    print(f"restored to {target.isoformat()} into {restored.pgdata}; running at {restored.dsn()}")


def cmd_smoke(args: argparse.Namespace) -> None:
    from samia.ops import smoke

    ok, text = smoke.report(smoke.run(args.base_url, os.environ.get("SMOKE_EMAIL"), os.environ.get("SMOKE_PASSWORD"),
                                      readonly=args.readonly))
    print(text)
    sys.exit(0 if ok else 1)


def cmd_slo(args: argparse.Namespace) -> None:
    from samia.ops import slo

    text = slo.render()
    if args.write:
        slo.RULES_FILE.write_text(text)
        print(f"wrote {slo.RULES_FILE}")
    else:
        print(text, end="")


def cmd_parity(args: argparse.Namespace) -> None:
    from samia.app import create_app
    from samia.core.parity import check

    settings = load_settings()
    dsns = db.resolve(settings)
    with psycopg.connect(dsns.owner) as conn:
        waiting = [m.name for m in migrate.pending(conn)]
    if waiting:
        sys.exit(f"samia parity: migrations not applied ({', '.join(waiting)}); run `samia migrate up` first")
    report = check(create_app(settings, dsns=dsns), dsns.owner)
    print("\n".join(report.lines()))
    if not report.ok:
        sys.exit(1)


def cmd_freeze(args: argparse.Namespace) -> None:
    from samia.privacy.freeze import freeze

    settings = load_settings()
    from samia.app import create_app

    dsns = db.resolve(settings)
    ok, lines = freeze(create_app(settings, dsns=dsns), dsns, args.by)
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


def cmd_data_qa(args: argparse.Namespace) -> None:
    from samia.privacy.freeze import data_qa

    ok, lines = data_qa(db.resolve(load_settings()).owner)
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


def cmd_purge_test_users(args: argparse.Namespace) -> None:
    from samia.privacy.freeze import purge_test_users

    settings = load_settings()
    users, objects = purge_test_users(settings, db.resolve(settings))
    print(f"purged {users} test users; {objects} stored objects removed")


def cmd_archive(args: argparse.Namespace) -> None:
    from samia.privacy.freeze import archive_now

    settings = load_settings()
    print(json.dumps(archive_now(settings, db.resolve(settings))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="samia", description="Samia Tarot back end")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the API (embedded PostgreSQL when DATABASE_URL is unset)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--demo", action="store_true", help="seed one demo user per role and print them")
    p.add_argument("--no-worker", action="store_true", help="do not start a job worker next to the API")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run the job engine (periodic tasks are queued while it runs)")
    p.add_argument("--concurrency", type=int, default=2)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="apply, revert or audit migrations")
    p.add_argument("action", choices=["up", "down", "audit"])
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("users", help="manage users")
    usub = p.add_subparsers(dest="users_command", required=True)
    c = usub.add_parser("create", help="create (or re-role) a user; bootstraps the superadmin")
    c.add_argument("--email", required=True)
    c.add_argument("--password", required=True)
    c.add_argument("--role", required=True, choices=DEMO_ROLES)
    c.add_argument("--dob")
    c.add_argument("--country")
    c.add_argument("--first-name", default="")
    c.add_argument("--last-name", default="")
    c.add_argument("--pending-terms", action="store_true",
                   help="do not accept the current terms for them: they accept before ordering, booking or paying")
    c.set_defaults(func=cmd_users)

    p = sub.add_parser("audit", help="audit trail tools")
    asub = p.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify", help="check the hash chain (or a signed export, offline); names the first bad row")
    v.add_argument("--export", help="an export file from POST /admin/audit/attest (checked offline)")
    v.add_argument("--sig", help="file with the export's base64 Ed25519 signature")
    v.add_argument("--pubkey", help="file with the public key (base64 raw or PEM)")
    v.set_defaults(func=cmd_audit)

    p = sub.add_parser("backup", help="pgBackRest for the embedded cluster: setup, full/diff/incr backups, "
                                      "info, and the restore drill")
    p.add_argument("action", choices=["setup", "full", "diff", "incr", "info", "drill"])
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore the embedded cluster to a point in time into a new directory")
    p.add_argument("--to", required=True, help="ISO time with zone, e.g. 2026-11-21T10:00:00+00:00")
    p.add_argument("--into", required=True, help="an empty directory for the restored cluster")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("smoke", help="synthetic checks against a running deployment (exit 0/1); "
                                     "a client account from SMOKE_EMAIL / SMOKE_PASSWORD")
    p.add_argument("base_url")
    p.add_argument("--readonly", action="store_true", help="do not place (and cancel) an order")
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser("slo", help="SLOs (ops/slo.yaml) → Prometheus recording rules and burn-rate alerts")
    p.add_argument("action", choices=["rules"])
    p.add_argument("--write", action="store_true", help="write ops/prometheus/slo_rules.yml")
    p.set_defaults(func=cmd_slo)

    p = sub.add_parser("parity", help="route guards vs database permissions report")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("freeze", help="record the schema-lock sign-off (migrations, parity, data QA) in the audit log")
    p.add_argument("--by", required=True, help="email of the admin signing off")
    p.set_defaults(func=cmd_freeze)

    p = sub.add_parser("data-qa", help="profiles without role, orders without service, orphan media (exit 1 if any)")
    p.set_defaults(func=cmd_data_qa)

    p = sub.add_parser("purge-test-users", help="erase every test user (is_test) and their stored files")
    p.set_defaults(func=cmd_purge_test_users)

    p = sub.add_parser("archive", help="move logs and audit exports past their retention to the storage archive")
    p.set_defaults(func=cmd_archive)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()

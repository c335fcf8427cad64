"""Audited writes per second with 8 concurrent writers (issue 6), against baselines run in
the same process tree on the same private durable cluster (fsync on), all with pgbench:

  plain      a profile update without an audit row (what the write costs by itself)
  audited    the same update + app.audit() in one transaction — the platform's path now
             (rows get a sequence id; the sealer links them into the chain afterwards)
  locked     the same, but holding the chain lock until commit, as every audited
             transaction did before migration 022 (one audited commit at a time)
  sealer     rows linked per second by app.audit_seal(), the single chain writer

Usage: .venv/bin/python bench/audit.py [--seconds 15] [--clients 8]   (make bench runs it)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from lib import pgbench  # noqa: E402

from samia import db  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster  # noqa: E402

# each client updates its own profile row (no row contention: the audit append is the variable)
PRELUDE = r"""\set u random(1, 64)
begin;
select set_config('request.jwt.claims', '{"actor": "bench"}', true);
update profiles set first_name = 'b' || :u where email = 'bench' || :u || '@example.com';
"""
AUDIT = "select app.audit('bench.write', 'profile', :u::text, '{\"field\": \"first_name\"}');\n"
LOCK = "select pg_advisory_xact_lock(7384023117);\n"
SCRIPTS = {
    "plain": PRELUDE + "commit;\n",
    "audited": PRELUDE + AUDIT + "commit;\n",
    "locked": PRELUDE + LOCK + AUDIT + "commit;\n",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="samia-bench-audit-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)
    superuser = cluster.start()
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        with psycopg.connect(owner) as conn:
            conn.execute("select set_config('request.jwt.claims', '{\"actor\": \"bench\"}', true)")
            conn.execute("insert into profiles (email, first_name) select 'bench' || i || '@example.com', 'b' "
                         "from generate_series(1, 64) i")
            conn.execute("select app.audit_seal()")
        results = {}
        for name in ("plain", "audited", "locked", "audited", "locked", "plain"):  # interleaved, best of two
            r = pgbench(owner, SCRIPTS[name], args.seconds, args.clients)
            if name not in results or r["rps"] > results[name]["rps"]:
                results[name] = r
        with psycopg.connect(owner) as conn:
            backlog = conn.execute("select count(*) from audit_log where row_hash is null").fetchone()[0]  # type: ignore[index]
            t0 = time.perf_counter()
            sealed = conn.execute("select app.audit_seal(10000000)").fetchone()[0]  # type: ignore[index]
            conn.commit()
            seal_s = time.perf_counter() - t0
            broken = conn.execute("select count(*) from app.audit_verify()").fetchone()[0]  # type: ignore[index]
    finally:
        cluster.destroy()
    print(f"Samia audit bench — {args.clients} concurrent writers, {args.seconds} s each, pgbench -M prepared, "
          "fsync on\n")
    print(f"{'':10} {'tx/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name in ("plain", "audited", "locked"):
        r = results[name]
        print(f"{name:10} {r['rps']:9.0f} {r['p50']:8.2f} {r['p95']:8.2f} {r['p99']:8.2f}")
    print(f"\naudited / plain  = {results['audited']['rps'] / results['plain']['rps']:.2f}   "
          "(the cost of the audit row in the write path)")
    print(f"audited / locked = {results['audited']['rps'] / results['locked']['rps']:.2f}   "
          "(sealing behind the writers vs. chaining under a lock held to commit)")
    print(f"sealer: {sealed} rows linked in {seal_s:.2f} s = {sealed / seal_s:.0f} rows/s "
          f"(backlog left by the runs: {backlog}); chain verified: {'intact' if broken == 0 else 'BROKEN'}")


if __name__ == "__main__":
    main()

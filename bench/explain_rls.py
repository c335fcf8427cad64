"""Where RLS costs on the bench's paths: EXPLAIN (ANALYZE, BUFFERS) of GET /me's select and
PATCH /me's update, as `authenticated` (RLS) and as `service_role` (BYPASSRLS), with the same
claims, after a warm-up; then each policy's helpers timed alone (10,000 calls).

Usage: .venv/bin/python bench/explain_rls.py
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
from lib import ROOT  # noqa: F401  (puts src on the path)

from samia import db
from samia.cli import create_user
from samia.config import Settings
from samia.db import migrate
from samia.db.cluster import Cluster

READ = ("select p.id, p.first_name, r.code from profiles p join roles r on r.id = p.role_id "
        "where p.id = %(uid)s and p.deleted_at is null")
WRITE = "update profiles set first_name = 'Bench' where id = %(uid)s and deleted_at is null returning id"
HELPERS = ["auth.uid()", "app.user_role()", "app.is_staff()", "app.is_admin()", "app.request_identity()"]


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="samia-explain-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)
    superuser = cluster.start()
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        os.environ.update({"SECRET_KEY": "x" * 40, "SAMIA_DATA_DIR": str(base)})
        uid = create_user(owner, email="bench@example.com", password="bench-password-123", role="client",
                          dob="1990-05-15", country="LB", settings=Settings())  # type: ignore[call-arg]
        claims = json.dumps({"sub": uid, "role": "authenticated"})
        with psycopg.connect(db.as_user(owner, "authenticator")) as conn:
            for label, query in (("GET /me select", READ), ("PATCH /me update", WRITE)):
                for role in ("authenticated", "service_role"):
                    for _ in range(20):  # warm: plans, caches
                        conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                                     (role, claims))
                        conn.execute(query, {"uid": uid})
                        conn.rollback()
                    conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                                 (role, claims))
                    plan = conn.execute("explain (analyze, buffers, costs off) " + query, {"uid": uid}).fetchall()
                    conn.rollback()
                    print(f"\n-- {label} as {role}")
                    print("\n".join(r[0] for r in plan))
            print("\n-- each helper alone, 10,000 calls in one statement (as authenticated)")
            conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                         (claims,))
            for helper in HELPERS:
                started = time.perf_counter()
                conn.execute(f"select count({helper}) from generate_series(1, 10000)")  # noqa: S608 (constants)
                print(f"  {helper:24} {(time.perf_counter() - started) * 100:.1f} µs per call")
            conn.rollback()
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

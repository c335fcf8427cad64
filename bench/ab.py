"""A/B: the working tree's code against a git revision's, on one cluster, in alternating short
runs (the machine's load drifts; alternation spreads it over both sides). Prints each run and
the ratio of the medians.

Usage: .venv/bin/python bench/ab.py --base HEAD [--path /me] [--method GET] [--rounds 3] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
from contextlib import ExitStack

import psycopg
from lib import ROOT, cpu_seconds, load_note, login, migrated_cluster, serve, wrk

from samia import db
from samia.cli import create_user
from samia.config import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="HEAD")
    ap.add_argument("--path", default="/me")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--body")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {"base": [], "work": []}
    cpu: dict[str, list[float]] = {"base": [], "work": []}
    with migrated_cluster("samia-ab-") as (owner, base):
        old_src = base / "old"
        old_src.mkdir()
        archive = subprocess.run(["git", "archive", args.base, "src"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive, check=True)
        with psycopg.connect(owner) as conn:
            conn.execute("update rate_limits set limit_count = 1000000")
        env = {"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "prod", "LOG_LEVEL": "INFO",
               "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
               "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "SAMIA_DATA_DIR": str(base)}
        os.environ.update(env)
        create_user(owner, email="bench@example.com", password="bench-password-123", role="client",
                    dob="1990-05-15", country="LB", settings=Settings())  # type: ignore[call-arg]
        pids: dict[str, list[int]] = {"base": [], "work": []}
        with ExitStack() as stack:
            urls = {"base": stack.enter_context(serve(env, workers=1, src=old_src / "src", pids=pids["base"])),
                    "work": stack.enter_context(serve(env, workers=1, pids=pids["work"]))}
            token = login(urls["work"], "bench@example.com", "bench-password-123")
            for url in urls.values():
                wrk(url + args.path, args.method, token, args.body, seconds=2, clients=8)
            for _ in range(args.rounds):
                for side, url in urls.items():
                    before = cpu_seconds(pids[side][0])
                    r = wrk(url + args.path, args.method, token, args.body, seconds=args.seconds, clients=8)
                    after, n = cpu_seconds(pids[side][0]), r["rps"] * args.seconds
                    user, system = ((after[i] - before[i]) / n * 1000 for i in (0, 1))
                    runs[side].append(r["rps"])
                    cpu[side].append(user + system)
                    print(f"  {side:4} {r['rps']:7.0f} req/s  p50 {r['p50']:6.2f} ms  CPU per request "
                          f"{user + system:.3f} ms (user {user:.3f}, system {system:.3f})", flush=True)
    ratio = statistics.median(runs["work"]) / statistics.median(runs["base"])
    print(f"{args.method} {args.path}: throughput working tree / {args.base} = {ratio:.2f}; API process CPU per "
          f"request {statistics.median(cpu['work']):.3f} vs {statistics.median(cpu['base']):.3f} ms "
          f"(medians of {args.rounds} alternating runs, one worker each; {load_note()})")


if __name__ == "__main__":
    main()

"""Where a request's Python time goes: py-spy samples one uvicorn worker while wrk drives a
route, then prints the hottest functions (self time) and the share of each library.

Usage: .venv/bin/python bench/profile.py [--path /me] [--method GET] [--seconds 10]
       [--factory samia.app:from_env]   (needs py-spy, a dev dependency, and ptrace rights)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys

import psycopg
from lib import ROOT, login, migrated_cluster, serve, wrk

from samia import db
from samia.cli import create_user
from samia.config import Settings

LIBS = ("fastapi", "starlette", "pydantic", "pydantic_core", "psycopg", "psycopg_pool", "structlog", "uvicorn",
        "asyncio", "anyio", "prometheus_client", "jwt", "jinja2", "json", "samia", "httptools", "uvloop")


def library(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"
    path = frame.rsplit("(", 1)[-1]
    for lib in LIBS:
        if f"/{lib}/" in path or path.startswith(f"{lib}/"):
            return lib
    return "other" if "site-packages" in path else "stdlib/other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default="/me")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--body")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--factory", default="samia.app:from_env")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
    with migrated_cluster("samia-profile-") as (owner, base):
        with psycopg.connect(owner) as conn:
            conn.execute("update rate_limits set limit_count = 1000000")
        env = {"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "prod", "LOG_LEVEL": "INFO",
               "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
               "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "SAMIA_DATA_DIR": str(base)}
        os.environ.update(env)
        settings = Settings()  # type: ignore[call-arg]
        create_user(owner, email="bench@example.com", password="bench-password-123", role="client",
                    dob="1990-05-15", country="LB", settings=settings)
        pids: list[int] = []
        with serve(env, workers=1, factory=args.factory, pids=pids) as url:
            token = login(url, "bench@example.com", "bench-password-123")
            wrk(url + args.path, args.method, token, args.body, seconds=2, clients=8)
            raw = base / "profile.txt"
            spy_proc = subprocess.Popen([spy, "record", "--pid", str(pids[0]), "--duration", str(args.seconds),
                                         "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            result = wrk(url + args.path, args.method, token, args.body, seconds=args.seconds, clients=8)
            spy_proc.wait(60)
        own: collections.Counter[str] = collections.Counter()
        libs: collections.Counter[str] = collections.Counter()
        libs_self: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            n = int(count)
            total += n
            own[frames[-1]] += n
            libs_self[library(frames[-1])] += n
            for lib in {library(f) for f in frames[1:]}:
                libs[lib] += n
    print(f"\n{args.method} {args.path}: {result['rps']:.0f} req/s with one worker under py-spy; {total} samples\n")
    print("self time (top functions):")
    for frame, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {frame[:140]}")
    print("\nself time by library (C calls such as libpq's socket I/O count for their Python caller):")
    for lib, n in libs_self.most_common():
        print(f"  {n / total:6.1%}  {lib}")
    print("\ninclusive share by library (a sample counts once per library on its stack):")
    for lib, n in libs.most_common():
        print(f"  {n / total:6.1%}  {lib}")
    print(json.dumps({"rps": result["rps"], "samples": total}))


if __name__ == "__main__":
    sys.exit(main())

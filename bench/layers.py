"""Where a GET /me's CPU goes, layer by layer, in one process (no HTTP server, no load
generator): each layer's CPU time per request (time.process_time over N requests, so the
figure holds whatever else the machine is doing), against a private cluster.

  floor     the whole ASGI stack on GET /api/ops/live: middleware, routing, a guard without
            a database, a JSON answer
  sql       psycopg alone: a pooled connection, the same four round trips GET /me makes
            (BEGIN, the set_config prelude, the profile query, COMMIT)
  me        GET /me through the app, access log and metrics on
  me quiet  the same with the access log line and request metrics off

Usage: .venv/bin/python bench/layers.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import uvloop
from lib import load_note, migrated_cluster

from samia import db
from samia.cli import create_user
from samia.config import Settings

PASSWORD = "bench-password-123"


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    """One request straight into the ASGI app; the response body."""
    out: list[bytes] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
               "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
               "headers": headers, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)},
              receive, send)
    return b"".join(out)


async def cpu_ms(run: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(200):  # warm: prepared statements, caches
        await run()
    start = time.process_time()
    for _ in range(n):
        await run()
    return (time.process_time() - start) / n * 1000


async def measure(n: int, rounds: int) -> dict[str, list[float]]:
    from samia.app import from_env
    from samia.core import access, metrics, middleware
    from samia.core import logging as app_logging
    from samia.core.tokens import decode_access
    from samia.profiles.service import get_profile

    app = from_env()
    app_logging.SINK.stream = _Silent()  # the lines are formatted and written, to nowhere
    platform = app.state.platform
    results: dict[str, list[float]] = {"floor": [], "sql": [], "me": [], "me quiet": []}
    async with app.router.lifespan_context(app):
        login = await call(app, "POST", "/auth/login", [(b"content-type", b"application/json")],
                           json.dumps({"email": "bench@example.com", "password": PASSWORD}).encode())
        token = json.loads(login)["access_token"]
        auth = [(b"authorization", f"Bearer {token}".encode())]
        claims = decode_access(platform.settings, token)

        async def sql_only() -> None:
            async with platform.pool.connection() as conn:
                await conn.set_read_only(True)
                await conn.execute(access.PRELUDE, ("authenticated", claims.json, "bench-layers"))
                await get_profile(conn, claims.sub)
                await conn.commit()

        async def me() -> None:
            await call(app, "GET", "/me", auth)

        async def floor() -> None:
            await call(app, "GET", "/api/ops/live", [])

        line, observe = middleware.access_line, metrics.Metrics.observe_request
        for _ in range(rounds):  # alternating, so that drift touches every layer alike
            results["floor"].append(await cpu_ms(floor, n))
            results["sql"].append(await cpu_ms(sql_only, n))
            results["me"].append(await cpu_ms(me, n))
            middleware.access_line = lambda *_: None  # type: ignore[assignment]
            metrics.Metrics.observe_request = lambda *_: None  # type: ignore[method-assign, assignment]
            results["me quiet"].append(await cpu_ms(me, n))
            middleware.access_line, metrics.Metrics.observe_request = line, observe  # type: ignore[method-assign]
    return results


class _Silent:
    """A stream that drops what is written."""

    def write(self, _: str) -> None:
        return None

    def flush(self) -> None:
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with migrated_cluster("samia-layers-") as (owner, base):
        with psycopg.connect(owner) as conn:
            conn.execute("update rate_limits set limit_count = 1000000")
        os.environ.update({"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "prod", "LOG_LEVEL": "INFO",
                           "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
                           "DB_POOL_MIN": "2", "DB_POOL_MAX": "4", "SAMIA_DATA_DIR": str(base)})
        create_user(owner, email="bench@example.com", password=PASSWORD, role="client", dob="1990-05-15",
                    country="LB", settings=Settings())  # type: ignore[call-arg]
        results = uvloop.run(measure(args.requests, args.rounds))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nGET /me, CPU per request in one process (uvloop; median of {args.rounds} alternating rounds of "
          f"{args.requests}); {load_note()}\n")
    print(f"  floor: ASGI stack on GET /api/ops/live, no database   {med['floor']:.3f} ms")
    print(f"  sql: psycopg alone, GET /me's four round trips          {med['sql']:.3f} ms")
    print(f"  GET /me through the app                                 {med['me']:.3f} ms")
    print(f"  GET /me, access log + metrics off                       {med['me quiet']:.3f} ms")
    rest = med["me"] - med["floor"] - med["sql"]
    print(f"  the rest (guard, handler, response model, log, metrics) {rest:.3f} ms")
    print(f"  access log + metrics: {med['me'] - med['me quiet']:.3f} ms "
          f"({(med['me'] - med['me quiet']) / med['me']:.0%} of the request)")


if __name__ == "__main__":
    main()

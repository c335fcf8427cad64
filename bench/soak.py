"""Soak: mixed traffic for N minutes against the production topology on this machine
(PgBouncer in transaction mode, two API processes, one job worker), loopback only. It first
measures the mix's maximum rate (closed loop, --probe seconds), then offers 70 % of it (or
--rate). Every interval prints the rate, the client-side p50/p95/p99 (wrk), answers by status
class, the database's connections and each process's memory, then each route's server-side
p50/p95/p99 (from the access log's duration_ms); at the end, 5xx and socket errors (must be
0), RSS growth (goal: under 10 %) and each route's percentiles over the whole run.

The mix per request: browse (/services, /readers, a reader, the home page) 50 %, GET /me 10 %,
GET /orders 10 %, a free tarot order 10 %, a hold of a priced call on a random slot 15 % (409
when taken), and 5 % paying a won hold by card (the test processor) as the client who holds it.

Usage: make soak   (or .venv/bin/python bench/soak.py [--minutes 10] [--rate 120] [--interval 60])
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
from lib import ROOT, load_note, login, migrated_cluster, serve
from run import PASSWORD, seed

from samia import db
from samia.config import Settings
from samia.db import pooler

MIX_LUA = """
local tokens = {%(tokens)s}
local owners = {%(owners)s}  -- user id -> that user's token: a hold is paid by whoever made it
local readers = {%(readers)s}
local held = {}  -- bookings this thread's holds won, waiting to be paid
local hold_reader, base, slots = "%(hold_reader)s", %(base)d, %(slots)d
counts = {}  -- global: done() reads each thread's with thread:get
local picks = {}
local function add(n, path) for _ = 1, n do picks[#picks + 1] = path end end
add(12, "GET /services") add(13, "GET /readers") add(13, "GET /reader") add(12, "GET /")
add(10, "GET /me") add(10, "GET /orders") add(10, "POST /orders") add(15, "POST /bookings/hold")
add(5, "POST /payments")

function setup(thread) table.insert(threads, thread) end
threads = {}
function init(args) counts = {} end
delay = function() return %(gap)d end

request = function()
  local pick = picks[math.random(#picks)]
  local h = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}
  if pick == "GET /services" then return wrk.format("GET", "/services", h)
  elseif pick == "GET /readers" then return wrk.format("GET", "/readers", h)
  elseif pick == "GET /reader" then return wrk.format("GET", "/readers/" .. readers[math.random(#readers)], h)
  elseif pick == "GET /" then return wrk.format("GET", "/", {})
  elseif pick == "GET /me" then return wrk.format("GET", "/me", h)
  elseif pick == "GET /orders" then return wrk.format("GET", "/orders?limit=20", h)
  elseif pick == "POST /payments" and #held > 0 then
    local b = table.remove(held, 1)
    h["Authorization"] = "Bearer " .. b.token
    return wrk.format("POST", "/payments", h, string.format(
      '{"booking_id": %%s, "method": "card", "card_token": "tok_visa"}', b.id))
  elseif pick == "POST /orders" then
    return wrk.format("POST", "/orders", h, '{"service": "tarot", "question": "soak", "spread": "single"}')
  else
    local t = base + math.random(0, slots - 1) * 1800
    local at = os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", t)
    return wrk.format("POST", "/bookings/hold", h, string.format(
      '{"reader_id": "%%s", "service": "direct_call", "starts_at": "%%s"}', hold_reader, at))
  end
end

response = function(status, headers, body)
  if status == 201 and body:find('"hold_expires_at"', 1, true) then  -- a hold won: pay it later
    local id, client = body:match('"id":(%%d+)'), body:match('"client_id":"([%%x%%-]+)"')
    if id and owners[client] and #held < 50 then held[#held + 1] = {id = id, token = owners[client]} end
  end
  local k = tostring(math.floor(status / 100)) .. "xx"
  if status == 409 then k = "409" end
  counts[k] = (counts[k] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%%s": %%d', k, v) end
  io.write(string.format('SOAK {"requests": %%d, "seconds": %%.3f, "p50": %%.3f, "p95": %%.3f, "p99": %%.3f, ' ..
    '"socket_errors": %%d, "status": {%%s}}\\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
"""


def route_latencies(logs: list[Path], offsets: dict[Path, int]) -> dict[str, list[tuple[float, int]]]:
    """(duration_ms, status) of each access-log line written since the last call, by method and route."""
    out: dict[str, list[tuple[float, int]]] = {}
    for path in logs:
        with path.open("rb") as f:
            f.seek(offsets.get(path, 0))
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next call
        offsets[path] = offsets.get(path, 0) + end
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "request" and "duration_ms" in entry:
                out.setdefault(f"{entry['method']} {entry['route']}", []).append(
                    (float(entry["duration_ms"]), int(entry["status_code"])))
    return out


def percentiles(answers: list[tuple[float, int]]) -> str:
    """p50 p95 p99 of the durations, then how many answers and their statuses."""
    if len(answers) < 2:
        return f"{'n/a':>29}"
    q = statistics.quantiles([ms for ms, _ in answers], n=100)
    statuses: dict[int, int] = {}
    for _, code in answers:
        statuses[code] = statuses.get(code, 0) + 1
    return (f"{q[49]:7.1f} {q[94]:7.1f} {q[98]:8.1f}  n={len(answers)} "
            + " ".join(f"{code}:{n}" for code, n in sorted(statuses.items())))


def wrk_mix(urls: list[str], script: Path, seconds: int, clients: int) -> list[dict[str, object]]:
    runs = [subprocess.Popen(["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds}s", "-s", str(script),
                              "--timeout", "10s", url], stdout=subprocess.PIPE, text=True) for url in urls]
    return [json.loads(next(x for x in r.communicate()[0].splitlines() if x.startswith("SOAK"))[5:]) for r in runs]


def subject(token: str) -> str:
    """The user id in an access token of ours (read, not verified: the service verifies)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, help="requests per second offered, both processes together "
                                               "(default: 70 %% of the maximum the probe measures)")
    ap.add_argument("--probe", type=int, default=20, help="seconds of closed-loop traffic to find the maximum")
    ap.add_argument("--interval", type=int, default=60, help="seconds per report")
    ap.add_argument("--clients", type=int, default=8, help="connections per API process")
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    with migrated_cluster("samia-soak-") as (owner, base):
        bouncer = pooler.Bouncer(owner, size=8).start()
        # dev: the card payments go to the built-in test processor (prod would need Stripe)
        env = {"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "dev", "LOG_LEVEL": "INFO",
               "DATABASE_URL": owner, "APP_DATABASE_URL": bouncer.dsn("samia"), "DB_TRANSACTION_POOLER": "true",
               "QUEUE_DATABASE_URL": db.as_user(owner, "authenticator"), "DB_POOL_MIN": "2", "DB_POOL_MAX": "8",
               "SAMIA_DATA_DIR": str(base)}
        os.environ.update(env)
        settings = Settings()  # type: ignore[call-arg]
        people = seed(owner, settings, settings.model_copy(update={"argon2_time_cost": 1, "argon2_memory_kib": 1024}))
        with psycopg.connect(owner) as conn:  # the held slots are a priced call, paid by card
            conn.execute("update services set price_minor = 4500 where code = 'direct_call'")
            conn.execute("insert into reader_services (reader_id, service_id) select r, s.id "
                         "from unnest(%s::uuid[]) r, services s where s.code = 'direct_call'",
                         (people["hold_readers"],))
        week = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
        pids: list[int] = []
        with ExitStack() as stack:
            stack.callback(bouncer.stop)
            logs = [base / f"api-{i + 1}.log" for i in range(2)]
            urls = [stack.enter_context(serve(env, workers=1, pids=pids, log=log)) for log in logs]
            work = subprocess.Popen([str(ROOT / ".venv/bin/samia"), "worker"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            stack.callback(lambda: (work.terminate(), work.wait(15)))
            procs = {"api-1": pids[0], "api-2": pids[1], "worker": work.pid}
            tokens = [login(urls[0], "bench@example.com", PASSWORD)]
            tokens += [login(urls[i % 2], f"buyer-{i}@example.com", PASSWORD) for i in range(16)]
            readers, hold_readers = people["readers"], people["hold_readers"]
            assert isinstance(readers, list)
            assert isinstance(hold_readers, list)
            owners = ", ".join(f"[{json.dumps(subject(t))}] = {json.dumps(t)}" for t in tokens)
            values = {"tokens": ", ".join(json.dumps(t) for t in tokens), "owners": owners,
                      "readers": ", ".join(json.dumps(r) for r in readers), "hold_reader": hold_readers[0],
                      "base": int(week.timestamp()), "slots": 48 * 7 * 3}
            script = base / "mix.lua"
            rate, busy_ms = args.rate, 0.0
            if rate is None:  # the maximum: the same mix, closed loop
                script.write_text(MIX_LUA % {**values, "gap": 0})
                peak = sum(float(o["requests"]) / float(o["seconds"])  # type: ignore[arg-type]
                           for o in wrk_mix(urls, script, args.probe, args.clients))
                rate = 0.7 * peak
                busy_ms = 0.4 * args.clients * 2 * 1000 / peak  # a response's time at 70 % (as bench/run.py)
                print(f"maximum of the mix (closed loop, {args.probe} s): {peak:.0f} req/s; offering 70 %")
                with psycopg.connect(owner) as conn:  # the probe's holds took slots; free them again
                    conn.execute("update reader_capacity set status = 'expired' where reader_id = %s",
                                 (hold_readers[0],))
            # paced: each connection waits so that a request plus its wait takes clients*2/rate s
            script.write_text(MIX_LUA % {**values, "gap": max(1, round(args.clients * 2 * 1000 / rate - busy_ms))})
            offsets: dict[Path, int] = {}
            route_latencies(logs, offsets)  # skip the logins and the probe
            overall: dict[str, list[tuple[float, int]]] = {}
            time.sleep(2)
            start_rss: dict[str, int] = {}
            print(f"soak: {args.minutes} min, ~{rate:.0f} req/s offered over 2 API processes behind PgBouncer "
                  f"(transaction mode, 8 server connections), 1 worker; {load_note()}")
            print(f"{'t':>5} {'req/s':>7} {'p50':>7} {'p95':>7} {'p99':>8}  statuses                      "
                  f"db conns  RSS MiB api-1 / api-2 / worker")
            deadline = time.monotonic() + args.minutes * 60
            t0 = time.monotonic()
            while time.monotonic() < deadline - args.interval / 2:
                secs = max(1, min(args.interval, round(deadline - time.monotonic())))
                outs = wrk_mix(urls, script, secs, args.clients)
                with psycopg.connect(owner) as conn:
                    conns = conn.execute("select count(*) from pg_stat_activity where datname = 'samia'").fetchone()
                status: dict[str, int] = {}
                for o in outs:
                    for k, v in o["status"].items():
                        status[k] = status.get(k, 0) + v
                row = {"t": round(time.monotonic() - t0), "rps": sum(o["requests"] / o["seconds"] for o in outs),
                       "p50": max(o["p50"] for o in outs), "p95": max(o["p95"] for o in outs),
                       "p99": max(o["p99"] for o in outs), "socket_errors": sum(o["socket_errors"] for o in outs),
                       "status": status, "db": conns[0] if conns else 0,
                       "rss": {name: rss_kib(pid) for name, pid in procs.items()}}
                rows.append(row)
                if not start_rss:  # after the first interval: imports, pools and caches are warm
                    start_rss = {name: rss_kib(pid) for name, pid in procs.items()}
                rss = row["rss"]
                assert isinstance(rss, dict)
                print(f"{row['t']:>4}s {row['rps']:7.0f} {row['p50']:7.1f} {row['p95']:7.1f} {row['p99']:8.1f}  "
                      f"{json.dumps(dict(sorted(status.items()))):30} {row['db']:>8}  "
                      f"{' / '.join(f'{v / 1024:.0f}' for v in rss.values())}", flush=True)
                for route, ms in sorted(route_latencies(logs, offsets).items()):
                    overall.setdefault(route, []).extend(ms)
                    print(f"       {route:40} server p50/p95/p99 ms {percentiles(ms)}")
    fivexx = sum(int(r["status"].get("5xx", 0)) for r in rows)  # type: ignore[union-attr]
    sock = sum(int(r["socket_errors"]) for r in rows)  # type: ignore[call-overload]
    end_rss = rows[-1]["rss"] if rows else {}
    assert isinstance(end_rss, dict)
    print(f"\nper route over the whole run (server side, ms): {'p50':>7} {'p95':>7} {'p99':>8}")
    for route, ms in sorted(overall.items()):
        print(f"  {route:45} {percentiles(ms)}")
    print(f"\n5xx answers: {fivexx}; socket errors (connect/read/write/timeout): {sock}")
    print("memory from the end of the first interval (warm) to the end:")
    for name, kib in end_rss.items():
        grew = (kib - start_rss[name]) / start_rss[name] if start_rss.get(name) else 0.0
        print(f"RSS {name}: {start_rss[name] / 1024:.0f} → {kib / 1024:.0f} MiB ({grew:+.0%})")
    sys.exit(1 if fivexx or sock else 0)


if __name__ == "__main__":
    main()

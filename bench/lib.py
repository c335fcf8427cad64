"""What the benches share: wrk (closed loop, or paced to a target rate), pgbench with its
per-transaction log, a uvicorn server in its own process group, and loopback HTTP helpers."""

from __future__ import annotations

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from samia import db  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster, pg_bin  # noqa: E402

WRK_LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{auth}
{body}
{extra}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

# Paced: every connection waits between its requests so that the whole run offers about
# `rate` requests per second (wrk's delay() hook; wrk2 is not packaged in Debian).
PACED_LUA = """
local gap = {gap_ms}
delay = function() return gap end
"""


@contextmanager
def migrated_cluster(prefix: str) -> Iterator[tuple[str, Path]]:
    """A private durable cluster (fsync on, as in production) in a fresh folder under /var/tmp,
    with the samia database migrated: (its owner's DSN, the folder). Destroyed when the block
    ends, whatever happened."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)
    superuser = cluster.start()
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        yield owner, base
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, method: str = "GET", token: str | None = None, body: str | None = None, seconds: int = 10,
        clients: int = 8, extra: str = "", rate: float | None = None, busy_ms: float = 0) -> dict[str, float]:
    """Closed-loop load (as fast as `clients` connections go), or paced to about `rate` req/s:
    each connection waits so that its wait plus `busy_ms` (the expected response time) makes
    one request per clients/rate seconds."""
    if rate is not None:
        extra += PACED_LUA.format(gap_ms=max(1, round(clients * 1000 / rate - busy_ms)))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA.format(method=method, extra=extra,
                               auth=f'wrk.headers["Authorization"] = "Bearer {token}"' if token else "",
                               body=f"wrk.body = {json.dumps(body)}" if body else ""))
    try:
        out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "-s", f.name, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    n, dur_us, p50, p95, p99, bad_status, sock_err = line.split()[1:]
    return {"rps": int(n) / (int(dur_us) / 1e6), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "errors": int(sock_err), "non2xx": int(bad_status)}


def pgbench(dsn: str, script: str, seconds: int, clients: int) -> dict[str, float]:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    work = Path(tempfile.mkdtemp(prefix="samia-pgbench-"))
    (work / "script.sql").write_text(script)
    env = {**os.environ, "PGHOST": params["host"], "PGUSER": params["user"], "PGDATABASE": params["dbname"],
           "PGPORT": str(params.get("port", 5432))}
    res = subprocess.run([pg_bin("pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds),
                          "-f", str(work / "script.sql"), "--log", "--log-prefix", str(work / "tx")],
                         env=env, capture_output=True, text=True, check=False, cwd=work)
    if res.returncode != 0:
        sys.exit(f"pgbench failed:\n{res.stderr[-2000:]}")
    lat_ms: list[float] = []
    first = last = None
    for path in glob.glob(str(work / "tx*")):
        for row in open(path):
            parts = row.split()
            lat_ms.append(int(parts[2]) / 1000)
            t = int(parts[4]) + int(parts[5]) / 1e6
            first, last = min(first or t, t), max(last or t, t)
    shutil.rmtree(work)
    q = statistics.quantiles(lat_ms, n=100)
    return {"rps": len(lat_ms) / max(seconds, (last or 0) - (first or 0)), "p50": q[49], "p95": q[94], "p99": q[98],
            "errors": 0, "non2xx": 0}


def http(url: str, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw


def login(url: str, email: str, password: str) -> str:
    return str(http(f"{url}/auth/login", "POST", {"email": email, "password": password})["access_token"])


@contextmanager
def serve(env: dict[str, str], *, workers: int = 2, factory: str = "samia.app:from_env",
          server: str = "uvicorn", pids: list[int] | None = None, src: Path | None = None,
          log: Path | None = None) -> Iterator[str]:
    """The app in its own process group on a loopback port, until the block ends (its
    process id is appended to `pids`: with one worker, the process serving requests). Its JSON
    log lines (the access log among them) go to `log` when given."""
    port = free_port()
    if server == "granian":
        cmd = [str(ROOT / ".venv/bin/granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-ws", factory]
    else:
        cmd = [str(ROOT / ".venv/bin/uvicorn"), factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    sink = log.open("ab") if log else None
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "PYTHONPATH": f"{src or ROOT / 'src'}:{ROOT / 'bench'}"},
                            stdout=subprocess.DEVNULL, stderr=sink or subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if pids is not None:
        pids.append(proc.pid)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/api/ops/live", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    sys.exit(f"{server} exited with {proc.returncode}")
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if sink:
            sink.close()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of one process (with uvicorn --workers 1, the serving one)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def row(name: str, r: dict[str, float]) -> str:
    errs = f"   errors {int(r['errors'])}" if r["errors"] else ""
    return (f"  {name:38} {r['rps']:7.0f}/s   p50 {r['p50']:6.2f}   p95 {r['p95']:6.2f}   p99 {r['p99']:7.2f} ms"
            + errs)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores"

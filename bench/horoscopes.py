"""Horoscopes benchmark (issue 15): GET /horoscopes/today?sign=… (JSON) and the audio itself,
anonymous, through the real service (uvicorn, 2 workers) with wrk on loopback at 50 concurrent
clients, against pgbench running the JSON route's SQL (BEGIN READ ONLY, the one set_config
round trip, app.horoscopes_public, COMMIT). The audio is a real 60 s MP3 per sign, produced by
the same ffmpeg step as ingest (loudness-normalised), in local private storage; each request
reads it and re-hashes it against the pinned sha256 (as served). Also: a revalidation
(If-None-Match → 304) and a seek (Range → 206). M44's goal: cached audio p95 < 300 ms at 50.

Usage: .venv/bin/python bench/horoscopes.py [--seconds 10] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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

from run import free_port, pgbench, row  # noqa: E402

from samia import db  # noqa: E402
from samia.config import Settings  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster  # noqa: E402
from samia.horoscopes import audio, service  # noqa: E402
from samia.providers.storage import make_storage  # noqa: E402

LUA = """
{headers}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk_get(url: str, seconds: int, clients: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    lines = "\n".join(f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA.format(headers=lines))
    out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "-s", f.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    n, dur_us, p50, p95, p99, bad_status, sock_err = line.split()[1:]
    return {"rps": int(n) / (int(dur_us) / 1e6), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "errors": int(sock_err), "non2xx": int(bad_status)}


def publish_today(owner: str, settings: Settings, folder: Path) -> None:
    """Twelve published signs for the Beirut day, each with a real normalised 60 s MP3."""
    storage = make_storage(settings)
    src = folder / "tone.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=330:duration=60",
                    str(src)], check=True)
    done = asyncio.run(audio.normalise(src))
    day = service.beirut_day()
    with psycopg.connect(owner) as conn:
        for sign in service.SIGNS:
            key = asyncio.run(storage.put(done.data, prefix="horoscopes", content_type=audio.CONTENT_TYPE))
            conn.execute("""
                with m as (insert into media_assets (kind, storage_key, content_type, bytes, sha256, duration_sec, meta)
                           values ('audio', %s, 'audio/mpeg', %s, %s, 60, %s) returning id)
                insert into horoscopes (scope, zodiac, ref_date, audio_media_id, audio_sha256, audio_lang, status,
                                        text_en, text_ar, approved_at, published_at)
                select 'daily', %s, %s, id, %s, 'ar', 'published', %s, %s, now(), now() from m""",
                         (key, len(done.data), done.sha256, json.dumps(done.meta), sign, day, done.sha256,
                          f"{sign}: a door opens today.", "برج اليوم: باب يُفتح."))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: run `make bench` (it installs Debian's wrk)")
    base = Path(tempfile.mkdtemp(prefix="samia-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=True)
    superuser = cluster.start()
    server = None
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        os.environ.update({"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "prod", "LOG_LEVEL": "WARNING",
                           "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
                           "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "PHONE_PROVIDER": "twilio",
                           "SAMIA_DATA_DIR": str(base)})
        settings = Settings()  # type: ignore[call-arg]
        publish_today(owner, settings, base)
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
        today = json.load(urllib.request.urlopen(f"{url}/horoscopes/today?sign=Leo"))
        audio_url = url + today["items"][0]["audio_url"]
        etag = urllib.request.urlopen(audio_url).headers["ETag"]
        s, c = args.seconds, args.clients
        wrk_get(f"{url}/horoscopes/today?sign=Leo", 3, c)  # warm-up
        day = service.beirut_day().isoformat()
        script = ("BEGIN READ ONLY;\nselect set_config('role', 'anon', true), set_config('request.jwt.claims', "
                  "'{\"role\": \"anon\"}', true), set_config('request.id', 'bench', true), app.request_identity();\n"
                  f"select * from app.horoscopes_public('daily', '{day}', false);\nCOMMIT;\n")
        results = {
            "api_json": wrk_get(f"{url}/horoscopes/today?sign=Leo", s, c),
            "pg_json": pgbench(db.as_user(owner, "authenticator"), script, s, c),
            "api_audio": wrk_get(audio_url, s, c),
            "api_304": wrk_get(audio_url, s, c, {"If-None-Match": etag}),
            "api_range": wrk_get(audio_url, s, c, {"Range": "bytes=200000-399999"}),
        }
        size = len(urllib.request.urlopen(audio_url).read())
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    r = results
    print(f"\nSamia horoscopes bench — {c} concurrent clients, {s} s each, {os.cpu_count()} cores, "
          f"uvicorn {args.workers} workers, pgbench -M prepared, fsync on; audio {size} bytes (60 s MP3)\n")
    print(row("GET /horoscopes/today?sign=Leo (JSON)", r["api_json"]))
    print(row("pgbench, the same SQL", r["pg_json"]))
    print(f"  ratio API / pgbench: {r['api_json']['rps'] / r['pg_json']['rps']:.2f}")
    print(row("GET audio (200, whole file)", r["api_audio"]))
    print(row("GET audio, If-None-Match (304)", r["api_304"]))
    print(row("GET audio, Range 200 kB (206)", r["api_range"]))
    print(f"  M44 goal, cached audio p95 < 300 ms at {c} clients: "
          f"{'met' if r['api_audio']['p95'] < 300 else 'NOT met'} ({r['api_audio']['p95']:.1f} ms)")


if __name__ == "__main__":
    main()

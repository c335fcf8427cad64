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
import subprocess
import sys
import urllib.request
from pathlib import Path

import psycopg
from lib import load_note, migrated_cluster, pgbench, row, serve, wrk

from samia import db
from samia.config import Settings
from samia.horoscopes import audio, service
from samia.providers.storage import make_storage


def headers_lua(headers: dict[str, str]) -> str:
    return "\n".join(f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items())


def sql_script(day: str) -> str:
    """What GET /horoscopes/today sends, as a pgbench script."""
    return ("BEGIN READ ONLY;\nselect set_config('role', 'anon', true), set_config('request.jwt.claims', "
            "'{\"role\": \"anon\"}', true), set_config('request.id', 'bench', true), app.request_identity();\n"
            f"select * from app.horoscopes_public('daily', '{day}', false);\nCOMMIT;\n")


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
    s, c = args.seconds, args.clients
    with migrated_cluster("samia-bench-") as (owner, base):
        env = {"SECRET_KEY": "bench-secret-" + "x" * 40, "SAMIA_ENV": "prod", "LOG_LEVEL": "WARNING",
               "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
               "DB_POOL_MIN": "4", "DB_POOL_MAX": "8", "PHONE_PROVIDER": "twilio", "SAMIA_DATA_DIR": str(base)}
        os.environ.update(env)
        publish_today(owner, Settings(), base)  # type: ignore[call-arg]
        with serve(env, workers=args.workers) as url:
            today = json.load(urllib.request.urlopen(f"{url}/horoscopes/today?sign=Leo"))
            audio_url = url + today["items"][0]["audio_url"]
            etag = urllib.request.urlopen(audio_url).headers["ETag"]
            wrk(f"{url}/horoscopes/today?sign=Leo", seconds=3, clients=c)  # warm-up
            results = {
                "api_json": wrk(f"{url}/horoscopes/today?sign=Leo", seconds=s, clients=c),
                "pg_json": pgbench(db.as_user(owner, "authenticator"), sql_script(service.beirut_day().isoformat()),
                                   s, c),
                "api_audio": wrk(audio_url, seconds=s, clients=c),
                "api_304": wrk(audio_url, seconds=s, clients=c, extra=headers_lua({"If-None-Match": etag})),
                "api_range": wrk(audio_url, seconds=s, clients=c,
                                 extra=headers_lua({"Range": "bytes=200000-399999"})),
            }
            size = len(urllib.request.urlopen(audio_url).read())
    r = results
    print(f"\nSamia horoscopes bench — {c} concurrent clients, {s} s each, {load_note()},\n"
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

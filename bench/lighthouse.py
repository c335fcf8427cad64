"""Lighthouse on the client's web app: home, catalogue, a reader's profile and an order page.

Starts a private PostgreSQL cluster and the service (uvicorn, one worker) with a signed-in
client who has a delivered-to-be tarot order, then runs Lighthouse from npm (the version in
package-lock.json) against Debian's Chromium with its default mobile settings, and prints
performance / accessibility / best-practices per page and the JavaScript each page loads
(bytes as transferred, i.e. compressed). Goals: each score ≥ 90, JS ≤ 50 KB a page.
Performance is timing on a shared machine, so this is a script, not a test.

Usage: .venv/bin/python bench/lighthouse.py [--keep-reports DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from samia import db  # noqa: E402
from samia.cli import create_user  # noqa: E402
from samia.config import Settings  # noqa: E402
from samia.db import migrate  # noqa: E402
from samia.db.cluster import Cluster  # noqa: E402

CHROME_FLAGS = ("--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
                "--disable-sync --no-first-run")
PASSWORD = "lighthouse-password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, method: str = "GET", body: dict[str, object] | None = None, token: str | None = None) -> object:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None, headers=headers)
    body_out = urllib.request.urlopen(req).read()
    return json.loads(body_out) if body_out else None


def lighthouse(url: str, cookie: str, out: Path) -> dict[str, float]:
    env = {**os.environ, "CHROME_PATH": "/usr/bin/chromium"}
    subprocess.run([str(ROOT / "node_modules/.bin/lighthouse"), url, "--quiet", "--output=json",
                    f"--output-path={out}", f"--chrome-flags={CHROME_FLAGS}",
                    "--only-categories=performance,accessibility,best-practices",
                    f"--extra-headers={json.dumps({'Cookie': cookie})}"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads(out.read_text())
    scores = {k: round(100 * (v["score"] or 0)) for k, v in report["categories"].items()}
    items = report["audits"]["network-requests"]["details"]["items"]
    js = sum(i.get("transferSize", 0) for i in items if i.get("resourceType") == "Script")
    return {**scores, "js_bytes": js}


def login(url: str, email: str) -> str:
    return str(call(f"{url}/auth/login", "POST", {"email": email, "password": PASSWORD})["access_token"])  # type: ignore[index]


def market(url: str) -> None:
    """Prices and a reader's public profile, set through the catalogue API as an admin and the
    reader would."""
    admin, reader = login(url, "lh-admin@example.com"), login(url, "lh-reader@example.com")
    for code, price in (("tarot", 1500), ("coffee", 1200), ("astro", 2500), ("healing", 4000), ("direct_call", 3000)):
        call(f"{url}/admin/services/{code}", "PUT", {"price_minor": price, "currency": "USD"}, admin)
    reader_id = call(f"{url}/me", token=reader)["id"]  # type: ignore[index]
    call(f"{url}/admin/readers/{reader_id}/services", "PUT",
         {"services": ["tarot", "coffee", "astro", "healing", "direct_call"]}, admin)
    call(f"{url}/readers/me/profile", "PUT", {
        "display_name": "Layla", "specialties": ["love", "career", "family"], "languages": ["ar", "en"],
        "bio_en": "Tarot and coffee-cup reader for fifteen years; calm, direct, kind.",
        "bio_ar": "قارئة تاروت وفنجان منذ خمسة عشر عامًا؛ هادئة وصريحة ولطيفة."}, reader)
    call(f"{url}/readers/me/status", "PUT", {"available": True}, reader)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep-reports", type=Path, help="copy the JSON reports here")
    args = ap.parse_args()
    if not (ROOT / "node_modules/.bin/lighthouse").exists():
        sys.exit("lighthouse not installed: run `make setup` (npm ci)")
    base = Path(tempfile.mkdtemp(prefix="samia-lh-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = Cluster(base / "cluster", durable=False)
    superuser = cluster.start()
    server = None
    try:
        db.create_database(superuser, "samia")
        owner = db.with_dbname(superuser, "samia")
        migrate.up(owner, echo=lambda _: None)
        os.environ.update({"SECRET_KEY": "lighthouse-secret-" + "x" * 40, "SAMIA_ENV": "dev", "LOG_LEVEL": "WARNING",
                           "DATABASE_URL": owner, "APP_DATABASE_URL": db.as_user(owner, "authenticator"),
                           "SAMIA_DATA_DIR": str(base)})
        settings = Settings()  # type: ignore[call-arg]
        create_user(owner, email="lh@example.com", password=PASSWORD, role="client", dob="1990-05-15",
                    country="LB", first_name="Light", settings=settings)
        reader = create_user(owner, email="lh-reader@example.com", password=PASSWORD, role="reader",
                             dob="1985-01-01", country="LB", first_name="Reader", settings=settings)
        create_user(owner, email="lh-admin@example.com", password=PASSWORD, role="admin", dob="1980-01-01",
                    country="LB", first_name="Admin", settings=settings)
        port = free_port()
        server = subprocess.Popen([str(ROOT / ".venv/bin/uvicorn"), "samia.app:from_env", "--factory", "--host",
                                   "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/api/ops/live", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        market(url)
        tokens = call(f"{url}/auth/login", "POST", {"email": "lh@example.com", "password": PASSWORD})
        access, refresh = tokens["access_token"], tokens["refresh_token"]  # type: ignore[index]
        call(f"{url}/wallet/topups", "POST", {"amount_minor": 5000, "card_token": "tok_visa"}, access)
        order = call(f"{url}/orders", "POST", {"service": "tarot", "question": "What does the year hold?"}, access)
        cookie = f"samia_session={access}~{refresh}; samia_lang=en"
        pages = {"home": "/", "catalogue": "/catalogue", "reader profile": f"/catalogue/readers/{reader}",
                 "order": f"/my/orders/{order['id']}"}  # type: ignore[index]
        print("Lighthouse 12 (mobile defaults), Debian Chromium, one uvicorn worker on loopback\n")
        print(f"{'page':16} {'performance':>12} {'accessibility':>14} {'best-practices':>15} {'JS (transferred)':>17}")
        for name, path in pages.items():
            out = base / f"{name.replace(' ', '-')}.json"
            r = lighthouse(url + path, cookie, out)
            print(f"{name:16} {r['performance']:>12} {r['accessibility']:>14} {r['best-practices']:>15} "
                  f"{r['js_bytes'] / 1024:>14.1f} KB")
            if args.keep_reports:
                args.keep_reports.mkdir(parents=True, exist_ok=True)
                shutil.copy(out, args.keep_reports / out.name)
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

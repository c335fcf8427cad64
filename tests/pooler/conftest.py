"""The production topology on this machine: PgBouncer (Debian's, transaction pooling) in front
of the test cluster, API processes of their own (uvicorn, DB_TRANSACTION_POOLER=true) and a
job worker whose queue connection bypasses the pooler (QUEUE_DATABASE_URL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from samia import db
from samia.db import pooler
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]

if pooler.binary() is None:
    pytest.skip("pgbouncer is not installed (scripts/setup.sh installs it)", allow_module_level=True)


@contextmanager
def bouncing(owner_dsn: str, size: int) -> Iterator[pooler.Bouncer]:
    bouncer = pooler.Bouncer(owner_dsn, size=size).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


def dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def pooled_env(owner_dsn: str, bouncer: pooler.Bouncer, **extra: str) -> dict[str, str]:
    """What an API process behind the pooler is given (as deploy/samia.env.example says)."""
    return {**os.environ, "SAMIA_ENV": "test", "SECRET_KEY": TEST_SECRET, "LOG_LEVEL": "WARNING",
            "DATABASE_URL": owner_dsn, "APP_DATABASE_URL": bouncer.dsn(dbname(owner_dsn)),
            "QUEUE_DATABASE_URL": db.as_user(owner_dsn, "authenticator"),
            "DB_TRANSACTION_POOLER": "true", "DB_POOL_MIN": "1", "DB_POOL_MAX": "4",
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "PYTHONPATH": str(ROOT / "src"), **extra}


@contextmanager
def api_process(env: dict[str, str]) -> Iterator[str]:
    """One uvicorn API process on a loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "samia.app:from_env", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/ops/live", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    errors.seek(0)
                    raise AssertionError(errors.read().decode(errors="replace")[-2000:]) from None
                assert time.monotonic() < deadline, "the API process did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errors.close()

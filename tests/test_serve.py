"""`samia serve` as a new user runs it: its own cluster, the job worker beside the API, email links
at the port it serves on, and Ctrl-C stopping everything it started within seconds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from samia.db.cluster import Cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_alive(pgid: int) -> bool:
    """Whether any process of the group (serve and the worker it spawned) still runs."""
    return subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, check=False).returncode == 0


def test_serve_links_to_its_own_port_and_stops_everything_on_ctrl_c() -> None:
    data = Path(tempfile.mkdtemp(prefix="samia-serve-", dir="/var/tmp" if os.geteuid() == 0 else None))
    data.chmod(0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_DATABASE_URL", "PUBLIC_BASE_URL",
                                                            "SECRET_KEY")}
    env.update(SAMIA_DATA_DIR=str(data), ARGON2_TIME_COST="1", ARGON2_MEMORY_KIB="1024")
    serve = subprocess.Popen([sys.executable, "-m", "samia.cli", "serve", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cluster = Cluster(data)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, "serve exited early"
            try:
                if httpx.get(f"{base}/api/ops/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.5)
        r = httpx.post(f"{base}/auth/signup", json={"email": "new@example.com", "password": "a-long-password-1",
                                                    "dob": "1990-01-02", "country": "LB", "first_name": "New",
                                                    "last_name": "User"})
        assert r.status_code == 201, r.text
        mailbox = data / "mail"
        deadline = time.monotonic() + 60
        while not list(mailbox.glob("*.eml")):
            assert time.monotonic() < deadline, "the worker did not send the verification email"
            time.sleep(0.5)
        mail = next(mailbox.glob("*.eml")).read_text()
        assert re.search(rf"http://127\.0\.0\.1:{port}/verify-email\?token=", mail), "the link's port"
        assert cluster.running() and group_alive(serve.pid), "the API, its worker and the cluster run"

        started = time.monotonic()
        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to serve and its worker
        serve.wait(10)
        while group_alive(serve.pid) and time.monotonic() - started < 10:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert not group_alive(serve.pid), "the worker outlived serve"
        assert not cluster.running(), "the embedded cluster serve started is still running"
        assert elapsed < 5, f"stopping took {elapsed:.1f} s"
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(cluster.socket_dir, ignore_errors=True)

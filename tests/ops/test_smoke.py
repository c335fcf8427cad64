"""`samia smoke` against the real service on loopback: passes on a healthy deployment,
fails (exit 1) on a dead one or with bad credentials."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from ..helpers import PASSWORD


def smoke(url: str, email: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECRET_KEY": "x" * 40, "SMOKE_EMAIL": email, "SMOKE_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "samia.cli", "smoke", url, *extra], env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def test_smoke_passes_against_a_healthy_service(served, api) -> None:
    c = api.user("client")
    r = smoke(served, c.email, PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("health", "ready", "openapi", "login", "me", "order", "emergency route"):
        assert f"ok   {name}" in r.stdout, r.stdout
    assert "smoke: PASSED (7/7)" in r.stdout
    # the order it placed was cancelled at once
    assert api.sql("select status::text from orders where user_id = %s", (c.id,)) == [("cancelled",)]
    ro = smoke(served, c.email, PASSWORD, "--readonly")
    assert ro.returncode == 0 and "order" not in ro.stdout.replace("openapi", "")


def test_smoke_fails_on_bad_credentials_and_on_a_dead_service(served, api) -> None:
    bad = smoke(served, "nobody@example.com", "wrong-password-123")
    assert bad.returncode == 1 and "FAIL login" in bad.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = smoke(dead, "x@example.com", "y")
    assert down.returncode == 1 and "FAIL health" in down.stdout

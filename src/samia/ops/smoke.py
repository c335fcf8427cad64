"""`samia smoke BASE_URL`: synthetic checks against a running deployment (seeds 004
smoke_readonly): health and readiness, the API document, login, an order placed and
cancelled at once, and the emergency route answering (without raising a siren).
Prints one line per check; exit 0 when all pass, 1 otherwise."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


def run(base_url: str, email: str | None, password: str | None, readonly: bool = False,
        timeout: float = 10.0) -> list[Check]:
    results: list[Check] = []
    token: dict[str, str] = {}
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as http:

        def check(name: str, fn: Callable[[], str]) -> None:
            t0 = time.perf_counter()
            try:
                detail, ok = fn(), True
            except Exception as exc:  # a failed check is reported, not raised
                detail, ok = f"{type(exc).__name__}: {exc}"[:200], False
            results.append(Check(name, ok, detail, (time.perf_counter() - t0) * 1000))

        def expect(r: httpx.Response, status: int) -> httpx.Response:
            if r.status_code != status:
                raise AssertionError(f"HTTP {r.status_code}, expected {status}")
            return r

        check("health", lambda: expect(http.get("/api/ops/health"), 200).json()["status"])
        check("ready", lambda: str(expect(http.get("/api/ops/ready"), 200).json().get("status", "ready")))
        check("openapi", lambda: f"{len(expect(http.get('/openapi.json'), 200).json()['paths'])} paths")
        if not (email and password):
            results.append(Check("login", False, "no SMOKE_EMAIL / SMOKE_PASSWORD given", 0.0))
            return results

        def login() -> str:
            body = expect(http.post("/auth/login", json={"email": email, "password": password}), 200).json()
            token["h"] = f"Bearer {body['access_token']}"
            return "token issued"
        check("login", login)
        if "h" not in token:
            return results
        h = {"Authorization": token["h"]}
        check("me", lambda: expect(http.get("/me", headers=h), 200).json()["role"])
        if not readonly:
            def order() -> str:
                r = expect(http.post("/orders", json={"service": "tarot", "question": "smoke check"},
                                     headers={**h, "Idempotency-Key": f"smoke-{uuid.uuid4()}"}), 201).json()
                expect(http.post(f"/orders/{r['id']}/cancel", headers=h), 200)
                return f"order {r['id']} placed and cancelled"
            check("order", order)
        check("emergency route", lambda: expect(http.post("/calls/emergency", json={}, headers=h), 422).json()["code"])
    return results


def report(results: list[Check]) -> tuple[bool, str]:
    lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name:16} {c.ms:7.1f} ms  {c.detail}" for c in results]
    ok = bool(results) and all(c.ok for c in results)
    lines.append(f"smoke: {'PASSED' if ok else 'FAILED'} ({sum(c.ok for c in results)}/{len(results)})")
    return ok, "\n".join(lines)

"""Plain factories for tests: users per role, tokens, SQL as the owner or as a user."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg.abc import Query

from samia import db
from samia.cli import create_user
from samia.config import Settings
from samia.jobs import worker
from samia.providers.email import MemoryMailer

PASSWORD = "a-long-test-password"


@dataclass
class User:
    id: str
    email: str
    role: str
    access: str
    refresh: str

    @property
    def h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


class Api:
    def __init__(self, client: TestClient, owner_dsn: str, settings: Settings) -> None:
        self.client, self.owner_dsn, self.settings = client, owner_dsn, settings

    def user(self, role: str = "client", *, country: str = "LB", email: str | None = None) -> User:
        email = email or f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        uid = create_user(self.owner_dsn, email=email, password=PASSWORD, role=role, dob="1990-05-15",
                          country=country, first_name=role.capitalize(), last_name="Test",
                          settings=self.settings)
        tokens = self.login(email, PASSWORD)
        return User(uid, email, role, tokens["access_token"], tokens["refresh_token"])

    def login(self, email: str, password: str) -> dict[str, Any]:
        r = self.client.post("/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def sql(self, query: Query, params: Any = None) -> list[tuple[Any, ...]]:
        conn = psycopg.connect(self.owner_dsn)
        try:  # explicit commit: a deferred constraint may fail there, and the connection must still close
            cur = conn.execute(query, params)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def sql_as(self, user_id: str | None, query: Query, params: Any = None) -> list[tuple[Any, ...]]:
        """Run SQL through the API's own login, switched to the user's role and claims."""
        role = "authenticated" if user_id else "anon"
        claims = json.dumps({"sub": user_id, "role": role} if user_id else {"role": "anon"})
        conn = psycopg.connect(db.as_user(self.owner_dsn, "authenticator"))
        try:
            conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                         (role, claims))
            cur = conn.execute(query, params)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def audit_rows(self, event: str, entity_id: str | None = None) -> list[tuple[Any, ...]]:
        return self.sql("select actor::text, actor_role, event, entity, entity_id, meta from audit_log "
                        "where event = %s and (%s::text is null or entity_id = %s) order by id",
                        (event, entity_id, entity_id))


def ok(r: Any, status: int = 200) -> Any:
    """Assert a success status and return the JSON body."""
    assert r.status_code == status, r.text
    return r.json()


def run_jobs(settings: Settings, dsns: db.Dsns, *tasks: str, at: Any = None) -> None:
    """Queue the tasks (as the cron route does) and run one worker over them until none is
    left; `at` replaces the clock of the tasks that take one (escalations)."""
    args = json.dumps({"at": at.isoformat()} if at is not None else {})
    for t in tasks:
        with psycopg.connect(dsns.owner) as conn:
            conn.execute("select app.defer(%s, %s)", (t, args))
    asyncio.run(worker.run(settings, dsns, concurrency=1, wait=False, mailer=MemoryMailer()))


def problem(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an RFC 9457 problem response and return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("/problems/")
    assert "Traceback" not in r.text
    if code:
        assert body["code"] == code, body
    return body  # type: ignore[no-any-return]


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A fake provider on a loopback port for the duration of the block; yields its base URL."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """Base for the fake providers the tests run on loopback: quiet, and JSON replies."""

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

"""Route-guard ↔ RLS parity (seeds 000 M43).

For every route that admits a specific set of app roles, run the route's probe under
each app role (SET ROLE authenticated + that user's claims, inside a transaction that is
rolled back) and compare what the database permits with what the route declares.
Open routes (public / any signed-in user) have no role set to compare and are listed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import psycopg
from fastapi import FastAPI

from samia.core.access import APP_ROLES, registry


@dataclass
class RouteParity:
    method: str
    path: str
    declared: tuple[str, ...]
    permitted: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and set(self.declared) == set(self.permitted)


@dataclass
class Report:
    routes: list[RouteParity] = field(default_factory=list)
    open_routes: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.routes) and all(r.ok for r in self.routes)

    def lines(self) -> list[str]:
        out = []
        for r in self.routes:
            mark = "ok  " if r.ok else "FAIL"
            detail = r.problem or (f"declared={','.join(r.declared)}" + (
                "" if r.ok else f" database={','.join(r.permitted) or '-'}"))
            out.append(f"{mark} {r.method:6} {r.path}  {detail}")
        for method, path, kind in self.open_routes:
            out.append(f"open {method:6} {path}  {kind}")
        checked = len(self.routes)
        good = sum(r.ok for r in self.routes)
        out.append(f"parity: {good}/{checked} guarded routes match the database "
                   f"({100 * good // max(checked, 1)}%), {len(self.open_routes)} open routes")
        return out


def _fixture_users(conn: psycopg.Connection) -> dict[str, str]:
    users = {}
    for role in (*APP_ROLES, "other"):
        code = "client" if role == "other" else role
        row = conn.execute(
            "insert into profiles (email, first_name, role_id, dob) "
            "values (%s, 'Parity', (select id from roles where code = %s), '1990-01-01') returning id::text",
            (f"parity-{role}@example.invalid", code)).fetchone()
        assert row is not None
        users[role] = row[0]
    # adults who accepted the current legal documents (what ordering, booking and paying need)
    conn.execute("select app.legal_accept_current(u) from unnest(%s::uuid[]) u", (list(users.values()),))
    # and the other client asked for an export of their data
    row = conn.execute("insert into data_requests (user_id, kind, due_at) values (%s, 'export', now() + "
                       "interval '30 days') returning id", (users["other"],)).fetchone()
    assert row is not None
    users["data_request"] = str(row[0])
    # the probe world: the reader offers tarot around the clock, every day (UTC)
    conn.execute("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
                 (users["reader"],))
    conn.execute("insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
                 "select %s, d, '00:00', '23:30', 'UTC' from generate_series(1, 7) d", (users["reader"],))
    # and the client has a confirmed booking with that reader
    row = conn.execute("""
        with cap as (insert into reader_capacity (reader_id, during, kind, status)
                     values (%(r)s, tstzrange(now() + interval '30 days', now() + interval '30 days 30 minutes'),
                             'booking', 'confirmed') returning id)
        insert into bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, status,
                              price_minor, currency, policy)
        select %(c)s, %(r)s, s.id, cap.id, now() + interval '30 days', now() + interval '30 days 30 minutes',
               'confirmed', 0, 'USD', s.policy from cap, services s where s.code = 'tarot'
        returning id""", {"r": users["reader"], "c": users["client"]}).fetchone()
    assert row is not None
    users["booking"] = str(row[0])
    # and the other client has a bank transfer waiting
    conn.execute("insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency) "
                 "values (%s, 'bank_transfer', 'charge', 'requires_action', 1500, 'USD')", (users["other"],))
    users.update(_order_world(conn, users["client"], users["reader"]))
    # and that booking's call is live
    row = conn.execute("insert into calls (booking_id, client_id, reader_id, kind, status, started_at) "
                       "values (%s, %s, %s, 'scheduled', 'started', now()) returning id",
                       (users["booking"], users["client"], users["reader"])).fetchone()
    assert row is not None
    users["call"] = str(row[0])
    # and the reader asks for an instant window
    row = conn.execute("insert into instant_windows (reader_id, during) values "
                       "(%s, tstzrange(now() + interval '1 day', now() + interval '25 hours')) returning id",
                       (users["reader"],)).fetchone()
    assert row is not None
    users["window"] = str(row[0])
    return users


# Orders of the client with that reader, one at each step of the workflow (moved along by
# the owner, the path without role checks), a tarot reading and an assistant draft.
STEPS = ("assigned", "in_progress", "awaiting_approval", "approved", "delivered")
AT = {"order_new": 0, "order_assigned": 1, "order_wip": 2, "order_review": 3, "order_approved": 4,
      "order_delivered": 5}


def _order_at(conn: psycopg.Connection, client: str, reader: str, steps: int, name: str) -> str:
    row = conn.execute("insert into orders (user_id, service_id) select %s, id from services "
                       "where code = 'tarot' returning id", (client,)).fetchone()
    assert row is not None
    oid = row[0]
    for step in STEPS[:steps]:
        if step == "assigned":
            conn.execute("update orders set status = 'assigned', assigned_reader = %s where id = %s", (reader, oid))
            continue
        conn.execute("update orders set status = %s where id = %s", (step, oid))
        if step == "in_progress":
            conn.execute("with m as (insert into media_assets (owner_id, kind, storage_key, sha256) "
                         "values (%s, 'audio', %s, repeat('a', 64)) returning id) "
                         "update orders set output_media_id = m.id from m where orders.id = %s",
                         (reader, f"parity/{name}", oid))
    return str(oid)


def _order_world(conn: psycopg.Connection, client: str, reader: str) -> dict[str, str]:
    world = {name: _order_at(conn, client, reader, steps, name) for name, steps in AT.items()}
    row = conn.execute("insert into tarot_v2_readings (order_id, deck_code, spread_code) "
                       "values (%s, 'rider_waite', 'single') returning id", (world["order_new"],)).fetchone()
    assert row is not None
    world["reading"] = str(row[0])
    conn.execute("insert into tarot_v2_card_selections (reading_id, card_position, card_id, is_reversed) "
                 "select %s, 1, min(id), false from deck_cards where not is_back", (row[0],))
    conn.execute("insert into reading_drafts (order_id, author_id, provider, body) values (%s, %s, 'local', 'parity')",
                 (world["order_wip"], reader))
    # the reader's public profile, and the client's review of another delivered order
    conn.execute("insert into reader_profiles (reader_id, display_name) values (%s, 'Parity Reader')", (reader,))
    reviewed = _order_at(conn, client, reader, len(STEPS), "order_reviewed")
    row = conn.execute("insert into reviews (client_id, reader_id, order_id, rating, body) "
                       "values (%s, %s, %s, 4, 'parity') returning id", (client, reader, reviewed)).fetchone()
    assert row is not None
    world["review"] = str(row[0])
    return world


def _bind(sql: str, world: dict[str, str]) -> str:
    """`:name` → a bound parameter (uuids as text, ids as bigint)."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in world:
            return m.group(0)
        return f"%({name})s" + ("::bigint" if world[name].isdigit() else "")
    return re.sub(r"(?<!:):([a-z_]+)", one, sql)


def check(app: FastAPI, owner_dsn: str) -> Report:
    report = Report()
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"actor": "parity"}),))
        users = _fixture_users(conn)
        for method, path, guard in registry(app):
            if guard is None:
                report.routes.append(RouteParity(method, path, (), problem="no role declaration"))
                continue
            if guard.open:
                report.open_routes.append((method, path, guard.roles[0]))
                continue
            if guard.probe is None:
                report.routes.append(RouteParity(method, path, guard.roles, problem="no database probe"))
                continue
            permitted = []
            for role in APP_ROLES:
                claims = json.dumps({"sub": users[role], "role": "authenticated"})
                conn.execute("savepoint probe")
                try:
                    conn.execute("select set_config('role', 'authenticated', true), "
                                 "set_config('request.jwt.claims', %s, true)", (claims,))
                    cur = conn.execute(_bind(guard.probe.sql, users), users)
                    if cur.rowcount > 0:
                        permitted.append(role)
                except psycopg.Error:
                    pass
                finally:
                    conn.execute("rollback to savepoint probe")
            report.routes.append(RouteParity(method, path, guard.roles, tuple(permitted)))
        conn.rollback()
    return report

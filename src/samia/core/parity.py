"""Route-guard ↔ RLS parity (seeds 000 M43).

For every route that admits a specific set of app roles, run the route's probe under
each app role (SET ROLE authenticated + that user's claims, inside a transaction that is
rolled back) and compare what the database permits with what the route declares.
Open routes (public / any signed-in user) have no role set to compare and are listed.
"""

from __future__ import annotations

import json
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
            "insert into profiles (email, first_name, role_id) "
            "values (%s, 'Parity', (select id from roles where code = %s)) returning id::text",
            (f"parity-{role}@example.invalid", code)).fetchone()
        assert row is not None
        users[role] = row[0]
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
    return users


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
                    sql = (guard.probe.sql.replace(":other", "%(other)s").replace(":reader", "%(reader)s")
                           .replace(":booking", "%(booking)s::bigint"))
                    cur = conn.execute(sql, {"other": users["other"], "reader": users["reader"],  # type: ignore[arg-type]
                                             "booking": users["booking"]})
                    if cur.rowcount > 0:
                        permitted.append(role)
                except psycopg.Error:
                    pass
                finally:
                    conn.execute("rollback to savepoint probe")
            report.routes.append(RouteParity(method, path, guard.roles, tuple(permitted)))
        conn.rollback()
    return report

"""An upgraded database equals a fresh one, in the style of procrastinate's migration test.

* upgraded: the oldest released migration with the schema files as they could be applied then,
  then `up` with everything since (schema files re-applied only where they changed);
* fresh: `up` on an empty database.
Their schemas (functions, policies, grants and triggers included) and seed rows must be identical.
A rule changed only in a migration, behind its schema file's back, makes them differ.

And a database built by the legacy layout (the 24 migrations of main at 325ca4e, kept verbatim in
fixtures/) reaches the new layout in place, with its rows and its audit chain intact."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate.schema import SchemaManager

from samia.cli import verify_audit
from samia.db import migrate

from .schema_diff import differences, names_in

RELEASED = Path(str(resources.files("samia.migrations"))) / "released.sha256"
LEGACY = Path(__file__).parent / "fixtures" / "legacy-migrations-325ca4e.tar.gz"


def quiet(_: str) -> None:
    pass


def build_upgraded(dsn: str, layout: migrate.Layout, released: list[str], scratch: Path) -> None:
    """The oldest release's state, then today's `up`."""
    no_rules = scratch / "no-schema"
    no_rules.mkdir(exist_ok=True)
    migrate.up(dsn, echo=quiet, layout=migrate.Layout(migrations=layout.migrations, schema=no_rules),
               only=released[:1])
    with psycopg.connect(dsn, autocommit=True) as conn:
        for unit in layout.schema_units():  # the files that apply on that release count as applied then
            try:
                with conn.transaction():
                    conn.execute(unit.body)  # type: ignore[arg-type]
                    migrate._record(conn, unit.name, unit.checksum)
            except psycopg.Error:
                pass  # it needs what a later migration adds: it changed since, so `up` applies it
    migrate.up(dsn, echo=quiet, layout=layout)


def released_names() -> list[str]:
    return [line.split()[1] for line in RELEASED.read_text().splitlines() if line.strip()]


def test_upgrade_equals_fresh(new_db: Callable[[], str], tmp_path: Path) -> None:
    upgraded, fresh = new_db(), new_db()
    build_upgraded(upgraded, migrate.Layout(), released_names(), tmp_path)
    migrate.up(fresh, echo=quiet)
    assert differences(upgraded, fresh) == []


def test_a_rule_changed_only_in_a_migration_is_caught(new_db: Callable[[], str], tmp_path: Path) -> None:
    for part in ("migrations", "schema"):
        shutil.copytree(Path(str(resources.files(f"samia.{part}"))), tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (tmp_path / "migrations" / "002_drift.sql").write_text(
        "-- wrong: a policy belongs in schema/01_identity.sql\n"
        "drop policy if exists roles_read on public.roles;\n"
        "create policy roles_read on public.roles for select to authenticated using (true);\n")
    layout = migrate.Layout(migrations=tmp_path / "migrations", schema=tmp_path / "schema")
    upgraded, fresh = new_db(), new_db()
    build_upgraded(upgraded, layout, released_names(), tmp_path)
    migrate.up(fresh, echo=quiet, layout=layout)
    diff = differences(upgraded, fresh)
    assert diff, "the drift went unnoticed"
    assert "roles_read" in names_in(diff) and len(diff) == 2  # one policy, seen from both sides


# --- the legacy layout ---------------------------------------------------------------------------

def build_legacy(dsn: str) -> None:
    """Exactly what main's runner at 325ca4e did: each file in its own transaction, recorded by
    name and sha256, the job queue's schema as `008_procrastinate_schema`."""
    files: dict[str, str] = {}
    with tarfile.open(LEGACY) as tar:
        for member in tar.getmembers():
            files[member.name] = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    pin = ("do $pin$ declare f regprocedure; begin for f in select p.oid::regprocedure from pg_proc p "
           "join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'procrastinate' loop "
           "execute format('alter function %s set search_path = procrastinate, pg_catalog', f); end loop; end $pin$;")
    files["008_procrastinate_schema"] = ("create schema if not exists procrastinate;\n"
                                         "set local search_path = procrastinate, pg_catalog;\n"
                                         + SchemaManager.get_schema() + pin)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table public._migrations (id serial primary key, name text unique not null, "
                     "checksum text not null, applied_at timestamptz not null default now())")
        conn.execute("alter table public._migrations enable row level security")
        conn.execute("alter table public._migrations force row level security")
        for name in sorted(files):
            body = files[name]
            with conn.transaction():
                conn.execute(body.split("-- migrate:down", 1)[0])  # type: ignore[arg-type]
                conn.execute("insert into public._migrations (name, checksum) values (%s, %s)",
                             (name, hashlib.sha256(body.encode()).hexdigest()))


def populate(dsn: str) -> None:
    """A client and a reader, a wallet top-up, a paid tarot order, and an audit chain, written
    through the legacy layout's own functions and triggers."""
    with psycopg.connect(dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"actor": "legacy-test"}),))
        client, reader = (conn.execute(
            "insert into profiles (email, first_name, dob, country, role_id) values (%s, %s, '1990-05-15', 'LB', %s) "
            "returning id", (f"{who}@example.com", who.title(), role)).fetchone()[0]  # type: ignore[index]
            for who, role in (("legacy-client", 5), ("legacy-reader", 3)))
        conn.execute("update services set price_minor = 1500 where code = 'tarot'")
        conn.execute("insert into reader_services (reader_id, service_id) select %s, id from services "
                     "where code = 'tarot'", (reader,))
        topup = conn.execute("insert into payment_transactions (user_id, provider, kind, status, amount_minor, "
                             "currency) values (%s, 'testcard', 'topup', 'pending', 5000, 'USD') returning id",
                             (client,)).fetchone()[0]  # type: ignore[index]
        assert conn.execute("select app.settle_charge(%s, 'tc_legacy')", (topup,)).fetchone() == ("settled",)
        order = conn.execute("insert into orders (user_id, service_id, question_text) select %s, id, "
                             "'Will it work?' from services where code = 'tarot' returning id",
                             (client,)).fetchone()[0]  # type: ignore[index]
        charge = conn.execute("insert into payment_transactions (user_id, provider, kind, amount_minor, currency, "
                              "order_id) values (%s, 'wallet', 'charge', 1500, 'USD', %s) returning id",
                              (client, order)).fetchone()[0]  # type: ignore[index]
        assert conn.execute("select app.settle_charge(%s, null)", (charge,)).fetchone() == ("settled",)
        conn.execute("update orders set status = 'assigned', assigned_reader = %s where id = %s", (reader, order))
        conn.execute("select app.audit('legacy.note', 'order', %s, '{\"n\": 1}')", (str(order),))
    with psycopg.connect(dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', '{\"actor\": \"legacy-test\"}', true)")
        conn.execute("select app.audit_seal()")


SNAPSHOT = ("profiles", "services", "orders", "payment_transactions", "ledger_entries", "audit_log",
            "reader_services")


def snapshot(dsn: str) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(dsn) as conn:
        return {t: [r[0] for r in conn.execute(psycopg.sql.SQL("select to_jsonb(x) from {} x order by x::text")
                                               .format(psycopg.sql.Identifier(t))).fetchall()]
                for t in SNAPSHOT}


def kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> bool:
    """Every row still there with every value it had (later migrations may add columns)."""
    return all(len(after[t]) == len(rows) and all({k: new[k] for k in old} == old
                                                 for old, new in zip(rows, after[t], strict=True))
               for t, rows in before.items())


def test_a_legacy_database_reaches_the_new_layout_with_its_data(new_db: Callable[[], str]) -> None:
    legacy, fresh = new_db(), new_db()
    build_legacy(legacy)
    populate(legacy)
    before = snapshot(legacy)
    assert len(before["orders"]) == 1 and len(before["ledger_entries"]) == 4 and len(before["audit_log"]) >= 5
    assert verify_audit(legacy)[0]

    lines: list[str] = []
    migrate.up(legacy, echo=lines.append)
    assert lines[1] == ("[=] adopt 001_baseline.sql (it replaces 001_roles_and_auth … 025_operations, "
                        "all applied here)")
    assert "[=] skip 001_baseline.sql" in lines and "[+] apply schema/07_orders.sql" in lines
    migrate.up(fresh, echo=quiet)
    assert differences(legacy, fresh, seeds=False) == []  # its rows are its own (a price was set)
    with psycopg.connect(legacy) as conn:
        registry = sorted(r[0] for r in conn.execute("select name from _migrations"))
    assert registry == sorted(u.name for u in migrate.available())
    assert kept(before, snapshot(legacy))
    ok, message = verify_audit(legacy)
    assert ok, message
    with psycopg.connect(legacy) as conn:  # the chain goes on from where it was
        conn.execute("select set_config('request.jwt.claims', '{\"actor\": \"legacy-test\"}', true)")
        head = conn.execute("select max(chain_pos) from audit_log").fetchone()[0]  # type: ignore[index]
        conn.execute("select app.audit('legacy.after_upgrade')")
        assert conn.execute("select app.audit_seal()").fetchone() == (1,)
        row = conn.execute("select a.chain_pos, a.prev_hash = b.row_hash from audit_log a, audit_log b "
                           "where a.event = 'legacy.after_upgrade' and b.chain_pos = %s", (head,)).fetchone()
    assert row == (head + 1, True)
    assert verify_audit(legacy)[0]


def test_a_legacy_database_that_stopped_half_way_is_refused(new_db: Callable[[], str]) -> None:
    legacy = new_db()
    build_legacy(legacy)
    with psycopg.connect(legacy) as conn:
        conn.execute("delete from _migrations where name = '025_operations.sql'")
    with pytest.raises(migrate.MigrationError, match="stopped before legacy migration 025_operations"):
        migrate.up(legacy, echo=quiet)


def test_the_legacy_fixture_is_main_at_325ca4e() -> None:
    """The fixture's own integrity: 24 files, the first and the last as released."""
    with tarfile.open(LEGACY) as tar:
        names = sorted(tar.getnames())
        last = tar.extractfile("025_operations.sql").read()  # type: ignore[union-attr]
    assert len(names) == 24 and names[0] == "001_roles_and_auth.sql"
    assert hashlib.sha256(last).hexdigest().startswith("39d1f0a59c0d")  # the checksum main's runner recorded

"""Migrations and schema files: `samia migrate up|down|audit`.

Three kinds of units share one registry (`public._migrations`: name, checksum):

* `samia/migrations/NNN_*.sql` hold tables, columns, constraints, indexes and seed data. Each is
  applied once, in name order, and never edited after release: a recorded file whose checksum
  differs is refused (write a new migration instead). The part after `-- migrate:down` is what
  `down` runs to undo the most recent one.
* `procrastinate` is the job queue's own schema at the pinned version (its checksum is the
  version): procrastinate's `get_schema()` on a fresh database, its shipped migrations newer
  than the recorded version on an upgrade, as its documentation prescribes.
* `schema/NN_*.sql` hold the CURRENT functions, triggers, views, policies and grants of one
  domain each. A file is re-applied, in name order, whenever its sha256 changes — the pattern of
  Flyway's repeatable migrations and Supabase's declarative schemas.

`up` installs or upgrades the job queue first (in transactions of its own, as procrastinate
requires), then runs the pending migrations and schema files in ONE transaction with a
lock_timeout: a deploy lands whole or not at all. It prints `[+] apply` / `[=] skip`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from importlib.metadata import version

import psycopg
from psycopg import sql

DOWN_MARKER = "-- migrate:down"
LOCK_KEY = 7384023101
LOCK_TIMEOUT = "10s"
QUEUE = "procrastinate"
# The schema file that grants on and pins the job queue's objects: re-applied whenever the
# queue's own schema is installed or upgraded, since its grants cover objects that changed.
QUEUE_RULES = "schema/04_jobs.sql"
REPLACES = re.compile(r"^-- replaces: (.+)$", re.M)

Echo = Callable[[str], None]


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Unit:
    """One registry entry: a migration, a schema file, or the job queue's schema."""
    name: str
    body: str
    kind: str  # "migration" | "schema" | "queue"

    @property
    def checksum(self) -> str:
        if self.kind == "queue":
            return self.body  # the pinned version
        return hashlib.sha256(self.body.encode()).hexdigest()

    @property
    def up_sql(self) -> str:
        return self.body.split(DOWN_MARKER, 1)[0]

    @property
    def down_sql(self) -> str:
        parts = self.body.split(DOWN_MARKER, 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def replaces(self) -> list[str]:
        """Legacy migrations a baseline squashed (`-- replaces: a b c` lines)."""
        return [n for line in REPLACES.findall(self.body) for n in line.split()]


@dataclass(frozen=True)
class Layout:
    """Where the units come from: the package by default; tests point it at copies."""
    migrations: Traversable = field(default_factory=lambda: resources.files("samia.migrations"))
    schema: Traversable = field(default_factory=lambda: resources.files("samia.schema"))

    def migration_units(self) -> list[Unit]:
        return _read(self.migrations, "", "migration")

    def schema_units(self) -> list[Unit]:
        return _read(self.schema, "schema/", "schema")


def _read(folder: Traversable, prefix: str, kind: str) -> list[Unit]:
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Unit(prefix + f.name, f.read_text(encoding="utf-8"), kind) for f in files]


def queue_unit() -> Unit:
    return Unit(QUEUE, version("procrastinate"), "queue")


def available(layout: Layout | None = None) -> list[Unit]:
    """Every unit the code knows, in the order `up` applies them."""
    layout = layout or Layout()
    return [queue_unit(), *layout.migration_units(), *layout.schema_units()]


def _ensure_registry(conn: psycopg.Connection) -> None:
    conn.execute("""
        create table if not exists public._migrations (
          id serial primary key,
          name text unique not null,
          checksum text not null,
          applied_at timestamptz not null default now()
        )""")
    # the registry is the owner's business: no request role may read or change it
    conn.execute("alter table public._migrations enable row level security")
    conn.execute("alter table public._migrations force row level security")


def applied(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("select to_regclass('public._migrations') is not null").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("select name, checksum from public._migrations order by name").fetchall())


def pending(conn: psycopg.Connection, layout: Layout | None = None) -> list[Unit]:
    """Units `up` would apply: new ones, schema files that changed, a queue at another version."""
    done = applied(conn)
    return [u for u in available(layout) if done.get(u.name) != u.checksum]


def _record(conn: psycopg.Connection, name: str, checksum: str) -> None:
    conn.execute("insert into public._migrations (name, checksum) values (%s, %s) "
                 "on conflict (name) do update set checksum = excluded.checksum, applied_at = now()",
                 (name, checksum))


def _in_queue_schema(conn: psycopg.Connection, text: str) -> None:
    """Run procrastinate's SQL (unqualified names) inside its own schema, then restore the path."""
    path = conn.execute("select current_setting('search_path')").fetchone()
    conn.execute("create schema if not exists procrastinate")
    conn.execute("select set_config('search_path', 'procrastinate, pg_catalog', true)")
    conn.execute(text)  # procrastinate's own, shipped SQL
    conn.execute("select set_config('search_path', %s, true)", (path[0] if path else "public",))


def _queue_steps(installed: str) -> list[Traversable]:
    """procrastinate's shipped migrations after `installed` (a version such as 3.9.0, or the last
    file applied when an upgrade stopped half-way), up to the pinned version."""
    def ver(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.split(r"[._]", text)[:3])
    folder = resources.files("procrastinate") / "sql" / "migrations"
    files = sorted((f for f in folder.iterdir() if re.match(r"^\d\d\.\d\d\.\d\d_\d\d_.+\.sql$", f.name)),
                   key=lambda f: f.name)
    high = ver(version("procrastinate"))
    if re.match(r"^\d\d\.\d\d\.\d\d_", installed):
        return [f for f in files if f.name > installed and ver(f.name) <= high]
    return [f for f in files if ver(installed) < ver(f.name) <= high]


def _apply_queue(dsn: str, echo: Echo) -> bool:
    """Install or upgrade the job queue's schema, as procrastinate documents it: its schema on a
    fresh database, else its migrations one transaction each (a new enum value must be committed
    before the next file uses it), progress recorded after each. Its rules file is then due again."""
    unit = queue_unit()
    with psycopg.connect(dsn) as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        _ensure_registry(conn)
        done = applied(conn)
        was = done.get(unit.name)
        if was == unit.checksum or (was is None and any(n.startswith("008_procrastinate") for n in done)):
            echo(f"[=] skip {unit.name} {unit.checksum}")
            return False
        if was is None:
            from procrastinate.schema import SchemaManager

            echo(f"[+] apply {unit.name} {unit.checksum} (its schema)")
            _in_queue_schema(conn, SchemaManager.get_schema())
            _record(conn, QUEUE, unit.checksum)
            conn.execute("delete from public._migrations where name = %s", (QUEUE_RULES,))
            return True
    steps = _queue_steps(was)
    echo(f"[+] apply {unit.name} {was} → {unit.checksum} ({len(steps)} of its migrations)")
    for step in [*steps, None]:
        with psycopg.connect(dsn) as conn:
            conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if step is not None:
                echo(f"    {step.name}")
                _in_queue_schema(conn, step.read_text(encoding="utf-8"))
            _record(conn, QUEUE, step.name if step is not None else unit.checksum)
            conn.execute("delete from public._migrations where name = %s", (QUEUE_RULES,))
    return True


def _adopt_legacy(conn: psycopg.Connection, migrations: list[Unit], done: dict[str, str], echo: Echo) -> None:
    """A database built by the files a baseline squashed takes that baseline as applied."""
    stems = {n.removesuffix(".sql") for n in done}
    for m in migrations:
        legacy = m.replaces
        if m.name in done or not legacy or not stems & set(legacy):
            continue
        missing = [n for n in legacy if n not in stems]
        if missing:
            raise MigrationError(f"this database stopped before legacy migration {missing[0]}; {m.name} "
                                 "replaces the whole legacy chain, so finish it with the release that had it")
        echo(f"[=] adopt {m.name} (it replaces {legacy[0]} … {legacy[-1]}, all applied here)")
        old = [n for n in done if n.removesuffix(".sql") in legacy]
        conn.execute("delete from public._migrations where name = any(%s)", (old,))
        for n in old:
            del done[n]
        _record(conn, m.name, m.checksum)
        done[m.name] = m.checksum
        # the legacy chain installed the job queue's schema at the version pinned then (this one)
        _record(conn, QUEUE, queue_unit().checksum)


def up(dsn: str, echo: Echo = print, layout: Layout | None = None, only: Iterable[str] | None = None) -> list[str]:
    """Apply what is pending, in one transaction; return the names applied.

    `only` limits the migrations considered to those names (tests build older states with it)."""
    layout = layout or Layout()
    migrations = [m for m in layout.migration_units() if only is None or m.name in set(only)]
    applied_now: list[str] = [QUEUE] if _apply_queue(dsn, echo) else []
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        _ensure_registry(conn)
        done = applied(conn)
        _adopt_legacy(conn, migrations, done, echo)
        for m in migrations:
            if m.name in done:
                if done[m.name] != m.checksum:
                    raise MigrationError(f"{m.name} changed after it was applied (recorded {done[m.name][:12]}, "
                                         f"file {m.checksum[:12]}); write a new migration instead")
                echo(f"[=] skip {m.name}")
                continue
            echo(f"[+] apply {m.name}")
            conn.execute(m.up_sql)  # a file of ours, not user input
            _record(conn, m.name, m.checksum)
            applied_now.append(m.name)
        for s in layout.schema_units():
            if done.get(s.name) == s.checksum:
                echo(f"[=] skip {s.name}")
                continue
            echo(f"[+] apply {s.name}")
            conn.execute(s.body)
            _record(conn, s.name, s.checksum)
            applied_now.append(s.name)
    return applied_now


def down(dsn: str, echo: Echo = print, layout: Layout | None = None) -> str | None:
    """Undo the most recently applied migration with its down section. The schema files are
    forgotten, so the next `up` re-applies them over whatever the down section removed."""
    layout = layout or Layout()
    by_name = {m.name: m for m in layout.migration_units()}
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        done = [n for n in applied(conn) if n in by_name]
        if not done:
            echo("[=] nothing to undo")
            return None
        last = max(done)
        m = by_name[last]
        if not m.down_sql.strip():
            raise MigrationError(f"{last} has no down section")
        echo(f"[-] revert {last}")
        conn.execute(m.down_sql)
        conn.execute("delete from public._migrations where name = %s or name like 'schema/%%'", (last,))
    return last


def audit(dsn: str, echo: Echo = print, layout: Layout | None = None) -> bool:
    """Report every unit's state and RLS coverage; True when all is current and covered."""
    ok = True
    with psycopg.connect(dsn, autocommit=True) as conn:
        done = applied(conn)
        for u in available(layout):
            state = ("applied" if done.get(u.name) == u.checksum
                     else "pending" if u.name not in done
                     else "due" if u.kind != "migration"      # `up` re-applies it
                     else "CHANGED")                          # `up` refuses it
            ok &= state == "applied"
            echo(f"{state:8} {u.name}")
        rows = conn.execute("""
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policies p where p.schemaname = 'public' and p.tablename = c.relname)
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname <> '_migrations'
             order by 1""").fetchall()
        for name, rls, forced, policies in rows:
            good = rls and forced and policies > 0
            ok &= good
            echo(f"{'rls ok ' if good else 'RLS GAP'} {name} (policies: {policies})")
    return ok

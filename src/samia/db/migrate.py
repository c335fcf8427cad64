"""Plain-SQL migrations: `samia migrate up|down|audit`.

Each file in samia/migrations is applied once, in name order, in its own transaction,
and recorded in `_migrations` with its sha256. A file changed after it was applied is
refused (write a new migration instead). The part of a file after `-- migrate:down`
is what `down` runs to undo the most recent migration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg

DOWN_MARKER = "-- migrate:down"
LOCK_KEY = 7384023101


@dataclass(frozen=True)
class Migration:
    name: str
    body: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()

    @property
    def up_sql(self) -> str:
        return self.body.split(DOWN_MARKER, 1)[0]

    @property
    def down_sql(self) -> str:
        parts = self.body.split(DOWN_MARKER, 1)
        return parts[1] if len(parts) == 2 else ""


class MigrationError(RuntimeError):
    pass


def procrastinate_schema() -> Migration:
    """The job queue's own schema (procrastinate, version pinned in pyproject), installed
    into the `procrastinate` schema so that public holds only RLS-guarded tables."""
    from procrastinate.schema import SchemaManager

    # Its functions and triggers use unqualified names: pin their search_path so they work
    # whoever calls them (a trigger fired by the owner's own DELETE, say).
    pin = """
do $pin$
declare f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'procrastinate' loop
    execute format('alter function %s set search_path = procrastinate, pg_catalog', f);
  end loop;
end
$pin$;
"""
    body = ("create schema if not exists procrastinate;\n"
            "set local search_path = procrastinate, pg_catalog;\n"
            + SchemaManager.get_schema() + pin
            + f"\n{DOWN_MARKER}\ndrop schema if exists procrastinate cascade;\n")
    return Migration("008_procrastinate_schema", body)


def available() -> list[Migration]:
    files = resources.files("samia.migrations")
    return sorted(
        [*(Migration(f.name, f.read_text()) for f in files.iterdir() if f.name.endswith(".sql")),
         procrastinate_schema()],
        key=lambda m: m.name,
    )


def _ensure_ledger(conn: psycopg.Connection) -> None:
    conn.execute("""
        create table if not exists public._migrations (
          id serial primary key,
          name text unique not null,
          checksum text not null,
          applied_at timestamptz not null default now()
        )""")
    # the ledger is the owner's business: no request role may read or change it
    conn.execute("alter table public._migrations enable row level security")
    conn.execute("alter table public._migrations force row level security")


def applied(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("select to_regclass('public._migrations') is not null").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("select name, checksum from public._migrations order by name").fetchall())


def pending(conn: psycopg.Connection) -> list[Migration]:
    done = applied(conn)
    return [m for m in available() if m.name not in done]


def up(dsn: str, echo: Callable[[str], None] = print) -> list[str]:
    """Apply what is not applied yet; return the names applied."""
    done_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            _ensure_ledger(conn)
            done = applied(conn)
            for m in available():
                if m.name in done:
                    if done[m.name] != m.checksum:
                        raise MigrationError(f"{m.name} changed after it was applied "
                                             f"(recorded {done[m.name][:12]}, file {m.checksum[:12]}); "
                                             "write a new migration instead")
                    echo(f"[=] skip {m.name}")
                    continue
                echo(f"[+] apply {m.name}")
                with conn.transaction():
                    conn.execute(m.up_sql)
                    conn.execute("insert into public._migrations (name, checksum) values (%s, %s)",
                                 (m.name, m.checksum))
                done_now.append(m.name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done_now


def down(dsn: str, echo: Callable[[str], None] = print) -> str | None:
    """Undo the most recently applied migration with its down section."""
    by_name = {m.name: m for m in available()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        done = applied(conn)
        if not done:
            echo("[=] nothing to undo")
            return None
        last = max(done)
        m = by_name.get(last)
        if m is None or not m.down_sql.strip():
            raise MigrationError(f"{last} has no down section")
        echo(f"[-] revert {last}")
        with conn.transaction():
            conn.execute(m.down_sql)
            conn.execute("delete from public._migrations where name = %s", (last,))
        return last


def audit(dsn: str, echo: Callable[[str], None] = print) -> bool:
    """Report migration state and RLS coverage; True when everything is current and covered."""
    ok = True
    with psycopg.connect(dsn, autocommit=True) as conn:
        done = applied(conn)
        for m in available():
            state = ("applied" if done.get(m.name) == m.checksum
                     else "CHANGED" if m.name in done else "pending")
            ok &= state == "applied"
            echo(f"{state:8} {m.name}")
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

"""The runner: migrations once and never edited, schema files re-applied when they change, the job
queue installed and upgraded procrastinate's way, all of a run in one transaction."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import psycopg
import pytest

from samia import db
from samia.db import migrate

from .schema_diff import differences


@pytest.fixture
def layout(tmp_path: Path) -> migrate.Layout:
    """A copy of the package's migrations and schema files that a test may edit."""
    for part in ("migrations", "schema"):
        src = Path(str(resources.files(f"samia.{part}")))
        shutil.copytree(src, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return migrate.Layout(migrations=tmp_path / "migrations", schema=tmp_path / "schema")


def quiet(_: str) -> None:
    pass


def test_up_twice_applies_nothing_the_second_time(empty_db: str) -> None:
    first: list[str] = []
    second: list[str] = []
    names = [u.name for u in migrate.available()]
    assert migrate.up(empty_db, echo=first.append) == names
    assert all(line.startswith("[+] apply") for line in first)
    assert migrate.up(empty_db, echo=second.append) == []
    assert [line.split()[2] for line in second] == names and all(line.startswith("[=] skip") for line in second)
    with psycopg.connect(empty_db) as conn:
        rows = conn.execute("select name, checksum from _migrations order by name").fetchall()
    assert rows == sorted((u.name, u.checksum) for u in migrate.available())
    assert ("procrastinate", version("procrastinate")) in rows
    assert migrate.audit(empty_db, echo=quiet)


def test_an_edited_migration_is_refused(empty_db: str) -> None:
    migrate.up(empty_db, echo=quiet)
    with psycopg.connect(empty_db) as conn:
        conn.execute("update _migrations set checksum = 'x' where name = '001_baseline.sql'")
    with pytest.raises(migrate.MigrationError, match=r"001_baseline\.sql changed"):
        migrate.up(empty_db, echo=quiet)
    assert not migrate.audit(empty_db, echo=quiet)


def test_a_changed_schema_file_is_reapplied_alone(empty_db: str, layout: migrate.Layout) -> None:
    migrate.up(empty_db, echo=quiet, layout=layout)
    rules = Path(str(layout.schema)) / "05_catalogue.sql"
    rules.write_text(rules.read_text().replace("using (is_active or (select app.is_admin()))", "using (is_active)"))
    lines: list[str] = []
    assert migrate.up(empty_db, echo=lines.append, layout=layout) == ["schema/05_catalogue.sql"]
    assert "[+] apply schema/05_catalogue.sql" in lines and "[=] skip schema/07_orders.sql" in lines
    with psycopg.connect(empty_db) as conn:
        qual = conn.execute("select qual from pg_policies where policyname = 'services_read'").fetchone()
    assert qual == ("is_active",)
    assert migrate.audit(empty_db, echo=quiet, layout=layout)


def test_a_run_lands_whole_or_not_at_all(empty_db: str, layout: migrate.Layout) -> None:
    migrate.up(empty_db, echo=quiet, layout=layout)
    root = Path(str(layout.migrations))
    (root / "999_notes.sql").write_text("create table public.test_notes (id bigint primary key);\n")
    (Path(str(layout.schema)) / "99_notes.sql").write_text(
        "select app.lock_down('test_notes');\n"
        "create policy test_notes_read on public.test_notes for select using (nonsense);\n")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        migrate.up(empty_db, echo=quiet, layout=layout)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('public.test_notes')").fetchone() == (None,)
        assert conn.execute("select count(*) from _migrations where name like '%notes%'").fetchone() == (0,)


def test_a_locked_table_makes_the_run_fail_fast_and_change_nothing(empty_db: str, layout: migrate.Layout,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.up(empty_db, echo=quiet, layout=layout)
    rules = Path(str(layout.schema)) / "05_catalogue.sql"
    rules.write_text(rules.read_text().replace("using (is_active or (select app.is_admin()))", "using (is_active)"))
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT", "300ms")
    holder = psycopg.connect(empty_db)
    try:
        holder.execute("lock table public.services in access exclusive mode")  # a long report, say
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            migrate.up(empty_db, echo=quiet, layout=layout)
        assert time.monotonic() - started < 5
    finally:
        holder.rollback()
        holder.close()
    with psycopg.connect(empty_db) as conn:
        qual = conn.execute("select qual from pg_policies where policyname = 'services_read'").fetchone()
    assert qual != ("is_active",)
    assert migrate.up(empty_db, echo=quiet, layout=layout) == ["schema/05_catalogue.sql"]


def test_two_runs_at_once_apply_everything_once(empty_db: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate.up(empty_db, echo=quiet))
        except BaseException as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2
    assert sorted(results[0] + results[1]) == sorted(u.name for u in migrate.available())  # each once


FINGERPRINT = """
    select md5(string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text,
                          ',' order by n.nspname || '.' || c.relname))
      || md5(coalesce((select string_agg(p.oid::regprocedure::text, ',' order by p.oid::regprocedure::text)
                         from pg_proc p join pg_namespace pn on pn.oid = p.pronamespace
                        where pn.nspname in ('public', 'app')), ''))
      || md5(coalesce((select string_agg(tablename || '.' || policyname, ',' order by tablename || '.' || policyname)
                         from pg_policies), ''))
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('public', 'app', 'app_auth', 'app_private', 'procrastinate')"""


def test_down_then_up_restores_the_last_migration_and_its_rules(empty_db: str, layout: migrate.Layout) -> None:
    (Path(str(layout.migrations)) / "999_notes.sql").write_text(
        "create table public.test_notes (id bigint primary key, body text);\n"
        "-- migrate:down\ndrop table public.test_notes;\n")
    (Path(str(layout.schema)) / "99_notes.sql").write_text(
        "select app.lock_down('test_notes');\ngrant select on public.test_notes to authenticated;\n"
        "drop policy if exists test_notes_read on public.test_notes;\n"
        "create policy test_notes_read on public.test_notes for select to authenticated using (true);\n")
    migrate.up(empty_db, echo=quiet, layout=layout)
    with psycopg.connect(empty_db) as conn:
        before = conn.execute(FINGERPRINT).fetchone()
    assert migrate.down(empty_db, echo=quiet, layout=layout) == "999_notes.sql"
    with psycopg.connect(empty_db) as conn:
        assert conn.execute(FINGERPRINT).fetchone() != before, "down changed nothing"
        assert conn.execute("select count(*) from _migrations where name like 'schema/%'").fetchone() == (0,)
    assert not migrate.audit(empty_db, echo=quiet, layout=layout)
    applied = migrate.up(empty_db, echo=quiet, layout=layout)
    assert applied[0] == "999_notes.sql" and "schema/99_notes.sql" in applied
    with psycopg.connect(empty_db) as conn:
        assert conn.execute(FINGERPRINT).fetchone() == before, "up did not restore the same schema"
    assert migrate.audit(empty_db, echo=quiet, layout=layout)


def test_the_baseline_cannot_be_undone(empty_db: str) -> None:
    migrate.up(empty_db, echo=quiet)
    # 008 (deck art), 007 (horoscopes) and 006 (messaging) carry down sections: undone, then
    # applied again by the next up
    assert migrate.down(empty_db, echo=quiet) == "008_deck_art.sql"
    assert migrate.down(empty_db, echo=quiet) == "007_horoscopes.sql"
    assert migrate.down(empty_db, echo=quiet) == "006_messaging.sql"
    with pytest.raises(migrate.MigrationError, match="has no down section"):
        migrate.down(empty_db, echo=quiet)
    migrate.up(empty_db, echo=quiet)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select count(*) from public.devices").fetchone() == (0,)
        assert conn.execute("select count(*) from public.horoscope_captions where kind = 'sign'").fetchone()[0] > 24


def test_the_job_queue_upgrades_from_its_first_release_to_its_current_schema(empty_db: str,
        new_db: Callable[[], str]) -> None:
    """procrastinate's documented path: its shipped migrations after the recorded version, each in
    a transaction of its own; the result equals a fresh install of its schema."""
    initial = resources.files("procrastinate") / "sql" / "migrations" / "00.00.00_01_initial.sql"
    with psycopg.connect(empty_db) as conn:
        migrate._ensure_registry(conn)
        migrate._in_queue_schema(conn, initial.read_text())
        conn.execute("insert into _migrations (name, checksum) values ('procrastinate', '0.0.0')")
    lines: list[str] = []
    migrate.up(empty_db, echo=lines.append)
    assert lines[0].startswith(f"[+] apply procrastinate 0.0.0 → {version('procrastinate')}")
    assert "    02.06.00_01_add_cancel_states.sql" in lines
    fresh = new_db()
    migrate.up(fresh, echo=quiet)
    # procrastinate's own test compares the same way: column order aside
    assert differences(empty_db, fresh, schemas=("procrastinate",), column_order=False, seeds=False) == []
    with psycopg.connect(empty_db) as conn:
        pinned = conn.execute("""
            select bool_and(coalesce(p.proconfig, '{}') @> '{"search_path=procrastinate, pg_catalog"}')
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = 'procrastinate'""").fetchone()
    assert pinned == (True,), "the jobs rules file was not re-applied after the queue changed"


def test_queue_steps_are_the_shipped_migrations_after_the_recorded_version() -> None:
    steps = [f.name for f in migrate._queue_steps("3.3.0")]
    assert steps == ["03.04.00_01_pre_add_retry_failed_job_procedure.sql",
                     "03.04.00_50_post_add_retry_failed_job_procedure.sql"]
    assert migrate._queue_steps(version("procrastinate")) == []
    assert [f.name for f in migrate._queue_steps("03.04.00_01_pre_add_retry_failed_job_procedure.sql")] == steps[1:]


def test_as_user_keeps_host_and_drops_password() -> None:
    dsn = db.as_user("postgresql://owner:secret@db.example.com:6543/app?sslmode=require", "authenticator")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    assert params["user"] == "authenticator" and "password" not in params
    assert (params["host"], params["port"], params["dbname"], params["sslmode"]) == \
        ("db.example.com", "6543", "app", "require")

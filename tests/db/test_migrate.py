"""The migration runner: idempotent, refuses edited files, reverts with down sections."""

from __future__ import annotations

import psycopg
import pytest

from samia import db
from samia.db import migrate
from tests.conftest import fresh_database


@pytest.fixture
def empty_db(admin_dsn: str):  # type: ignore[no-untyped-def]
    dsn = fresh_database(admin_dsn, "template0")
    yield dsn
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_up_twice_applies_nothing_the_second_time(empty_db: str) -> None:
    first, second = [], []
    assert migrate.up(empty_db, echo=first.append) == [m.name for m in migrate.available()]
    assert all(line.startswith("[+] apply") for line in first)
    assert migrate.up(empty_db, echo=second.append) == []
    assert second == [f"[=] skip {m.name}" for m in migrate.available()]
    with psycopg.connect(empty_db) as conn:
        rows = conn.execute("select name, checksum from _migrations order by name").fetchall()
    assert rows == [(m.name, m.checksum) for m in migrate.available()]
    assert migrate.audit(empty_db, echo=lambda _: None)


def test_an_edited_migration_is_refused(empty_db: str) -> None:
    migrate.up(empty_db, echo=lambda _: None)
    with psycopg.connect(empty_db) as conn:
        conn.execute("update _migrations set checksum = 'x' where name = '002_core.sql'")
    with pytest.raises(migrate.MigrationError, match=r"002_core\.sql changed"):
        migrate.up(empty_db, echo=lambda _: None)
    assert not migrate.audit(empty_db, echo=lambda _: None)


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


def test_down_then_up_restores_the_last_migration(empty_db: str) -> None:
    migrate.up(empty_db, echo=lambda _: None)
    with psycopg.connect(empty_db) as conn:
        before = conn.execute(FINGERPRINT).fetchone()
    last = migrate.available()[-1].name
    assert migrate.down(empty_db, echo=lambda _: None) == last
    with psycopg.connect(empty_db) as conn:
        assert conn.execute(FINGERPRINT).fetchone() != before, "down changed nothing"
    assert not migrate.audit(empty_db, echo=lambda _: None)
    assert migrate.up(empty_db, echo=lambda _: None) == [last]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute(FINGERPRINT).fetchone() == before, "up did not restore the same schema"
    assert migrate.audit(empty_db, echo=lambda _: None)


def test_as_user_keeps_host_and_drops_password() -> None:
    dsn = db.as_user("postgresql://owner:secret@db.example.com:6543/app?sslmode=require", "authenticator")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    assert params["user"] == "authenticator" and "password" not in params
    assert (params["host"], params["port"], params["dbname"], params["sslmode"]) == \
        ("db.example.com", "6543", "app", "require")

"""The audit log: append-only for every role, hash-chained, and tampering is named by verify."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from samia.cli import verify_audit


@pytest.fixture(scope="module")
def chain(api):  # type: ignore[no-untyped-def]
    admin = api.user("admin")
    for i in range(5):
        api.sql_as(admin.id, "select app.audit('test.event', 'thing', %s, jsonb_build_object('n', %s))",
                   (str(i), i))
    return admin


def test_chain_links_and_verifies(api, chain) -> None:
    rows = api.sql("select id, prev_hash, row_hash from audit_log order by id")
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), "ids are gapless"
    assert rows[0][1] == "0" * 64
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    ok, message = verify_audit(api.owner_dsn)
    assert ok and f"{len(rows)} rows" in message


def test_no_role_may_update_delete_or_truncate(api, chain) -> None:
    for stmt in ("update audit_log set event = 'x' where id = 1", "delete from audit_log where id = 1",
                 "truncate audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.sql(stmt)  # the owner itself
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.sql_as(chain.id, stmt)  # an admin through the API login
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(chain.id, "insert into audit_log (event) values ('forged')")


def test_actor_comes_from_the_session_not_the_caller(api, chain) -> None:
    rows = api.sql("select actor::text, actor_role from audit_log where event = 'test.event'")
    assert set(rows) == {(chain.id, "admin")}


def tamper(api, sql: str) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("alter table audit_log disable trigger user")
        conn.execute(sql)
        conn.execute("alter table audit_log enable trigger user")


def test_altered_row_is_named(api, chain) -> None:
    target = api.sql("select id from audit_log where event = 'test.event' order by id limit 1 offset 2")[0][0]
    tamper(api, f"update audit_log set meta = '{{\"n\": 99}}' where id = {target}")
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"id={target}" in message and "row_hash" in message
    tamper(api, f"update audit_log set meta = '{{\"n\": 2}}' where id = {target}")
    assert verify_audit(api.owner_dsn)[0], "restoring the content restores the chain"


def test_recomputed_hashes_after_swap_break_the_link(api, chain) -> None:
    # An attacker who rewrites a row and recomputes its own hash still breaks its successor.
    first = api.sql("select max(id) - 1 from audit_log")[0][0]
    tamper(api, f"update audit_log set event = 'rewritten' where id = {first}")
    tamper(api, f"update audit_log a set row_hash = app.audit_hash(a) where id = {first}")
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"id={first + 1}" in message and "prev_hash" in message


def test_deleted_row_is_named(api, chain) -> None:
    target = api.sql("select id from audit_log where event = 'test.event' order by id limit 1 offset 1")[0][0]
    tamper(api, f"delete from audit_log where id = {target}")
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"id={target + 1}" in message and "gap" in message


def test_cli_exit_code_names_the_row(api, chain) -> None:
    env = {**os.environ, "DATABASE_URL": api.owner_dsn, "SECRET_KEY": "x" * 40}
    r = subprocess.run([sys.executable, "-m", "samia.cli", "audit", "verify"], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 1 and "BROKEN at row id=" in r.stdout

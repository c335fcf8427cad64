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


def test_rows_are_sealed_into_a_gapless_chain_after_the_writers(api, chain) -> None:
    # written unsealed (no lock shared by writers); the sealer links them in order afterwards
    assert api.sql("select count(*) from audit_log where row_hash is null and event = 'test.event'") == [(5,)]
    ok, message = verify_audit(api.owner_dsn)  # seals, then walks
    rows = api.sql("select chain_pos, prev_hash, row_hash from audit_log order by chain_pos")
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), "positions are gapless"
    assert rows[0][1] == "0" * 64
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    assert ok and f"{len(rows)} rows" in message
    # a sealed row's chain fields are fixed too
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql("select set_config('app.audit_sealing', 'on', true); "
                "update audit_log set row_hash = repeat('f', 64) where chain_pos = 1")


def test_concurrent_writers_all_land_in_one_chain(api, chain) -> None:
    import threading

    def write(n: int) -> None:
        for i in range(25):
            api.sql_as(chain.id, "select app.audit('test.concurrent', 'thing', %s)", (f"{n}-{i}",))
    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok, message = verify_audit(api.owner_dsn)
    assert ok, message
    assert api.sql("select count(*), count(chain_pos) from audit_log where event = 'test.concurrent'") == [(200, 200)]


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


def tamper(api, *steps: tuple[str, tuple[object, ...]]) -> None:  # type: ignore[no-untyped-def]
    """As the owner, with the append-only triggers off: what an attacker with the database could do."""
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("alter table audit_log disable trigger user")
        for statement, params in steps:
            conn.execute(statement, params)  # type: ignore[arg-type]
        conn.execute("alter table audit_log enable trigger user")


def test_altered_row_is_named(api, chain) -> None:
    target = api.sql("select id from audit_log where event = 'test.event' order by id limit 1 offset 2")[0][0]
    tamper(api, ("update audit_log set meta = %s where id = %s", ('{"n": 99}', target)))
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"id={target}" in message and "row_hash" in message
    tamper(api, ("update audit_log set meta = %s where id = %s", ('{"n": 2}', target)))
    assert verify_audit(api.owner_dsn)[0], "restoring the content restores the chain"


def test_reordered_rows_are_named(api, chain) -> None:
    verify_audit(api.owner_dsn)
    a, b = api.sql("select id from audit_log where event = 'test.event' order by chain_pos limit 2")
    pa, pb = (api.sql("select chain_pos from audit_log where id = %s", (x[0],))[0][0] for x in (a, b))
    swap = "update audit_log set chain_pos = %s where id = %s"
    tamper(api, (swap, (-1, a[0])), (swap, (pa, b[0])), (swap, (pb, a[0])))
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"chain_pos {min(pa, pb)})" in message
    tamper(api, (swap, (-1, a[0])), (swap, (pb, b[0])), (swap, (pa, a[0])))
    assert verify_audit(api.owner_dsn)[0]


def test_recomputed_hashes_after_swap_break_the_link(api, chain) -> None:
    # An attacker who rewrites a row and recomputes its own hash still breaks its successor.
    verify_audit(api.owner_dsn)
    first, second = api.sql("select id, (select id from audit_log where chain_pos = a.chain_pos + 1) "
                            "from audit_log a where chain_pos = (select max(chain_pos) - 1 from audit_log)")[0]
    tamper(api, ("update audit_log set event = 'rewritten' where id = %s", (first,)),
           ("update audit_log a set row_hash = app.audit_hash(a) where id = %s", (first,)))
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"id={second} " in message and "prev_hash" in message


def test_deleted_row_is_named(api, chain) -> None:
    verify_audit(api.owner_dsn)
    target, pos = api.sql("select id, chain_pos from audit_log where event = 'test.event' order by chain_pos "
                          "limit 1 offset 1")[0]
    after = api.sql("select id from audit_log where chain_pos = %s", (pos + 1,))[0][0]
    tamper(api, ("delete from audit_log where id = %s", (target,)))
    ok, message = verify_audit(api.owner_dsn)
    assert not ok and f"id={after} " in message and "gap" in message


def test_cli_exit_code_names_the_row(api, chain) -> None:
    env = {**os.environ, "DATABASE_URL": api.owner_dsn, "SECRET_KEY": "x" * 40}
    r = subprocess.run([sys.executable, "-m", "samia.cli", "audit", "verify"], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 1 and "BROKEN at row id=" in r.stdout

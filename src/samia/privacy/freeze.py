"""M43, from the command line: the data-QA report, the schema-lock sign-off, the purge of test
users, and the log archive run on demand (the job runs it nightly)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from samia import db
from samia.config import Settings
from samia.core.ports import Storage
from samia.db import migrate
from samia.providers.storage import make_storage

T = TypeVar("T")


def data_qa(owner_dsn: str) -> tuple[bool, list[str]]:
    """Seeds 003 §13C: profiles without a role, orders without a service, orphan media. Clean
    when every count is zero."""
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute("select check_name, found, sample from app.data_qa()").fetchall()
    lines = [f"{'ok  ' if n == 0 else 'FAIL'} {name}: {n}" + (f" (e.g. {', '.join(sample)})" if n else "")
             for name, n, sample in rows]
    clean = all(n == 0 for _, n, _ in rows)
    lines.append("data QA: clean" if clean else "data QA: problems found")
    return clean, lines


def freeze(app: FastAPI, dsns: db.Dsns, signer_email: str) -> tuple[bool, list[str]]:
    """Record the schema-lock sign-off in the audit log: who (an admin's profile id), when, every
    migration and schema file with its checksum, the parity report and the data-QA counts. Refused
    (nothing recorded) while anything is pending, parity is below 100 % or the data is not clean.
    `app` is the application whose routes the parity check reads."""
    from samia.core.parity import check

    with psycopg.connect(dsns.owner) as conn:
        signer = conn.execute("select p.id::text from profiles p where p.email = %s and p.deleted_at is null "
                              "and p.role_id in (1, 2)", (signer_email,)).fetchone()
        state = migrate.applied(conn)
        waiting = [u.name for u in migrate.pending(conn)]
    if signer is None:
        return False, [f"freeze: {signer_email} is not an active admin or superadmin"]
    if waiting:
        return False, [f"freeze: not applied yet: {', '.join(waiting)} (run `samia migrate up`)"]
    report = check(app, dsns.owner)
    lines = report.lines()
    clean, qa_lines = data_qa(dsns.owner)
    lines += qa_lines
    if not report.ok or not clean:
        return False, [*lines, "freeze: refused (parity must be 100 % and the data clean); nothing recorded"]
    meta = {"migrations": state, "parity": {"summary": lines[len(report.lines()) - 1], "report": report.lines(),
                                            "sha256": hashlib.sha256("\n".join(report.lines()).encode()).hexdigest()},
            "data_qa": qa_lines}
    with psycopg.connect(dsns.owner) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": signer[0], "actor": "cli:freeze"}),))
        audit_id = conn.execute("select app.audit('schema.freeze', 'schema', %s, %s)",
                                (max(n for n in state if not n.startswith("schema/") and n != migrate.QUEUE),
                                 json.dumps(meta))).fetchone()[0]  # type: ignore[index]
    return True, [*lines, f"freeze: signed off by {signer[0]}, audit row {audit_id}"]


def _on_pool(dsns: db.Dsns, work: Callable[[AsyncConnectionPool], Awaitable[T]]) -> T:
    async def go() -> T:
        # a one-off command: nothing worth preparing, and nothing prepared behind a transaction pooler
        async with AsyncConnectionPool(dsns.app, min_size=1, max_size=2,
                                       kwargs={"autocommit": False, "prepare_threshold": None}, name="cli") as pool:
            return await work(pool)
    return asyncio.run(go())


def purge_test_users(settings: Settings, dsns: db.Dsns) -> tuple[int, int]:
    """Erase every test user (profiles.is_test) and their stored files: (users, objects removed)."""
    from samia.privacy.jobs import drain_deletions, system

    storage: Storage = make_storage(settings)

    async def work(pool: AsyncConnectionPool) -> tuple[int, int]:
        users = int((await system(pool, "purge_test_users", "select app.purge_test_users()"))[0][0])
        return users, await drain_deletions(pool, storage)
    return _on_pool(dsns, work)


def archive_now(settings: Settings, dsns: db.Dsns) -> dict[str, Any]:
    from samia.privacy.archive import archive

    storage = make_storage(settings)
    return _on_pool(dsns, lambda pool: archive(pool, storage))

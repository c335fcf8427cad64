"""The layout's own rules, read from the SQL with PostgreSQL's parser (pglast):

* each function, trigger, policy and view is created in exactly one file, a schema file;
* migrations hold tables, columns, constraints, indexes and data — no rule at all;
* a released migration never changes (released.sha256)."""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from importlib import resources
from pathlib import Path

from pglast import parse_sql
from pglast.ast import (
    AlterFunctionStmt,
    CreateFunctionStmt,
    CreatePolicyStmt,
    CreateTrigStmt,
    DoStmt,
    GrantStmt,
    Node,
    ViewStmt,
)

SCHEMA = Path(str(resources.files("samia.schema")))
MIGRATIONS = Path(str(resources.files("samia.migrations")))


def _name(parts: tuple[Node, ...]) -> str:
    return ".".join(p.sval for p in parts)  # type: ignore[attr-defined]


def definitions(sql: str) -> list[str]:
    """The rules a SQL text creates: 'function app.f(int8,text)', 'policy t.p', 'trigger t.x', 'view v'."""
    out = []
    for raw in parse_sql(sql):
        stmt = raw.stmt
        if isinstance(stmt, CreateFunctionStmt):
            args = [_name(p.argType.names).removeprefix("pg_catalog.") for p in stmt.parameters or ()
                    if p.mode not in ("FUNC_PARAM_OUT", "FUNC_PARAM_TABLE")]
            out.append(f"function {_name(stmt.funcname)}({','.join(args)})")
        elif isinstance(stmt, CreatePolicyStmt):
            out.append(f"policy {stmt.table.relname}.{stmt.policy_name}")
        elif isinstance(stmt, CreateTrigStmt):
            out.append(f"trigger {stmt.relation.relname}.{stmt.trigname}")
        elif isinstance(stmt, ViewStmt):
            out.append(f"view {stmt.view.relname}")
    return out


def one_definition_findings(*folders: Path) -> list[str]:
    where: dict[str, list[str]] = defaultdict(list)
    for folder in folders:
        for f in sorted(folder.glob("*.sql")):
            for d in definitions(f.read_text()):
                where[d].append(f"{folder.name}/{f.name}")
    return [f"{d} is created in {', '.join(files)}" for d, files in sorted(where.items()) if len(files) > 1]


def rules_in_migrations(folder: Path) -> list[str]:
    """Anything but tables, columns, constraints, indexes, data, roles and schemas."""
    found = []
    for f in sorted(folder.glob("*.sql")):
        for raw in parse_sql(f.read_text()):
            stmt = raw.stmt
            if isinstance(stmt, CreateFunctionStmt | CreatePolicyStmt | CreateTrigStmt | ViewStmt | GrantStmt
                          | AlterFunctionStmt):
                found.append(f"{f.name}: {type(stmt).__name__}")
            elif isinstance(stmt, DoStmt) and "create role" not in str(stmt.args).lower():
                found.append(f"{f.name}: a DO block that is not role creation")
    return found


def release_findings(folder: Path) -> list[str]:
    listed = [line.split() for line in (folder / "released.sha256").read_text().splitlines() if line.strip()]
    out = []
    for digest, name in listed:
        path = folder / name
        if not path.exists():
            out.append(f"{name} was released and is gone")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            out.append(f"{name} changed after its release: write a new migration instead")
    return out


def test_each_rule_is_created_in_exactly_one_file() -> None:
    assert definitions((SCHEMA / "02_audit.sql").read_text()), "the parser found nothing: the check checks nothing"
    assert one_definition_findings(SCHEMA, MIGRATIONS) == []


def test_a_rule_created_twice_is_found(tmp_path: Path) -> None:
    copy = shutil.copytree(SCHEMA, tmp_path / "schema", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (copy / "99_copy.sql").write_text("-- the old one, kept 'just in case'\n"
                                      "create or replace function app.touch_updated_at() returns trigger\n"
                                      "language plpgsql as $$ begin return new; end $$;\n")
    assert one_definition_findings(copy, MIGRATIONS) == [
        "function app.touch_updated_at() is created in schema/00_helpers.sql, schema/99_copy.sql"]


def test_migrations_hold_no_rules(tmp_path: Path) -> None:
    assert rules_in_migrations(MIGRATIONS) == []
    copy = shutil.copytree(MIGRATIONS, tmp_path / "migrations", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (copy / "002_sneaky.sql").write_text("alter table public.orders add column note text;\n"
                                         "create policy orders_note on public.orders for select using (true);\n")
    assert rules_in_migrations(copy) == ["002_sneaky.sql: CreatePolicyStmt"]


def test_released_migrations_never_change(tmp_path: Path) -> None:
    assert release_findings(MIGRATIONS) == []
    copy = shutil.copytree(MIGRATIONS, tmp_path / "migrations", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    baseline = copy / "001_baseline.sql"
    baseline.write_text(baseline.read_text().replace("label text not null", "label text not null default ''", 1))
    assert release_findings(copy) == ["001_baseline.sql changed after its release: write a new migration instead"]

"""Compare two databases' schemas and seed rows: a normalised `pg_dump --schema-only` (tables,
columns, constraints, indexes, functions with their bodies, triggers, views, policies, grants,
owners) plus the rows of the seed tables, which a schema diff cannot see.

Each object of the dump is one block; blocks are compared as a set, with the grants inside a
block sorted (an ACL lists grantees in the order they were granted, which an upgrade changes
without changing what anyone may do)."""

from __future__ import annotations

import json
import re
import subprocess

import psycopg

from samia.db.cluster import pg_bin

# Rows shipped by migrations; timestamps of when they were inserted are not part of them.
SEED_TABLES = ("roles", "countries", "services", "rate_limits", "feature_flags", "provider_toggles",
               "payment_methods", "payment_method_countries", "decks", "deck_cards", "tarot_spreads",
               "moderation_reasons", "sweep_rules", "retention_windows", "emergency_policy", "safety_rules",
               "safety_settings", "incident_policy", "app.order_transitions", "app.deferrable_tasks")
VOLATILE = ("created_at", "updated_at")


def schema_blocks(dsn: str, *, schemas: tuple[str, ...] = (), column_order: bool = True) -> list[str]:
    args = [pg_bin("pg_dump"), "--schema-only", "--exclude-table=public._migrations", f"--dbname={dsn}"]
    args += [f"--schema={s}" for s in schemas]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    blocks, cur = [], []
    for line in [*out.splitlines(), ""]:
        if not line.strip() or line.startswith(("--", "\\", "SET ", "SELECT pg_catalog.set_config")):
            if cur:
                blocks.append(cur)
            cur = []
            continue
        cur.append(line)
    normal = []
    for b in blocks:
        if b[0].startswith(("GRANT", "REVOKE")):
            b = sorted(b)
        elif not column_order and b[0].startswith("CREATE TABLE"):
            b = [b[0], *sorted(line.rstrip(",") for line in b[1:-1]), b[-1]]
        normal.append("\n".join(b))
    return sorted(normal)


def seed_rows(dsn: str) -> dict[str, list[str]]:
    with psycopg.connect(dsn) as conn:
        out = {}
        for table in SEED_TABLES:
            qualified = table if "." in table else f"public.{table}"
            rows = conn.execute(psycopg.sql.SQL("select to_jsonb(t) from {} t").format(
                psycopg.sql.Identifier(*qualified.split(".")))).fetchall()
            out[table] = sorted(json.dumps({k: v for k, v in r[0].items() if k not in VOLATILE}, sort_keys=True)
                                for r in rows)
        return out


def differences(a_dsn: str, b_dsn: str, *, schemas: tuple[str, ...] = (), column_order: bool = True,
                seeds: bool = True) -> list[str]:
    """Human-readable differences between two databases; empty when they are the same."""
    a = schema_blocks(a_dsn, schemas=schemas, column_order=column_order)
    b = schema_blocks(b_dsn, schemas=schemas, column_order=column_order)
    sa, sb = set(a), set(b)
    out = [f"only in the first:\n{x}" for x in a if x not in sb]
    out += [f"only in the second:\n{x}" for x in b if x not in sa]
    if seeds:
        ra, rb = seed_rows(a_dsn), seed_rows(b_dsn)
        out += [f"seed rows of {t} differ" for t in SEED_TABLES if ra[t] != rb[t]]
    return out


def names_in(diff: list[str]) -> set[str]:
    """The object names mentioned in a difference list (for asserting what drifted)."""
    return {m for d in diff for m in re.findall(r"\b[a-z_][a-z0-9_]*\b", d)}

"""`samia audit verify`: the hash chain, then the chain against every head recorded outside it.

The chain walk (app.audit_verify) finds edited, swapped, forged or deleted rows in the middle;
it cannot see rows cut off the end. So every attested head is checked too, from three sources
of which the database owner controls only the first:

* the attestation rows (audit_attestations);
* the signed exports kept in private storage, each with its signed anchor beside it: every row
  hash up to the head, so the first position that differs is named even after the chain was
  cut and re-sealed;
* the anchor store outside the database (samia.audit.anchor), written after each attestation.

Each must still find its head in the chain at its position with its hash. Sealing continues
the chain, so it is skipped when the chain is already shorter than what was attested.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from samia.audit.anchor import Anchor, make_anchors
from samia.audit.service import ANCHOR_SUFFIX, ARCHIVED_EXPORTS, EXPORTS
from samia.audit.trail import public_key_b64
from samia.config import Settings
from samia.providers.storage import make_storage


@dataclass(frozen=True)
class Claim:
    """A head something outside the chain says it had; `rows` every row hash up to it."""
    source: str
    head_pos: int
    head_hash: str
    rows: tuple[str, ...] | None = None


@dataclass
class Evidence:
    claims: list[Claim] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exports: int = 0
    anchors: int = 0
    anchored_ids: set[int] = field(default_factory=set)
    where: str = ""


def _identity(conn: psycopg.Connection) -> str:
    row = conn.execute("select current_database() || ':' || d.oid from pg_database d "
                       "where d.datname = current_database()").fetchone()
    return str(row[0]) if row else "unknown"


def _ours(anchor: Anchor, database: str, trusted: str, what: str, ev: Evidence) -> bool:
    """Whether an anchor speaks for this database's chain; a forged one is a problem."""
    if anchor.database != database:
        return False
    if anchor.public_key != trusted:
        ev.notes.append(f"{what} is signed by another key (rotated?): not used")
        return False
    if not anchor.valid(trusted):
        ev.problems.append(f"{what} does not match its signature: the anchor was altered")
        return False
    return True


async def _outside(settings: Settings, database: str, ev: Evidence) -> None:
    trusted = public_key_b64(settings)
    storage = make_storage(settings)
    keys = [*await storage.list(EXPORTS), *await storage.list(ARCHIVED_EXPORTS)]
    for key in (k for k in keys if k.endswith(ANCHOR_SUFFIX)):
        export_key = key.removesuffix(ANCHOR_SUFFIX)
        anchor = Anchor.from_json(await storage.get(key))
        if not _ours(anchor, database, trusted, f"the anchor of export {export_key}", ev):
            continue
        ev.exports += 1
        if export_key not in keys:
            ev.claims.append(Claim(f"anchor {key}", anchor.head_pos, anchor.head_hash))
            ev.notes.append(f"export {export_key} is gone from storage; its anchor is used")
            continue
        data = await storage.get(export_key)
        if hashlib.sha256(data).hexdigest() != anchor.export_sha256:
            ev.problems.append(f"export {export_key} differs from the export its anchor signed")
            ev.claims.append(Claim(f"anchor {key}", anchor.head_pos, anchor.head_hash))
            continue
        rows = tuple(json.loads(line)["row_hash"] for line in data.decode().splitlines() if line)
        ev.claims.append(Claim(f"signed export {export_key}", anchor.head_pos, anchor.head_hash, rows))
    store = make_anchors(settings)
    ev.where = store.where
    for anchor in await store.read():
        if _ours(anchor, database, trusted, f"anchor of attestation {anchor.attestation_id} in {store.where}", ev):
            ev.anchors += 1
            ev.anchored_ids.add(anchor.attestation_id)
            ev.claims.append(Claim(f"{store.where} (attestation {anchor.attestation_id})",
                                   anchor.head_pos, anchor.head_hash))


def _gather(conn: psycopg.Connection, settings: Settings | None) -> tuple[Evidence, list[int]]:
    ev = Evidence()
    attested = conn.execute("select id, head_pos, head_hash from audit_attestations where head_pos > 0 "
                            "order by id").fetchall()
    ev.claims += [Claim(f"attestation {i}", pos, h) for i, pos, h in attested]
    if settings is not None:
        asyncio.run(_outside(settings, _identity(conn), ev))
    return ev, [i for i, _, _ in attested]


def _check(conn: psycopg.Connection, claims: list[Claim]) -> list[str]:
    """Each attested head (and, for exports, each row up to it) against the sealed chain."""
    if not claims:
        return []
    top = max(c.head_pos for c in claims)
    chain: dict[int, str] = dict(conn.execute(
        "select chain_pos, row_hash from audit_log where chain_pos between 1 and %s", (top,)).fetchall())
    end = conn.execute("select coalesce(max(chain_pos), 0) from audit_log").fetchone()[0]  # type: ignore[index]
    grouped: dict[tuple[int, str], list[Claim]] = defaultdict(list)
    for c in claims:
        grouped[(c.head_pos, c.head_hash)].append(c)
    problems = []
    for (pos, want), group in sorted(grouped.items()):
        sources = ", ".join(c.source for c in group)
        rows = next((c.rows for c in group if c.rows), None)
        differ = next((p for p, h in enumerate(rows or (), start=1) if p in chain and chain[p] != h), None)
        if differ is not None:
            problems.append(f"rows from chain_pos {differ} to {pos} differ from what was attested ({sources}): "
                            "the chain was cut and re-sealed or rewritten from there")
        elif pos not in chain:
            problems.append(f"rows at chain_pos {end + 1}-{pos} are missing: the chain ends at chain_pos {end} "
                            f"but chain_pos {pos} was attested ({sources})")
        elif chain[pos] != want:
            problems.append(f"chain_pos {pos} carries hash {chain[pos][:16]}…, attested {want[:16]}… ({sources}): "
                            "the chain was rewritten at or before it")
    return problems


def verify_audit(owner_dsn: str, settings: Settings | None = None) -> tuple[bool, str]:
    """Seal what is committed (unless the chain is shorter than attested), walk the chain, then
    check it against every attestation and, given settings, the signed exports in storage and
    the anchor store. (ok, message naming the first broken row or the missing positions)."""
    with psycopg.connect(owner_dsn) as conn:
        ev, attestations = _gather(conn, settings)
        end = conn.execute("select coalesce(max(chain_pos), 0) from audit_log").fetchone()[0]  # type: ignore[index]
        conn.commit()
        if end >= max((c.head_pos for c in ev.claims), default=0):
            try:
                conn.execute("select app.audit_seal()")
                conn.commit()
            except psycopg.Error as e:
                conn.rollback()
                ev.problems.append(f"sealing refused: {e.diag.message_primary}")
        else:
            ev.notes.append("not sealed: the chain is shorter than what was attested")
        bad = conn.execute("select id, chain_pos, problem from app.audit_verify()").fetchone()
        problems = _check(conn, ev.claims) + ev.problems
        count, head = conn.execute("select count(*), (select row_hash from audit_log where chain_pos is not null "
                                   "order by chain_pos desc limit 1) from audit_log").fetchone()  # type: ignore[misc]
    if settings is not None:
        unanchored = [i for i in attestations if i not in ev.anchored_ids]
        if unanchored:
            ev.notes.append(f"attestations without an anchor in {ev.where}: {', '.join(map(str, unanchored))}")
    notes = "".join(f"\n  note: {n}" for n in ev.notes)
    if bad:
        return False, (f"audit chain BROKEN at row id={bad[0]} (chain_pos {bad[1]}): {bad[2]}"
                       + "".join(f"\n  also: {p}" for p in problems) + notes)
    if problems:
        return False, "audit chain BROKEN: " + "\n  ".join(problems) + notes
    outside = f", {ev.exports} signed exports, {ev.anchors} anchors ({ev.where})" if settings is not None else ""
    return True, (f"audit chain ok: {count} rows, head {head or '-'}; "
                  f"{len(attestations)} attestations{outside} agree" + notes)

"""Audit anchoring (a defect found in black-box testing): cutting the newest rows off the audit
log after an attestation used to go unnoticed, and the sealer carried on from the cut. Now each
attested head is checked from the attestation rows, the signed exports in storage and the
append-only anchor file outside the database, so the cut is named even when the attestation
rows, and then the exports too, are deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from samia.audit.anchor import Anchor
from samia.audit.verify import verify_audit

from ..conftest import TEST_SECRET
from ..helpers import Api, ok


def tamper(api: Api, sql: str, params: tuple[object, ...]) -> None:
    """What the database owner can do: switch the append-only guard off and rewrite."""
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("alter table audit_log disable trigger user")
        conn.execute(sql, params)  # type: ignore[arg-type]
        conn.execute("alter table audit_log enable trigger user")


def cli_verify(api: Api, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": api.owner_dsn, "SECRET_KEY": TEST_SECRET, "SAMIA_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "samia.cli", "audit", "verify"], env=env, capture_output=True,
                          text=True, check=False)


def test_a_tail_cut_after_an_attestation_is_named_by_every_outside_record(client, api, settings,
                                                                           data_dir: Path) -> None:
    admin = api.user("admin")
    for i in range(6):
        api.sql_as(admin.id, "select app.audit('anchor.test', 'thing', %s)", (str(i),))
    att = ok(client.post("/admin/audit/attest", headers=admin.h), 201)
    head = att["head_pos"]
    # the anchor went outside the database, signed, and beside the export in storage
    (line,) = (data_dir / "audit-anchors.jsonl").read_text().splitlines()
    anchor = Anchor.from_json(line)
    assert (anchor.head_pos, anchor.head_hash, anchor.attestation_id) == (head, att["head_hash"], att["id"])
    (export_key,) = api.sql("select storage_key from audit_attestations where id = %s", (att["id"],))[0]
    assert (data_dir / "storage" / (export_key + ".anchor.json")).exists()
    good, message = verify_audit(api.owner_dsn, settings)
    assert good and "1 attestations, 1 signed exports, 1 anchors" in message, message

    # 1. the owner cuts the last three sealed rows
    tamper(api, "delete from audit_log where chain_pos > %s", (head - 3,))
    good, message = verify_audit(api.owner_dsn, settings)
    assert not good and f"rows at chain_pos {head - 2}-{head} are missing" in message, message
    assert f"(attestation {att['id']}, signed export" in message and "audit-anchors.jsonl" in message
    r = cli_verify(api, data_dir)
    assert r.returncode == 1 and f"chain_pos {head - 2}-{head} are missing" in r.stdout, r.stdout + r.stderr
    # and the sealer no longer carries on from the cut
    api.sql_as(admin.id, "select app.audit('anchor.after_cut', 'thing', '1')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
        api.sql("select app.audit_seal()")
    assert e.value.diag.message_hint == "audit_chain_cut"

    # 2. ... and deletes the attestation rows too: the export and the anchor still name the cut
    api.sql("delete from audit_attestations")
    good, message = verify_audit(api.owner_dsn, settings)
    assert not good and f"rows at chain_pos {head - 2}-{head} are missing" in message, message
    assert f"(attestation {att['id']}, " not in message and "(signed export" in message
    # verification did not seal over the cut; the seal job would (it cannot see outside): even
    # then the rewritten positions are named from the signed export
    api.sql("select app.audit_seal()")
    assert api.sql("select max(chain_pos) from audit_log")[0][0] >= head - 2
    good, message = verify_audit(api.owner_dsn, settings)
    assert not good and f"rows from chain_pos {head - 2} to {head} differ" in message, message

    # 3. ... and deletes the exports from storage: the anchor file outside still names it
    for p in (data_dir / "storage" / "audit").rglob("*"):
        if p.is_file():
            p.unlink()
    good, message = verify_audit(api.owner_dsn, settings)
    assert not good and f"chain_pos {head}" in message and "audit-anchors.jsonl" in message, message
    assert "signed export" not in message


def test_a_forged_anchor_line_is_refused_and_another_databases_anchors_are_ignored(api, settings,
                                                                                 data_dir: Path) -> None:
    path = data_dir / "audit-anchors.jsonl"
    (first, *_) = path.read_text().splitlines()
    real = json.loads(first)
    forged = {**real, "head_hash": "f" * 64}          # changed after signing
    elsewhere = {**real, "database": "another:1"}      # some other deployment's (its signature fails too)
    with open(path, "a") as f:
        f.write(json.dumps(forged) + "\n" + json.dumps(elsewhere) + "\n")
    good, message = verify_audit(api.owner_dsn, settings)
    assert not good and "does not match its signature" in message, message
    assert "another:1" not in message

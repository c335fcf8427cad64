"""The audit trail for admins: filtered, keyset-paginated reads; signed attestations that
verify offline and fail when tampered with; the monthly job."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from samia.audit.trail import public_key_b64, signing_key, verify_export

from ..conftest import make_settings
from ..helpers import problem, run_jobs


@pytest.fixture(scope="module")
def settings(tmp_path_factory):  # type: ignore[no-untyped-def]
    return make_settings(SAMIA_DATA_DIR=str(tmp_path_factory.mktemp("audit-data")))


@pytest.fixture(scope="module")
def admin(api):  # type: ignore[no-untyped-def]
    a = api.user("admin")
    for i in range(7):
        api.sql_as(a.id, "select app.audit('trail.test', 'thing', %s, jsonb_build_object('n', %s))", (str(i), i))
    return a


def test_admins_read_the_log_filtered_and_paginated(client, api, admin) -> None:
    problem(client.get("/admin/audit", headers=api.user("monitor").h), 403)
    problem(client.get("/admin/audit", headers=api.user("client").h), 403)
    page1 = client.get("/admin/audit?event=trail.test&limit=4", headers=admin.h).json()
    assert [r["entity_id"] for r in page1] == ["6", "5", "4", "3"]
    page2 = client.get(f"/admin/audit?event=trail.test&limit=4&before={page1[-1]['id']}", headers=admin.h).json()
    assert [r["entity_id"] for r in page2] == ["2", "1", "0"]
    assert {r["actor"] for r in page1 + page2} == {admin.id} and {r["actor_role"] for r in page1} == {"admin"}
    pref = client.get("/admin/audit?event=trail.*&entity_id=5", headers=admin.h).json()
    assert [(r["event"], r["meta"]) for r in pref] == [("trail.test", {"n": 5})]
    mine = client.get(f"/admin/audit?actor={admin.id}&limit=200", headers=admin.h).json()
    assert all(r["actor"] == admin.id for r in mine) and len(mine) >= 7
    problem(client.get("/admin/audit?event=DROP TABLE", headers=admin.h), 422)


def test_attestation_verifies_offline_and_tampering_fails(client, api, admin, tmp_path: Path) -> None:
    r = client.post("/admin/audit/attest", headers=admin.h)
    assert r.status_code == 201, r.text
    att = r.json()
    exp = client.get(att["export_url"], headers=admin.h)
    assert exp.status_code == 200 and exp.headers["x-signature-ed25519"] == att["signature"]
    lines = exp.content.decode().splitlines()
    assert len(lines) == att["rows"] == att["head_pos"] and json.loads(lines[-1])["row_hash"] == att["head_hash"]
    assert any(json.loads(x)["record"]["event"] == "trail.test" for x in lines)
    files = {"export": tmp_path / "audit.jsonl", "sig": tmp_path / "audit.sig", "pub": tmp_path / "audit.pub"}
    files["export"].write_bytes(exp.content)
    files["sig"].write_text(att["signature"])
    files["pub"].write_text(att["public_key"])

    def cli() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SECRET_KEY": "x" * 40}
        return subprocess.run([sys.executable, "-m", "samia.cli", "audit", "verify", "--export", str(files["export"]),
                               "--sig", str(files["sig"]), "--pubkey", str(files["pub"])],
                              env=env, capture_output=True, text=True, check=False)

    good = cli()
    assert good.returncode == 0 and f"{att['rows']} rows" in good.stdout, good.stdout + good.stderr
    # one changed byte: the signature no longer matches
    files["export"].write_bytes(exp.content.replace(b'"n":3', b'"n":4', 1))
    bad = cli()
    assert bad.returncode == 1 and "signature INVALID" in bad.stdout
    # re-signed by someone else: not our key
    other = signing_key(make_settings(SECRET_KEY="another-secret-key-" + "z" * 30))
    files["export"].write_bytes(exp.content)
    files["sig"].write_text(base64.b64encode(other.sign(exp.content)).decode())
    assert cli().returncode == 1
    # even with the signing key, a rewritten row is named by the chain check
    target = next(i for i, x in enumerate(lines) if json.loads(x)["record"]["event"] == "trail.test")
    row = json.loads(lines[target])
    row["record"]["meta"] = {"n": 99}
    row["canonical"] = row["canonical"].replace('{"n": ', '{"n": 9', 1)
    forged = "\n".join([*lines[:target], json.dumps(row), *lines[target + 1:]]) + "\n"
    key = signing_key(api.settings)
    ok, message = verify_export(forged.encode(), base64.b64encode(key.sign(forged.encode())).decode(),
                                public_key_b64(api.settings))
    assert not ok and f"chain_pos {row['chain_pos']}" in message and "row_hash" in message
    # and a dropped row breaks the positions
    dropped = "\n".join(lines[:target] + lines[target + 1:]) + "\n"
    ok, message = verify_export(dropped.encode(), base64.b64encode(key.sign(dropped.encode())).decode(),
                                public_key_b64(api.settings))
    assert not ok and "expected" in message
    assert api.audit_rows("audit.attested", str(att["id"]))


def test_the_monthly_job_attests_too(api, settings, dsns) -> None:
    before = api.sql("select count(*) from audit_attestations")[0][0]
    run_jobs(settings, dsns, "audit_attest")
    rows = api.sql("select head_pos, created_by, storage_key from audit_attestations order by id")
    assert len(rows) == before + 1 and rows[-1][1] is None
    assert (Path(settings.data_dir) / "storage" / rows[-1][2]).read_bytes().count(b"\n") == rows[-1][0]

"""Anchors in S3-compatible storage under Object Lock (COMPLIANCE): against moto's server on
loopback, an anchor cannot be deleted or replaced before its retention ends, and verification
reads every version, so a tail cut is named from the bucket alone."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError

from samia.audit.anchor import S3_PREFIX, Anchor
from samia.audit.verify import verify_audit
from samia.config import Settings

from ..conftest import make_settings
from ..helpers import ok

BUCKET = "samia-audit-anchors"


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing-key")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(
            Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        yield url
        server.stop()


@pytest.fixture(scope="module")
def settings(s3_url: str, data_dir: Path) -> Settings:
    return make_settings(SAMIA_DATA_DIR=str(data_dir), AUDIT_ANCHOR="s3", AUDIT_ANCHOR_BUCKET=BUCKET,
                         S3_ENDPOINT_URL=s3_url, AUDIT_ANCHOR_RETENTION_DAYS=30)


def test_an_object_locked_anchor_outlives_every_copy_the_owner_can_delete(client, api, settings, s3_url,
                                                                          data_dir: Path) -> None:
    admin = api.user("admin")
    for i in range(4):
        api.sql_as(admin.id, "select app.audit('anchor.s3', 'thing', %s)", (str(i),))
    att = ok(client.post("/admin/audit/attest", headers=admin.h), 201)
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    (version,) = s3.list_object_versions(Bucket=BUCKET, Prefix=S3_PREFIX + "/")["Versions"]
    head = s3.head_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    anchor = Anchor.from_json(s3.get_object(Bucket=BUCKET, Key=version["Key"])["Body"].read())
    assert (anchor.head_pos, anchor.head_hash) == (att["head_pos"], att["head_hash"])
    assert not (data_dir / "audit-anchors.jsonl").exists()  # S3 replaces the file
    # the lock holds: the version cannot be deleted; a plain delete only hides it behind a marker
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_object(Bucket=BUCKET, Key=version["Key"])
    s3.put_object(Bucket=BUCKET, Key=version["Key"], Body=b"{}")  # nor does overwriting replace it
    good, message = verify_audit(api.owner_dsn, settings)
    assert good and "1 anchors (s3://" in message, message
    # the owner cuts the tail, deletes the attestation rows and the exports in storage
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("alter table audit_log disable trigger user")
        conn.execute("delete from audit_log where chain_pos > %s", (att["head_pos"] - 2,))
        conn.execute("alter table audit_log enable trigger user")
        conn.execute("delete from audit_attestations")
    shutil.rmtree(data_dir / "storage" / "audit")
    good, message = verify_audit(api.owner_dsn, settings)
    head = att["head_pos"]
    assert not good and f"rows at chain_pos {head - 1}-{head} are missing" in message, message
    assert f"s3://{BUCKET}" in message

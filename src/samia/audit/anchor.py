"""Anchors: each attestation's head, signed, kept where the database owner cannot rewrite it.

The audit chain lives in the database, so whoever owns the database can cut its newest rows and
delete the attestations that would show it. An anchor is a small signed record of an attested
head (position and hash, the chain's first hash, the export's sha256) written to two places
outside the database:

* next to the signed export in private storage (`<export key>.anchor.json`), and
* an append-only anchor store: a file of JSON lines opened only for appending (the embedded
  default, `AUDIT_ANCHOR_FILE`), or objects in an S3 bucket with Object Lock in COMPLIANCE mode
  (`AUDIT_ANCHOR=s3`), which no one can delete or overwrite before their retention ends; the
  bucket is read version by version, so a delete marker hides nothing.

`samia audit verify` reads them all back (samia.audit.verify). Anchors of other chains (another
database sharing the store) are told apart by the chain's first hash and the database's name.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
from anyio import to_thread
from cryptography.exceptions import InvalidSignature

from samia.audit.trail import load_public_key, public_key_b64, signing_key
from samia.config import Settings

log = structlog.get_logger("samia.audit.anchor")

S3_PREFIX = "audit-anchors"


@dataclass(frozen=True)
class Anchor:
    attestation_id: int
    database: str          # current_database():oid — which database's chain this is
    chain_root: str        # row_hash at chain_pos 1: which chain this is
    head_pos: int
    head_hash: str
    export_key: str
    export_sha256: str
    created_at: str
    public_key: str = ""
    signature: str = ""

    def payload(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, settings: Settings) -> Anchor:
        unsigned = Anchor(**{**asdict(self), "public_key": public_key_b64(settings), "signature": ""})
        sig = base64.b64encode(signing_key(settings).sign(unsigned.payload())).decode()
        return Anchor(**{**asdict(unsigned), "signature": sig})

    def valid(self, trusted_key: str) -> bool:
        """Signed by the trusted (this deployment's) key over exactly these fields."""
        if self.public_key != trusted_key:
            return False
        try:
            load_public_key(self.public_key).verify(base64.b64decode(self.signature), self.payload())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Anchor:
        data: dict[str, Any] = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def new_anchor(*, attestation_id: int, database: str, chain_root: str, head_pos: int, head_hash: str,
               export_key: str, export_sha256: str, settings: Settings) -> Anchor:
    return Anchor(attestation_id=attestation_id, database=database, chain_root=chain_root, head_pos=head_pos,
                  head_hash=head_hash, export_key=export_key, export_sha256=export_sha256,
                  created_at=dt.datetime.now(dt.UTC).isoformat()).signed(settings)


class AnchorStore(Protocol):
    where: str

    async def append(self, anchor: Anchor) -> None: ...

    async def read(self) -> list[Anchor]: ...


class FileAnchors:
    """JSON lines, opened only for appending and synced. Point AUDIT_ANCHOR_FILE at a place the
    database server's OS user cannot write (or make it append-only: `chattr +a`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file {path}"

    async def append(self, anchor: Anchor) -> None:
        line = (anchor.to_json() + "\n").encode()

        def write() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        await to_thread.run_sync(write)

    async def read(self) -> list[Anchor]:
        def lines() -> list[str]:
            try:
                return self.path.read_text().splitlines()
            except FileNotFoundError:
                return []
        out = []
        for line in await to_thread.run_sync(lines):
            try:
                out.append(Anchor.from_json(line))
            except (ValueError, KeyError, TypeError):
                log.warning("anchor_line_unreadable")
        return out


class S3Anchors:
    """One object per attestation under an Object Lock retention (COMPLIANCE): the bucket must be
    created with Object Lock enabled. Read back version by version."""

    def __init__(self, settings: Settings) -> None:
        import boto3

        if not settings.audit_anchor_bucket:
            raise RuntimeError("AUDIT_ANCHOR=s3 needs AUDIT_ANCHOR_BUCKET (a bucket with Object Lock enabled)")
        self.bucket = settings.audit_anchor_bucket
        self.days = settings.audit_anchor_retention_days
        self.client: Any = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        self.where = f"s3://{self.bucket}/{S3_PREFIX}/ (Object Lock, {self.days} days)"

    async def append(self, anchor: Anchor) -> None:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.days)
        key = f"{S3_PREFIX}/{anchor.head_pos:012d}-{anchor.attestation_id}-{anchor.export_sha256[:16]}.json"
        await to_thread.run_sync(lambda: self.client.put_object(
            Bucket=self.bucket, Key=key, Body=anchor.to_json().encode(), ContentType="application/json",
            ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until, ChecksumAlgorithm="SHA256"))

    async def read(self) -> list[Anchor]:
        def versions() -> list[bytes]:
            out = []
            pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket,
                                                                                 Prefix=S3_PREFIX + "/")
            for page in pages:
                for v in page.get("Versions", []):
                    obj = self.client.get_object(Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"])
                    out.append(obj["Body"].read())
            return out
        anchors = []
        for body in await to_thread.run_sync(versions):
            try:
                anchors.append(Anchor.from_json(body))
            except (ValueError, KeyError, TypeError):
                log.warning("anchor_object_unreadable")
        return anchors


def make_anchors(settings: Settings) -> AnchorStore:
    if settings.audit_anchor == "s3":
        return S3Anchors(settings)
    return FileAnchors(settings.anchor_file)

"""Private object storage behind one small interface: a local directory (default) or any
S3-compatible service through boto3. Keys are opaque, never derived from what the
uploader sent; nothing here is ever public, clients get bytes only through signed URLs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from anyio import to_thread

from samia.config import Settings
from samia.core.ports import Storage
from samia.core.problems import AppError


def unavailable(exc: BaseException) -> AppError:
    """A storage failure is the service's outage, not the caller's fault: 503, retry later."""
    return AppError(503, "storage_unavailable", "file storage is unavailable; try again shortly",
                    headers={"Retry-After": "30"}, extra={"provider": "storage"})


def new_key(prefix: str, name: str | None = None) -> str:
    """An opaque key under `prefix`; `name` only for objects we name ourselves (an export's anchor)."""
    return f"{prefix}/{name or uuid.uuid4().hex}"


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    async def put(self, data: bytes, *, prefix: str, content_type: str, name: str | None = None) -> str:
        key = new_key(prefix, name)

        def write() -> None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".part")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.rename(path)
        try:
            await to_thread.run_sync(write)
        except OSError as exc:
            raise unavailable(exc) from exc
        return key

    async def delete(self, key: str) -> None:
        await to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))

    async def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)

        def walk() -> list[str]:
            if not base.is_dir():
                return []
            return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                          if p.is_file() and not p.name.endswith(".part"))
        return await to_thread.run_sync(walk)

    async def get(self, key: str) -> bytes:
        try:
            return await to_thread.run_sync(self._path(key).read_bytes)
        except OSError as exc:
            raise unavailable(exc) from exc


class S3Storage:
    """Supabase Storage (its S3 endpoint), AWS S3, MinIO … Credentials come from the
    environment the way boto3 reads them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."""
    name = "s3"

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        if not settings.s3_bucket:
            raise AppError(503, "provider_not_configured", "S3_BUCKET is not set", extra={"setting": "S3_BUCKET"})
        self.bucket = settings.s3_bucket
        self.client: Any = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30))

    async def put(self, data: bytes, *, prefix: str, content_type: str, name: str | None = None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = new_key(prefix, name)
        try:
            await to_thread.run_sync(lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type))
        except (BotoCoreError, ClientError) as exc:
            raise unavailable(exc) from exc
        return key

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = await to_thread.run_sync(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
            return await to_thread.run_sync(obj["Body"].read)
        except (BotoCoreError, ClientError) as exc:
            raise unavailable(exc) from exc

    async def delete(self, key: str) -> None:
        await to_thread.run_sync(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    async def list(self, prefix: str) -> list[str]:
        def keys() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + "/")
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        return await to_thread.run_sync(keys)


def make_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.data_dir / "storage")

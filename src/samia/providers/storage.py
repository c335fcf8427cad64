"""Private object storage. The local default keeps files under the data dir; keys are
opaque, never derived from what the uploader sent. (An S3-compatible adapter slots in here.)"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from anyio import to_thread

from samia.core.problems import invalid

# content sniffed from the first bytes, never taken from the request's header
SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image", "image/png"),
    (b"\xff\xd8\xff", 0, "image", "image/jpeg"),
    (b"%PDF-", 0, "pdf", "application/pdf"),
    (b"WEBP", 8, "image", "image/webp"),
)


@dataclass(frozen=True)
class Stored:
    key: str
    kind: str
    content_type: str
    bytes: int
    sha256: str


def sniff(data: bytes) -> tuple[str, str] | None:
    for magic, offset, kind, ctype in SIGNATURES:
        if data[offset:offset + len(magic)] == magic and (offset == 0 or data[:4] == b"RIFF"):
            return kind, ctype
    return None


class Storage(Protocol):
    async def put(self, data: bytes, *, kinds: set[str], prefix: str) -> Stored: ...

    async def delete(self, key: str) -> None: ...

    async def get(self, key: str) -> bytes: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    async def put(self, data: bytes, *, kinds: set[str], prefix: str) -> Stored:
        found = sniff(data)
        if found is None or found[0] not in kinds:
            raise invalid(["body"], "unsupported content", code="unsupported_media",
                          detail=f"expected {' or '.join(sorted(kinds))}; the content is not")
        key = f"{prefix}/{uuid.uuid4().hex}"

        def write() -> None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".part")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.rename(path)
        await to_thread.run_sync(write)
        return Stored(key, found[0], found[1], len(data), hashlib.sha256(data).hexdigest())

    async def delete(self, key: str) -> None:
        await to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))

    async def get(self, key: str) -> bytes:
        return await to_thread.run_sync(self._path(key).read_bytes)

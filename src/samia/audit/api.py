"""The audit trail for admins: read it (filtered, keyset-paginated) and attest it (a
signed export of the sealed chain, kept in private storage)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from samia.audit import service
from samia.audit.service import record_attestation
from samia.core.access import ADMINS, Ctx, allow
from samia.core.models import Id

router = APIRouter(tags=["audit"])

READ = service.READ_PROBE


class AuditRow(BaseModel):
    id: int
    chain_pos: int | None
    created_at: dt.datetime
    actor: str | None
    actor_role: str | None
    event: str
    entity: str | None
    entity_id: str | None
    meta: dict[str, Any]
    request_id: str | None
    row_hash: str | None


class Attestation(BaseModel):
    id: int
    head_pos: int
    head_hash: str
    rows: int
    export_sha256: str
    signature: str
    public_key: str
    created_at: dt.datetime
    export_url: str


@router.get("/admin/audit", response_model=list[AuditRow])
async def audit_log(ctx: Ctx = allow(*ADMINS, probe=READ),
                    event: Annotated[str | None, Query(pattern=r"^[a-z0-9_.:-]{1,80}\*?$",
                                                       description="exact, or a prefix ending in *")] = None,
                    entity: Annotated[str | None, Query(max_length=40)] = None,
                    entity_id: Annotated[str | None, Query(max_length=80)] = None,
                    actor: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
                    since: dt.datetime | None = None, until: dt.datetime | None = None,
                    before: Annotated[int | None, Query(ge=1, le=2**62, description="keyset: ids below")] = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    """Newest first. Page with `before` = the last id you received."""
    return await service.audit_rows(ctx.conn, event=event, entity=entity, entity_id=entity_id, actor=actor,
                                    since=since, until=until, before=before, limit=limit)


@router.post("/admin/audit/attest", status_code=status.HTTP_201_CREATED, response_model=Attestation)
async def attest(ctx: Ctx = allow(*ADMINS, probe=service.ATTEST_PROBE)) -> dict[str, Any]:
    """Seal the chain and sign a snapshot of it: the export (JSON lines), its head, and an
    Ed25519 detached signature. Check it offline with `samia audit verify --export FILE
    --sig SIG --pubkey KEY`."""
    return await record_attestation(ctx.conn, ctx.platform.storage, ctx.platform.settings, ctx.on_rollback,
                                    ctx.after_commit)


@router.get("/admin/audit/attestations", response_model=list[Attestation])
async def attestations(ctx: Ctx = allow(*ADMINS, probe=READ)) -> list[dict[str, Any]]:
    return await service.attestations(ctx.conn)


@router.get("/admin/audit/attestations/{attestation_id}/export", response_class=Response,
            responses={200: {"content": {"application/x-ndjson": {}}, "description": "the signed export"}})
async def attestation_export(attestation_id: Id, ctx: Ctx = allow(*ADMINS, probe=READ)) -> Response:
    data, signature, public_key = await service.attestation_export(ctx.conn, ctx.platform.storage, attestation_id)
    return Response(data, media_type="application/x-ndjson",
                    headers={"X-Signature-Ed25519": signature, "X-Public-Key-Ed25519": public_key,
                             "Cache-Control": "private, no-store"})

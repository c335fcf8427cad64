"""The admin console's audit log browser (filters, keyset pages) and attestations (create a
signed export, download it, and how to verify it offline). The same functions as
/admin/audit and /admin/audit/attest…"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from samia.audit import service as audit
from samia.core.access import ADMINS, Ctx, allow
from samia.core.models import Id
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.session import pages

router = pages("web", "admin")
AUDIT = f"{CONSOLE}/audit"
Text = Annotated[str | None, Query(max_length=80)]


def _day(text: str | None, end: bool = False) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(text or "")
    except ValueError:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), dt.UTC)


def verify_steps(attestation: dict[str, Any]) -> tuple[str, str, str]:
    """The shell commands that check a downloaded export offline, then the live chain."""
    n = attestation["id"]
    return (f"echo '{attestation['signature']}' > attestation-{n}.sig\n"
            f"echo '{attestation['public_key']}' > attestation.pub",
            f"samia audit verify --export audit-attestation-{n}.jsonl --sig attestation-{n}.sig "
            "--pubkey attestation.pub",
            "samia audit verify")


@router.get(AUDIT, response_class=HTMLResponse)
async def audit_page(request: Request,
                     event: Annotated[str | None, Query(pattern=r"^([a-z0-9_.:-]{1,80}\*?)?$")] = None,
                     entity: Text = None, entity_id: Text = None,
                     actor: Annotated[str | None, Query(pattern=r"^([0-9a-f-]{36})?$")] = None,
                     since: Annotated[str | None, Query(max_length=10)] = None,
                     until: Annotated[str | None, Query(max_length=10)] = None,
                     before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                     ctx: Ctx = allow(*ADMINS, cookie=True, probe=audit.READ_PROBE)) -> Response:
    rows = await audit.audit_rows(ctx.conn, event=event or None, entity=entity or None, entity_id=entity_id or None,
                                  actor=actor or None, since=_day(since), until=_day(until, end=True),
                                  before=before, limit=50)
    form = {"event": event or "", "entity": entity or "", "entity_id": entity_id or "", "actor": actor or "",
            "since": since or "", "until": until or ""}
    return console(request, ctx, "audit.html", rows=rows, form=form, attestations=await audit.attestations(ctx.conn),
                   more=rows[-1]["id"] if len(rows) == 50 else None, verify_steps=verify_steps)


@router.post(f"{AUDIT}/attest", response_class=HTMLResponse)
async def attest(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=audit.ATTEST_PROBE)) -> Response:
    """Seal the chain and sign a snapshot of it (stored privately, anchored outside)."""
    row, refusal = await act(ctx, lambda: audit.record_attestation(
        ctx.conn, ctx.platform.storage, ctx.platform.settings, ctx.on_rollback, ctx.after_commit))
    if refusal or row is None:
        return console(request, ctx, "audit.html", rows=[], form={}, attestations=await audit.attestations(ctx.conn),
                       more=None, refusal=refusal, verify_steps=verify_steps)
    return done(f"{AUDIT}#attestations", "attested")


@router.get(f"{AUDIT}/attestations/{{attestation_id}}/export")
async def export(attestation_id: Id, ctx: Ctx = allow(*ADMINS, cookie=True, probe=audit.READ_PROBE)) -> Response:
    """The signed export as a download, with its signature and key in headers too."""
    data, signature, public_key = await audit.attestation_export(ctx.conn, ctx.platform.storage, attestation_id)
    return Response(data, media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="audit-attestation-{attestation_id}.jsonl"',
        "X-Signature-Ed25519": signature, "X-Public-Key-Ed25519": public_key, "Cache-Control": "private, no-store"})

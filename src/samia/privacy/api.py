"""Legal documents, disclosures, cookie consent and data-subject requests (seeds 000 M38, M43,
Phase 4.1 item 8). The rules are in schema/15_privacy.sql; the verbs in privacy/service.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, Probe, allow, client_ip
from samia.core.models import Id, Input
from samia.core.problems import AppError, lang_of
from samia.privacy import service

router = APIRouter(tags=["privacy"])

ADMINS = ("admin", "superadmin")
Doc = Literal["terms", "privacy"]
Lang = Annotated[Literal["en", "ar"] | None, Query(description="default: Accept-Language")]
DSR_PROBE = Probe("select 1 from data_requests where id = :data_request")


class LegalOut(BaseModel):
    doc: str
    version: int
    material: bool
    lang: str
    title: str
    body: str
    summary: str | None
    published_at: dt.datetime


class Disclosure(BaseModel):
    code: str
    country_code: str | None
    text: str


class Accepted(BaseModel):
    doc: str
    version: int
    accepted_at: dt.datetime


class Current(BaseModel):
    doc: str
    version: int


class LegalStatus(BaseModel):
    outstanding: list[str] = Field(description="documents to accept before ordering, booking or paying")
    accepted: list[Accepted]
    current: list[Current]


class AcceptIn(Input):
    version: Annotated[int, Field(ge=1, le=1_000_000)]


class PublishIn(Input):
    material: bool = Field(True, description="true: everyone must accept it again before ordering, booking or paying")
    body_en: Annotated[str, Field(min_length=20, max_length=100_000)]
    body_ar: Annotated[str, Field(min_length=20, max_length=100_000)]
    summary_en: Annotated[str, Field(max_length=2000)] | None = None
    summary_ar: Annotated[str, Field(max_length=2000)] | None = None


class VersionOut(BaseModel):
    id: int
    doc: str
    version: int
    material: bool
    published_at: dt.datetime


class ConsentIn(Input):
    visitor_id: uuid.UUID | None = Field(None, description="the banner's anonymous id (its cookie), before sign-in")
    necessary: Literal[True] = True
    analytics: bool
    marketing: bool


class ConsentOut(BaseModel):
    necessary: bool
    analytics: bool
    marketing: bool
    decided_at: dt.datetime | None
    visitor_id: uuid.UUID | None


class RequestIn(Input):
    kind: Literal["export", "delete"]
    note: Annotated[str, Field(max_length=2000)] | None = None


class RequestOut(BaseModel):
    id: int
    user_id: str
    kind: str
    status: str
    note: str | None
    created_at: dt.datetime
    due_at: dt.datetime
    decided_at: dt.datetime | None
    decision_reason: str | None
    completed_at: dt.datetime | None
    failure: str | None
    export_bytes: int | None
    export_expires_at: dt.datetime | None
    downloadable: bool
    overdue: bool


class DecideIn(Input):
    reason: Annotated[str, Field(min_length=3, max_length=2000)] | None = None


class DeclineIn(Input):
    reason: Annotated[str, Field(min_length=3, max_length=2000)]


class ExportLink(BaseModel):
    url: str
    expires_at: dt.datetime
    sha256: str


# ---- legal documents ---------------------------------------------------------------------

@router.get("/legal/disclosures", response_model=list[Disclosure])
async def legal_disclosures(request: Request, lang: Lang = None,
                            country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
                            ctx: Ctx = allow(PUBLIC)) -> list[dict[str, Any]]:
    """Disclosures that apply everywhere and in the country (default: the caller's)."""
    return await service.disclosures(ctx.conn, country, lang or lang_of(request))


@router.get("/legal/{doc}", response_model=LegalOut)
async def legal_document(doc: Doc, request: Request, lang: Lang = None, ctx: Ctx = allow(PUBLIC)) -> dict[str, Any]:
    """The current version of the terms of service or the privacy policy, in the caller's language."""
    return await service.current_legal(ctx.conn, doc, lang or lang_of(request))


@router.get("/me/legal", response_model=LegalStatus)
async def my_legal(ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await service.legal_status(ctx.conn)


@router.post("/legal/{doc}/accept", response_model=LegalStatus)
async def accept(doc: Doc, body: AcceptIn, request: Request, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """Accept the document's current version (409 `stale_version` for an older one); recorded with
    the time, your address and your browser."""
    return await service.accept_legal(ctx.conn, doc, body.version,
                                      client_ip(request, ctx.platform.settings.trust_proxy_headers),
                                      request.headers.get("user-agent"))


@router.post("/admin/legal/{doc}/versions", status_code=status.HTTP_201_CREATED, response_model=VersionOut)
async def publish(doc: Doc, body: PublishIn, ctx: Ctx = allow(*ADMINS, probe=Probe(
        "select app.legal_publish('terms', false, repeat('t', 20), repeat('t', 20))"))) -> dict[str, Any]:
    """Publish the next version, in both languages. A material version blocks ordering, booking
    and paying until each user accepts it."""
    return await service.publish_legal(ctx.conn, doc, material=body.material, body_en=body.body_en,
                                       body_ar=body.body_ar, summary_en=body.summary_en, summary_ar=body.summary_ar)


# ---- cookie and consent choices ------------------------------------------------------------

@router.get("/consent", response_model=ConsentOut)
async def consent(visitor_id: uuid.UUID | None = None, ctx: Ctx = allow(PUBLIC)) -> dict[str, Any]:
    """The choice that holds for the signed-in user, else for the visitor id (none: only necessary)."""
    return await service.consent_of(ctx.conn, str(visitor_id) if visitor_id else None)


@router.put("/consent", response_model=ConsentOut)
async def set_consent(body: ConsentIn, ctx: Ctx = allow(PUBLIC, rate="consent")) -> dict[str, Any]:
    """The banner's choice: necessary cookies always, analytics and marketing only when chosen."""
    if body.visitor_id is None and ctx.user_id is None:
        raise AppError(422, "validation_error", "visitor_id is needed before sign-in",
                       extra={"errors": [{"loc": ["body", "visitor_id"], "msg": "required before sign-in",
                                          "type": "missing"}]})
    return await service.record_consent(ctx.conn, str(body.visitor_id) if body.visitor_id else None,
                                        analytics=body.analytics, marketing=body.marketing)


# ---- data-subject requests ---------------------------------------------------------------

@router.post("/me/data-requests", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
async def file_request(body: RequestIn, ctx: Ctx = allow(AUTHENTICATED, rate="data_requests")) -> dict[str, Any]:
    """Ask for an export of your data or its deletion; an admin approves it within the deadline."""
    return await service.file_request(ctx.conn, body.kind, body.note)


@router.get("/me/data-requests", response_model=list[RequestOut])
async def my_requests(ctx: Ctx = allow(AUTHENTICATED)) -> list[dict[str, Any]]:
    return await service.my_requests(ctx.conn)


@router.get("/me/data-requests/{request_id}/export-link", response_model=ExportLink)
async def export_link(request_id: Id, ctx: Ctx = allow(AUTHENTICATED, readonly=False)) -> dict[str, Any]:
    """A short-lived signed link to your finished export (404 before it is ready or after it expired)."""
    return await service.export_link(ctx.conn, ctx.platform.settings, request_id)


@router.get("/privacy/exports/{request_id}", response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "the export"}})
async def download(request_id: Id, sha: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")],
                   exp: Annotated[int, Query(ge=0, le=2**40)],
                   sig: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{10,64}$")],
                   ctx: Ctx = allow(PUBLIC)) -> Response:
    """The ZIP behind a signed link; expired or altered links answer 403."""
    problem = service.link_valid(ctx.platform.settings, request_id, sha, exp, sig)
    if problem is not None:
        raise AppError(403, problem, "this export link is not valid or has expired")
    data = await ctx.platform.storage.get(await service.export_object(ctx.conn, request_id, sha))
    return Response(data, media_type="application/zip",
                    headers={"Cache-Control": "private, no-store",
                             "Content-Disposition": f'attachment; filename="samia-data-{request_id}.zip"'})


@router.get("/admin/data-requests", response_model=list[RequestOut])
async def requests_queue(ctx: Ctx = allow(*ADMINS, probe=DSR_PROBE),
                         state: Annotated[Literal["pending", "approved", "declined", "processing", "completed",
                                                  "failed"] | None, Query(alias="status")] = None,
                         kind: Literal["export", "delete"] | None = None) -> list[dict[str, Any]]:
    """Open requests first, nearest deadline first."""
    return await service.requests_queue(ctx.conn, state, kind)


@router.post("/admin/data-requests/{request_id}/approve", response_model=RequestOut)
async def approve(request_id: Id, body: DecideIn, ctx: Ctx = allow(*ADMINS, probe=Probe(
        "select app.dsr_decide(:data_request, 'approved', null)"))) -> dict[str, Any]:
    """Approve: the job exports or erases. Once only (409 `already_decided`); never your own."""
    return await service.decide_request(ctx.conn, request_id, "approved", body.reason)


@router.post("/admin/data-requests/{request_id}/decline", response_model=RequestOut)
async def decline(request_id: Id, body: DeclineIn, ctx: Ctx = allow(*ADMINS, probe=Probe(
        "select app.dsr_decide(:data_request, 'declined', 'probe')"))) -> dict[str, Any]:
    """Decline with the reason the requester will read; nothing else changes."""
    return await service.decide_request(ctx.conn, request_id, "declined", body.reason)

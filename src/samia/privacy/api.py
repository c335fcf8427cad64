"""Legal documents, disclosures and cookie consent (seeds 000 M38). The rules are in
schema/15_privacy.sql; the verbs in privacy/service.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, Probe, allow, client_ip
from samia.core.models import Input
from samia.core.problems import AppError, lang_of
from samia.privacy import service

router = APIRouter(tags=["privacy"])

ADMINS = ("admin", "superadmin")
Doc = Literal["terms", "privacy"]
Lang = Annotated[Literal["en", "ar"] | None, Query(description="default: Accept-Language")]


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

"""The storefront's catalogue API: services and prices, the reader directory, readers' public
profiles, reviews and favourites."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, Field, model_validator

from samia.catalogue import service as svc
from samia.core.access import ADMINS, PUBLIC, STAFF, Ctx, Probe, allow
from samia.core.models import Id, Input, RowId
from samia.core.problems import not_found
from samia.media.store import store_upload

router = APIRouter(tags=["catalogue"])

Code = Annotated[str, Path(pattern=r"^[a-z_]{2,40}$")]
Country = Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2; default: yours")]
ReaderId = Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{36}$")]
Minor = Annotated[int, Field(ge=0, le=100_000_000)]


class ServiceOut(BaseModel):
    code: str
    kind: Literal["reading", "call"]
    name_en: str
    name_ar: str
    description_en: str
    description_ar: str
    is_premium: bool
    price_minor: int = Field(description="in minor units of `currency` (a booking's or an order's price)")
    per_minute_minor: int = Field(description="calls: the per-minute rate of an instant call")
    currency: str = Field(description="ISO 4217")
    duration_minutes: int = Field(description="calls: the length of a booked session")
    gold_surcharge_minor: int = Field(description="readings: added for a golden (rush) order")
    pre_ritual_en: str | None = Field(description="instructions to confirm before the call can start")
    pre_ritual_ar: str | None


class CountryPrice(Input):
    price_minor: Minor
    per_minute_minor: Minor | None = None


class ServiceIn(Input):
    """Only the fields sent change; `country_prices`, when sent, replaces them all."""
    price_minor: Minor | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    is_active: bool | None = None
    is_premium: bool | None = None
    per_minute_minor: Minor | None = None
    gold_surcharge_minor: Minor | None = None
    duration_minutes: Annotated[int, Field(ge=5, le=480)] | None = None
    name_en: Annotated[str, Field(min_length=2, max_length=100)] | None = None
    name_ar: Annotated[str, Field(min_length=2, max_length=100)] | None = None
    description_en: Annotated[str, Field(max_length=2000)] | None = None
    description_ar: Annotated[str, Field(max_length=2000)] | None = None
    pre_ritual_en: Annotated[str, Field(max_length=4000)] | None = None
    pre_ritual_ar: Annotated[str, Field(max_length=4000)] | None = None
    country_prices: dict[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], CountryPrice] | None = None


class AdminServiceOut(ServiceOut):
    is_active: bool
    country_prices: dict[str, dict[str, int | None]]


class ReaderService(BaseModel):
    code: str
    kind: str
    name_en: str
    name_ar: str
    price_minor: int
    per_minute_minor: int
    currency: str
    duration_minutes: int


class ReaderCard(BaseModel):
    """A reader's public profile. Nothing private: no email, phone, birth data or real name."""
    reader_id: str
    display_name: str
    photo_url: str | None
    bio_en: str
    bio_ar: str
    specialties: list[str]
    languages: list[str]
    rating: float | None = Field(description="average of published reviews, 1-5")
    reviews: int
    online: bool
    instant: bool = Field(description="takes an instant call now")
    services: list[ReaderService]


class PublicReview(BaseModel):
    id: int
    rating: int
    body: str | None
    reply: str | None
    replied_at: dt.datetime | None
    created_at: dt.datetime


class ReaderPage(ReaderCard):
    reviews_page: list[PublicReview]


class ReaderProfileIn(Input):
    display_name: Annotated[str, Field(min_length=2, max_length=60)]
    bio_en: Annotated[str, Field(max_length=2000)] = ""
    bio_ar: Annotated[str, Field(max_length=2000)] = ""
    specialties: Annotated[list[Annotated[str, Field(min_length=2, max_length=40, pattern=r"^[^<>]+$")]],
                           Field(max_length=8, default_factory=list)]
    languages: Annotated[list[Literal["en", "ar", "fr"]],
                         Field(min_length=1, max_length=3, default_factory=lambda: ["en"])]


class ReaderProfileOut(BaseModel):
    reader_id: str
    display_name: str
    bio_en: str
    bio_ar: str
    specialties: list[str]
    languages: list[str]
    photo_media_id: int | None
    updated_at: dt.datetime


class ReviewIn(Input):
    order_id: RowId | None = None
    call_id: RowId | None = None
    rating: Annotated[int, Field(ge=1, le=5)]
    text: Annotated[str, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> ReviewIn:
        if (self.order_id is None) == (self.call_id is None):
            raise ValueError("review either an order_id or a call_id")
        return self


class ReplyIn(Input):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class DecideIn(Input):
    reason: Literal["harassment", "abuse", "fraud", "copyright", "safety", "spam", "other"]
    note: Annotated[str, Field(max_length=2000)] | None = None
    case_id: RowId | None = None


class ReviewOut(BaseModel):
    id: int
    reader_id: str
    order_id: int | None
    call_id: int | None
    rating: int
    body: str | None
    status: Literal["published", "held", "removed"]
    reply: str | None
    replied_at: dt.datetime | None
    created_at: dt.datetime


ADMIN_PROBE = svc.ADMIN_PROBE
READER_PROBE = svc.READER_PROBE
REVIEW_PROBE = Probe("select app.decide_review(:review, 'publish_review', 'other', 'probe')")


# ---- services ------------------------------------------------------------------------------

@router.get("/services", response_model=list[ServiceOut])
async def services(country: Country = None, ctx: Ctx = allow(PUBLIC)) -> list[dict[str, Any]]:
    """Active services at the prices of `country` (default: yours when signed in)."""
    return await svc.list_services(ctx.conn, country)


@router.get("/services/{code}", response_model=ServiceOut)
async def service(code: Code, country: Country = None, ctx: Ctx = allow(PUBLIC)) -> dict[str, Any]:
    return await svc.get_service(ctx.conn, code, country)


@router.get("/admin/services", response_model=list[AdminServiceOut])
async def admin_services(ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> list[dict[str, Any]]:
    return await svc.admin_services(ctx.conn)


@router.put("/admin/services/{code}", response_model=AdminServiceOut)
async def set_service(code: Code, body: ServiceIn, ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> dict[str, Any]:
    """Set a service's price, currency, state, rates or texts (audited). Per-country prices are
    in the service's currency and honoured when an order, hold or call is made."""
    changes = body.model_dump(exclude_unset=True, exclude={"country_prices"})
    prices = ({c: p.model_dump() for c, p in body.country_prices.items()}
              if body.country_prices is not None else None)
    return await svc.update_service(ctx.conn, code, changes, prices)


# ---- the reader directory -------------------------------------------------------------------

@router.get("/readers", response_model=list[ReaderCard])
async def readers(country: Country = None, service: Annotated[str | None, Query(pattern=r"^[a-z_]{2,40}$")] = None,
                  online: bool | None = None, language: Literal["en", "ar", "fr"] | None = None,
                  ctx: Ctx = allow(PUBLIC)) -> list[dict[str, Any]]:
    """Readers with a public profile: online ones first, then by rating."""
    return await svc.list_readers(ctx.conn, ctx.platform.settings, country=country, service=service, online=online,
                                  language=language)


@router.get("/readers/me/profile", response_model=ReaderProfileOut)
async def my_profile(ctx: Ctx = allow("reader", probe=READER_PROBE)) -> dict[str, Any]:
    row = await svc.my_reader_profile(ctx.conn)
    if row is None:
        raise not_found("reader profile")
    return row


@router.put("/readers/me/profile", response_model=ReaderProfileOut)
async def save_profile(body: ReaderProfileIn, ctx: Ctx = allow("reader", probe=READER_PROBE)) -> dict[str, Any]:
    """Your public profile: what clients see in the directory."""
    return await svc.save_reader_profile(ctx.conn, body.model_dump())


PHOTO = {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                     "image/png": {"schema": {"type": "string", "format": "binary"}},
                     "image/webp": {"schema": {"type": "string", "format": "binary"}}}, "required": True}


@router.post("/readers/me/photo", response_model=ReaderProfileOut, openapi_extra={"requestBody": PHOTO})
async def save_photo(request: Request, ctx: Ctx = allow("reader", probe=READER_PROBE)) -> dict[str, Any]:
    """Your profile photo: JPEG, PNG or WebP, sniffed from the bytes, at most MAX_IMAGE_BYTES."""
    media_id = await store_upload(ctx, await request.body(), kinds={"image"}, prefix="readers/photos",
                                  purpose="reader_photo")
    await svc.set_reader_photo(ctx.conn, media_id)
    return await svc.my_reader_profile(ctx.conn)  # type: ignore[return-value]


@router.get("/readers/{reader_id}", response_model=ReaderPage)
async def reader(reader_id: ReaderId, country: Country = None, ctx: Ctx = allow(PUBLIC)) -> dict[str, Any]:
    """A reader's public profile with their services at your prices and their latest reviews."""
    return await svc.get_reader(ctx.conn, ctx.platform.settings, reader_id, country)


@router.get("/readers/{reader_id}/reviews", response_model=list[PublicReview])
async def reader_reviews(reader_id: ReaderId,
                         before: Annotated[int | None, Query(ge=1, le=9_223_372_036_854_775_807)] = None,
                         limit: Annotated[int, Query(ge=1, le=100)] = 20,
                         ctx: Ctx = allow(PUBLIC)) -> list[dict[str, Any]]:
    return await svc.reader_reviews(ctx.conn, reader_id, limit=limit, before=before)


# ---- reviews --------------------------------------------------------------------------------

@router.post("/reviews", status_code=status.HTTP_201_CREATED, response_model=ReviewOut)
async def leave_review(body: ReviewIn, ctx: Ctx = allow("client", rate="reviews", probe=svc.LEAVE_REVIEW_PROBE)
                       ) -> dict[str, Any]:
    """Rate a delivered order or a completed call of yours, once (1-5, optional text). Text with
    flagged words or contact details waits for a monitor before it is published."""
    return await svc.leave_review(ctx.conn, order_id=body.order_id, call_id=body.call_id, rating=body.rating,
                                  body=body.text)


@router.get("/me/reviews", response_model=list[ReviewOut])
async def my_reviews(ctx: Ctx = allow("client", "reader", probe=Probe(
        "select 1 from reviews where client_id = auth.uid() or reader_id = auth.uid()"))) -> list[dict[str, Any]]:
    """The reviews you wrote (client) or received (reader)."""
    return await svc.my_reviews(ctx.conn)


@router.post("/reviews/{review_id}/reply", response_model=ReviewOut)
async def reply(review_id: Id, body: ReplyIn, ctx: Ctx = allow("reader", rate="reviews", probe=Probe(
        "select app.reply_review(:review, 'Thank you')"))) -> dict[str, Any]:
    """The reviewed reader answers, once."""
    return await svc.reply_review(ctx.conn, review_id, body.text)


@router.get("/monitor/reviews", response_model=list[ReviewOut])
async def held_reviews(ctx: Ctx = allow(*STAFF, probe=REVIEW_PROBE)) -> list[dict[str, Any]]:
    """Reviews waiting for a decision (flagged words or contact details)."""
    return await svc.held_reviews(ctx.conn)


@router.post("/monitor/reviews/{review_id}/{decision}", response_model=ReviewOut)
async def decide(review_id: Id, decision: Literal["publish", "remove"], body: DecideIn,
                 ctx: Ctx = allow(*STAFF, probe=REVIEW_PROBE)) -> dict[str, Any]:
    """Publish a held review or remove any review (it leaves the reader's average); recorded as a
    moderation act and audited."""
    return await svc.decide_review(ctx.conn, review_id, f"{decision}_review", body.reason, body.note, body.case_id)


# ---- favourites -----------------------------------------------------------------------------

@router.get("/me/favourites", response_model=list[ReaderCard])
async def favourites(ctx: Ctx = allow("client", probe=svc.FAVOURITE_PROBE)) -> list[dict[str, Any]]:
    return await svc.favourites(ctx.conn, ctx.platform.settings)


@router.put("/me/favourites/{reader_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def add_favourite(reader_id: ReaderId, ctx: Ctx = allow("client", probe=svc.FAVOURITE_PROBE)) -> Response:
    await svc.add_favourite(ctx.conn, reader_id)
    return Response(status_code=204)


@router.delete("/me/favourites/{reader_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def remove_favourite(reader_id: ReaderId, ctx: Ctx = allow("client", probe=svc.FAVOURITE_PROBE)) -> Response:
    await svc.remove_favourite(ctx.conn, reader_id)
    return Response(status_code=204)

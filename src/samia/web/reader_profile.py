"""The reader's public profile (edited with a preview of the directory card before saving) and
their own performance: deliveries and their time, late ones, approval rate and ratings."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.catalogue import service as catalogue
from samia.core.access import Ctx, allow
from samia.core.problems import AppError
from samia.orders import service as orders
from samia.web.forms import Refusal, attempt, posted
from samia.web.render import Translator, lang_of, render
from samia.web.session import pages

router = pages("floor")
LANGUAGES = ("en", "ar", "fr")


async def _public(ctx: Ctx) -> dict[str, Any] | None:
    """The reader's card as clients see it in the directory (None before it is public)."""
    try:
        return await catalogue.get_reader(ctx.conn, ctx.platform.settings, str(ctx.user_id), None)
    except AppError:
        return None


def _fields(form: dict[str, str]) -> dict[str, Any]:
    return {"display_name": form.get("display_name", "").strip(), "bio_en": form.get("bio_en", "").strip(),
            "bio_ar": form.get("bio_ar", "").strip(),
            "specialties": [s.strip() for s in form.get("specialties", "").split(",") if s.strip()][:8],
            "languages": [lang for lang in LANGUAGES if form.get(f"lang_{lang}") == "yes"]}


def _check(fields: dict[str, Any]) -> Refusal | None:
    errors = {}
    if not 2 <= len(fields["display_name"]) <= 60:
        errors["display_name"] = "name_length"
    if len(fields["bio_en"]) > 2000 or len(fields["bio_ar"]) > 2000:
        errors["bio_en"] = "too_long"
    if any(not 2 <= len(s) <= 40 or "<" in s or ">" in s for s in fields["specialties"]):
        errors["specialties"] = "invalid_specialty"
    if not fields["languages"]:
        errors["lang_en"] = "language_required"
    return Refusal("required", 422, errors) if errors else None


async def _page(request: Request, ctx: Ctx, form: dict[str, str], refusal: Refusal | None = None,
                preview: bool = False) -> Response:
    card = await _public(ctx) or {"reader_id": ctx.user_id, "rating": 0, "reviews": 0, "services": [],
                                  "online": False, "photo_url": None}
    shown = {**card, **_fields(form)}
    return render(request, "floor/profile.html", status=refusal.status if refusal else 200, role=ctx.role,
                  form=form, card=shown, preview=preview, public=card.get("display_name") is not None,
                  languages=LANGUAGES, errors=refusal.messages(Translator(lang_of(request))) if refusal else {},
                  done=request.query_params.get("done"))


@router.get("/staff/profile", response_class=HTMLResponse)
async def profile(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=catalogue.READER_PROBE)
                  ) -> Response:
    row = await catalogue.my_reader_profile(ctx.conn) or {}
    form = {"display_name": row.get("display_name") or "", "bio_en": row.get("bio_en") or "",
            "bio_ar": row.get("bio_ar") or "", "specialties": ", ".join(row.get("specialties") or [])}
    form.update({f"lang_{lang}": "yes" for lang in row.get("languages") or ["en"]})
    return await _page(request, ctx, form)


@router.post("/staff/profile", response_class=HTMLResponse)
async def save(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=catalogue.READER_PROBE)) -> Response:
    """`preview`: show the card with these values, nothing saved. `save`: save them."""
    form = await posted(request)
    fields = _fields(form)
    refusal = _check(fields)
    if refusal or form.get("action") != "save":
        return await _page(request, ctx, form, refusal, preview=refusal is None)
    _, refusal = await attempt(ctx.conn, lambda: catalogue.save_reader_profile(ctx.conn, fields))
    if refusal:
        return await _page(request, ctx, form, refusal)
    return RedirectResponse("/staff/profile?done=saved", status_code=303)


@router.get("/staff/performance", response_class=HTMLResponse)
async def performance(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=orders.PERFORMANCE_PROBE)
                      ) -> Response:
    return render(request, "floor/performance.html", role=ctx.role, stats=await orders.my_performance(ctx),
                  card=await _public(ctx))

"""The legal documents as pages, and the client's privacy page: what they accepted (and
accepting a new version), their analytics and marketing choices, and their data requests
(a copy of their data, deleting their account) with the export's download. The same service
functions and database rules as the API's /legal, /consent and /me/data-requests."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, allow, client_ip
from samia.privacy import service
from samia.web.forms import LANG_SWITCH, Refusal, attempt, form_lang, posted, safe_next
from samia.web.render import CHOSEN_COOKIE, Translator, lang_of, render
from samia.web.session import pages, set_cookie

router = pages("web")
DOCS = {"terms": "terms", "privacy": "privacy"}
# the banner's anonymous id (a random uuid naming the visitor's choice, nothing else) and the
# marker that they have chosen, so the banner stops asking; both kept for a year
VISITOR_COOKIE = "samia_visitor"
YEAR = 365 * 24 * 3600


def visitor_of(request: Request) -> str | None:
    try:
        return str(uuid.UUID(request.cookies.get(VISITOR_COOKIE, "")))
    except ValueError:
        return None


def paragraphs(body: str) -> list[str]:
    """A document's text as paragraphs (one per line; blank lines dropped). The text is
    escaped by the template: documents never carry markup."""
    return [line.strip() for line in body.splitlines() if line.strip()]


@router.get("/terms", response_class=HTMLResponse)
@router.get("/privacy", response_class=HTMLResponse)
async def document(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True)) -> Response:
    doc = DOCS[request.url.path.strip("/")]
    lang = lang_of(request)
    current = await service.current_legal(ctx.conn, doc, lang)
    notes = await service.disclosures(ctx.conn, None, lang) if doc == "privacy" else []
    # a visitor (signed in or not) can make or change the banner's choice on the policy itself
    choice = await service.consent_of(ctx.conn, visitor_of(request)) if doc == "privacy" else None
    return render(request, "legal.html", role=ctx.role, doc=current, body=paragraphs(current["body"]),
                  disclosures=notes, choice=choice, done=request.query_params.get("done", ""))


@router.post("/privacy/choices")
async def consent(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True, rate="consent", readonly=False)
                  ) -> Response:
    """The banner's answer ("all" or "necessary") or the policy page's boxes: recorded for the
    signed-in user, else under the visitor's random id; then back to the page they were on."""
    form = await posted(request)
    visitor = visitor_of(request) or str(uuid.uuid4())
    if form.get("choice") in ("all", "necessary"):
        analytics = marketing = form["choice"] == "all"
    else:
        analytics, marketing = form.get("analytics") == "yes", form.get("marketing") == "yes"
    await service.record_consent(ctx.conn, visitor, analytics=analytics, marketing=marketing)
    set_cookie(request, VISITOR_COOKIE, visitor, max_age=YEAR)
    set_cookie(request, CHOSEN_COOKIE, "1", max_age=YEAR)
    return RedirectResponse(safe_next(form.get("next")), status_code=303)


async def _page(request: Request, ctx: Ctx, form: dict[str, str] | None = None, refusal: Refusal | None = None,
                *, template: str = "privacy.html", **extra: Any) -> Response:
    form = form or {}
    lang = form_lang(request, form)
    status = await service.legal_status(ctx.conn)
    accepted = {(a["doc"], a["version"]) for a in status["accepted"]}
    documents = [{"doc": c["doc"], "version": c["version"], "accepted": (c["doc"], c["version"]) in accepted,
                  "outstanding": c["doc"] in status["outstanding"]} for c in status["current"]]
    errors = refusal.messages(Translator(lang)) if refusal else {}
    choice = await service.consent_of(ctx.conn, visitor_of(request))  # theirs, else the banner's
    # until they object, their own records are linked to them (the privacy rule's 'operational')
    linked = choice["analytics"] if choice["decided_at"] else True
    return render(request, template, status=refusal.status if refusal else 200, lang=lang, role=ctx.role,
                  documents=documents, choice=choice, linked=linked,
                  requests=await service.my_requests(ctx.conn), form=form, errors=errors,
                  done=request.query_params.get("done", ""), **extra)


@router.get("/account/privacy", response_class=HTMLResponse)
async def privacy_page(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    return await _page(request, ctx)


def _done(what: str) -> RedirectResponse:
    return RedirectResponse(f"/account/privacy?done={what}", status_code=303)


@router.post("/account/privacy/accept", response_class=HTMLResponse)
async def accept(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH) or form.get("doc") not in DOCS or not form.get("version", "").isdigit():
        return await _page(request, ctx, form)
    _, refusal = await attempt(ctx.conn, lambda: service.accept_legal(
        ctx.conn, form["doc"], int(form["version"]), client_ip(request, ctx.platform.settings.trust_proxy_headers),
        request.headers.get("user-agent")))
    return await _page(request, ctx, form, refusal) if refusal else _done("accepted")


@router.post("/account/privacy/choices", response_class=HTMLResponse)
async def choices(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, rate="consent", readonly=False)
                  ) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _page(request, ctx, form)
    _, refusal = await attempt(ctx.conn, lambda: service.record_consent(
        ctx.conn, None, analytics=form.get("analytics") == "yes", marketing=form.get("marketing") == "yes"))
    return await _page(request, ctx, form, refusal) if refusal else _done("choices")


@router.post("/account/privacy/export", response_class=HTMLResponse)
async def ask_export(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, rate="data_requests",
                                                        readonly=False)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _page(request, ctx, form)
    _, refusal = await attempt(ctx.conn, lambda: service.file_request(ctx.conn, "export", None))
    return await _page(request, ctx, form, refusal) if refusal else _done("export")


@router.get("/account/privacy/delete", response_class=HTMLResponse)
async def delete_form(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    """The confirmation step: what deleting the account does, and a box to tick."""
    return await _page(request, ctx, template="privacy_delete.html")


@router.post("/account/privacy/delete", response_class=HTMLResponse)
async def ask_delete(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, rate="data_requests",
                                                        readonly=False)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _page(request, ctx, form, template="privacy_delete.html")
    if form.get("confirm") != "yes":
        return await _page(request, ctx, form, Refusal("confirm_required", 422, {"confirm": "confirm_required"}),
                           template="privacy_delete.html")
    note = form.get("note", "").strip()[:2000] or None
    _, refusal = await attempt(ctx.conn, lambda: service.file_request(ctx.conn, "delete", note))
    if refusal:
        return await _page(request, ctx, form, refusal, template="privacy_delete.html")
    return _done("delete")


@router.post("/account/privacy/requests/{request_id}/download")
async def download(request_id: int, request: Request,
                   ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    """A fresh short-lived signed link to the caller's own finished export (audited)."""
    link = await service.export_link(ctx.conn, ctx.platform.settings, request_id)
    return RedirectResponse(link["url"], status_code=303)

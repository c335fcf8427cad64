"""Account pages: sign up (18+, country, terms), log in and out, email and phone
verification, the profile, and the language switch (notification settings: notifications.py)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.auth import service as auth
from samia.core.access import AUTHENTICATED, PUBLIC, Ctx, acting_as, allow, client_ip
from samia.core.tokens import decode_access
from samia.profiles.service import get_profile, list_countries, update_profile
from samia.web.forms import LANG_SWITCH, Refusal, attempt, form_lang, posted, required, safe_next
from samia.web.render import LANG_COOKIE, LANGS, Translator, lang_of, render
from samia.web.session import end, pages, set_cookie, start

router = pages("web")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def remember_lang(request: Request, lang: str) -> None:
    set_cookie(request, LANG_COOKIE, lang, max_age=365 * 86400, http_only=False)


def form_page(request: Request, template: str, form: dict[str, str], refusal: Refusal | None,
               **context: Any) -> Response:
    lang = form_lang(request, form)
    if form.get(LANG_SWITCH) in LANGS:
        remember_lang(request, lang)
    errors = refusal.messages(Translator(lang)) if refusal else {}
    return render(request, template, status=refusal.status if refusal else 200, lang=lang, form=form,
                  errors=errors, **context)


# ---- sign-up ---------------------------------------------------------------------------

@router.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True)) -> Response:
    return render(request, "signup.html", role=ctx.role, countries=await list_countries(ctx.conn),
                  max_dob=auth.eighteen_years_ago().isoformat())


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True, db_role="samia_auth", rate="signup")
                 ) -> Response:
    form = await posted(request)
    async with acting_as(ctx, "anon"):  # reference data; the credential role reads no tables
        countries = await list_countries(ctx.conn)
    context = {"countries": countries, "max_dob": auth.eighteen_years_ago().isoformat()}
    if form.get(LANG_SWITCH):
        return form_page(request, "signup.html", form, None, **context)
    refusal = required(form, "first_name", "last_name", "email", "password", "dob", "country")
    fields = dict(refusal.fields) if refusal else {}
    if form.get("email") and not EMAIL.match(form["email"]):
        fields["email"] = "invalid_email"
    if form.get("password") and not 10 <= len(form["password"]) <= 128:
        fields["password"] = "password_length"
    dob = _date(form.get("dob", ""))
    if form.get("dob") and dob is None:
        fields["dob"] = "invalid_date"
    if form.get("terms") != "yes":
        fields["terms"] = "terms_required"
    if fields:
        return form_page(request, "signup.html", form, Refusal("required", 422, fields), **context)
    lang = lang_of(request)
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)

    async def create() -> auth.Tokens:
        uid = await auth.signup(ctx.conn, ctx.platform.passwords, email=form["email"].strip(),
                                password=form["password"], dob=dob, country=form["country"],  # type: ignore[arg-type]
                                first_name=form["first_name"].strip(), last_name=form["last_name"].strip(),
                                locale=lang, accepted_from=(ip, request.headers.get("user-agent")))
        return await auth.start_session(ctx.conn, ctx.platform.settings, uid)

    tokens, refusal = await attempt(ctx.conn, create)
    if refusal or tokens is None:
        form.pop("password", None)
        return form_page(request, "signup.html", form, refusal, **context)
    start(request, tokens)
    remember_lang(request, lang)
    return see_other("/verify-email")


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


# ---- log in and out ----------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: Annotated[str, Query(max_length=500)] = "/",
                     ctx: Ctx = allow(PUBLIC, cookie=True, db=False)) -> Response:
    return render(request, "login.html", form={"next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True, db_role="samia_auth", rate="login")
                ) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return form_page(request, "login.html", form, None)
    refusal = required(form, "email", "password")
    if refusal:
        return form_page(request, "login.html", form, refusal)
    tokens, refusal = await attempt(ctx.conn, lambda: auth.login(ctx.conn, ctx.platform.passwords,
                                                                 ctx.platform.settings, form["email"].strip(),
                                                                 form["password"]))
    if refusal or tokens is None:
        form.pop("password", None)
        return form_page(request, "login.html", form, refusal)
    start(request, tokens)
    # the page speaks the profile's language from now on: read it as the user, under RLS
    claims = decode_access(ctx.platform.settings, tokens.access_token)
    await ctx.conn.execute("select set_config('role', 'authenticated', true), "
                           "set_config('request.jwt.claims', %s, true)", (claims.json,))
    cur = await ctx.conn.execute("select locale from profiles where id = auth.uid()")
    row = await cur.fetchone()
    if row and row[0] in LANGS:
        remember_lang(request, row[0])
    return see_other(safe_next(form.get("next")))


@router.post("/logout")
async def logout(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, db_role="samia_auth")) -> Response:
    await auth.logout(ctx.conn, ctx.claims.session_id if ctx.claims else None)
    end(request)
    return see_other("/")


# ---- verification -------------------------------------------------------------------------

@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request, token: Annotated[str | None, Query(max_length=2000)] = None,
                       ctx: Ctx = allow(PUBLIC, cookie=True, db_role="samia_auth", readonly=False)) -> Response:
    """Without a token: 'check your inbox'. With the link's token: confirm the address."""
    if token is None:
        return render(request, "verify_email.html", role=ctx.role, state="sent")
    _, refusal = await attempt(ctx.conn, lambda: auth.confirm_email(ctx.conn, ctx.platform.settings, token))
    return render(request, "verify_email.html", status=refusal.status if refusal else 200, role=ctx.role,
                  state="failed" if refusal else "verified")


@router.get("/verify-phone", response_class=HTMLResponse)
async def verify_phone_form(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    profile = await get_profile(ctx.conn, ctx.user_id)  # type: ignore[arg-type]
    return render(request, "verify_phone.html", role=ctx.role, profile=profile, step="start",
                  form={"phone": profile["phone"] or ""})


@router.post("/verify-phone", response_class=HTMLResponse)
async def verify_phone(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, db_role="samia_auth",
                                                          rate="phone_verify")) -> Response:
    """One page, two steps: send a code to the number, then check the code."""
    form = await posted(request)
    step = "check" if form.get("code") is not None else "start"
    context = {"profile": None, "step": step}
    if form.get(LANG_SWITCH):
        return form_page(request, "verify_phone.html", form, None, **context)
    refusal = required(form, "phone", *(("code",) if step == "check" else ()))
    if refusal is None:
        if step == "start":
            _, refusal = await attempt(ctx.conn, lambda: auth.phone_start(ctx.conn, ctx.platform, form["phone"]))
            context["step"] = "start" if refusal else "check"
        else:
            _, refusal = await attempt(ctx.conn, lambda: auth.phone_check(ctx.conn, ctx.platform, form["phone"],
                                                                          form["code"].strip()))
            if refusal is None:
                context["step"] = "verified"
    return form_page(request, "verify_phone.html", form, refusal, **context)


# ---- profile, notifications, language ---------------------------------------------------------

PROFILE_FIELDS = ("first_name", "last_name", "country", "birth_place", "birth_time")


@router.get("/account", response_class=HTMLResponse)
async def profile_form(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    profile = await get_profile(ctx.conn, ctx.user_id)  # type: ignore[arg-type]
    form = {k: str(profile[k] or "") for k in PROFILE_FIELDS}
    form["country"] = profile["country_code"] or ""
    form["birth_time"] = (profile["birth_time"] or "")[:5]
    return render(request, "account.html", role=ctx.role, profile=profile, form=form,
                  countries=await list_countries(ctx.conn), saved=request.query_params.get("saved") == "1")


@router.post("/account", response_class=HTMLResponse)
async def profile_save(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    form = await posted(request)
    profile = await get_profile(ctx.conn, ctx.user_id)  # type: ignore[arg-type]
    context = {"profile": profile, "countries": await list_countries(ctx.conn), "saved": False}
    if form.get(LANG_SWITCH):
        return form_page(request, "account.html", form, None, **context)
    # the country sets prices: chosen once, then changed only by an admin (profiles_guard)
    fixed = profile["country_code"] is not None
    refusal = required(form, "first_name", "last_name", *(() if fixed else ("country",)))
    if form.get("birth_time") and not TIME.match(form["birth_time"]):
        refusal = Refusal("invalid_time", 422, {"birth_time": "invalid_time"})
    if refusal:
        return form_page(request, "account.html", form, refusal, **context)
    changes: dict[str, object] = {k: form.get(k, "").strip() or None for k in PROFILE_FIELDS
                                  if not (fixed and k == "country")}
    _, refusal = await attempt(ctx.conn, lambda: update_profile(ctx.conn, ctx.user_id, changes))  # type: ignore[arg-type]
    if refusal:
        return form_page(request, "account.html", form, refusal, **context)
    return see_other("/account?saved=1")


@router.post("/account/language")
async def switch_language(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True, readonly=False)) -> Response:
    """The header's language switch on pages without a form: remember the choice (and keep it
    on the profile when signed in), then show the same page again."""
    form = await posted(request)
    lang = form.get("lang") if form.get("lang") in LANGS else "en"
    remember_lang(request, lang)  # type: ignore[arg-type]
    if ctx.user_id:
        await update_profile(ctx.conn, ctx.user_id, {"locale": lang})
    return see_other(safe_next(form.get("next")))

"""Presentation: the Jinja2 environment (autoescaped), the EN/AR catalogues, the language of
a request, and the helpers templates use (money, times in the client's zone, status names)."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from samia.web import nav
from samia.web.headers import PAGE_HEADERS

HERE = Path(__file__).parent
LANGS = ("en", "ar")
LANG_COOKIE = "samia_lang"
CHOSEN_COOKIE = "samia_consent"  # set once a visitor answered the privacy banner
TZ_COOKIE = "samia_tz"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The language's strings: locales/<lang>.json (the storefront's) and one
    locales/<area>/<lang>.json per staff area. A key lives in exactly one file."""
    strings: dict[str, str] = {}
    for path in [HERE / "locales" / f"{lang}.json", *sorted((HERE / "locales").glob(f"*/{lang}.json"))]:
        part = json.loads(path.read_text(encoding="utf-8"))
        if twice := set(part) & set(strings):
            raise RuntimeError(f"{path} repeats {sorted(twice)[:3]}")
        strings.update(part)
    return strings


class Translator:
    """`t("key", name=…)`: the catalogue's text with {placeholders} filled. A missing key
    raises (the locale test keeps both catalogues complete)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.strings = catalogue(lang)

    def __call__(self, key: str, **params: Any) -> str:
        text = self.strings[key]
        return text.format(**params) if params else text

    def maybe(self, key: str, default: str) -> str:
        """For data-driven keys (a status, a service code) that may be new: the row's own text."""
        return self.strings.get(key, default)


def lang_of(request: Request) -> str:
    """The chosen language (cookie, set by the switch and at log-in from the profile), else
    the browser's Accept-Language, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGS:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGS:
            return tag
    return "en"


def zone_of(request: Request) -> ZoneInfo:
    """The client's time zone as the browser reported it (app.js), else UTC."""
    name = unquote(request.cookies.get(TZ_COOKIE, "UTC"))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def money(minor: int | None, currency: str | None, lang: str) -> str:
    amount = f"{(minor or 0) / 100:,.2f}"
    cur = currency or "USD"
    if lang == "ar":  # isolated left-to-right, so that Arabic around it cannot reorder "15.00 USD"
        return f"\u2066{amount} {cur}\u2069"
    return f"${amount}" if cur == "USD" else f"{amount} {cur}"


def localized(row: Any, name: str, lang: str) -> str:
    """A row's text in the page's language (`name_ar`, `bio_ar` …), else its English text."""
    return str(row.get(f"{name}_{lang}") or row.get(f"{name}_en") or "")


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "svg"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["static_version"] = "1"
    return env


ENV = _env()


def render(request: Request, template: str, *, status: int = 200, role: str | None = None,
           **context: Any) -> HTMLResponse:
    from samia.web.session import csrf_token, signed_in

    lang = context.pop("lang", None) or lang_of(request)
    t = Translator(lang)
    zone = zone_of(request)

    def when(value: dt.datetime | None, fmt: str = "datetime") -> str:
        if value is None:
            return ""
        local = value.astimezone(zone)
        text = local.strftime({"date": "%Y-%m-%d", "time": "%H:%M"}.get(fmt, "%Y-%m-%d %H:%M"))
        return f"\u2066{text}\u2069" if lang == "ar" else text  # digits and dashes stay in order in Arabic

    base: dict[str, Any] = {
        "request": request, "t": t, "lang": lang, "dir": "rtl" if lang == "ar" else "ltr",
        "csrf": csrf_token(request), "signed_in": signed_in(request), "role": role,
        "path": request.url.path, "request_id": getattr(request.state, "request_id", ""),
        "money": lambda minor, cur: money(minor, cur, lang), "when": when, "zone": zone.key,
        "loc": lambda row, name: localized(row, name, lang),
        "form": {}, "errors": {}, "nav_items": nav.items(role, signed_in(request)),
        # signed-in people set their choices on /account/privacy; visitors are asked once
        "ask_consent": not signed_in(request) and CHOSEN_COOKIE not in request.cookies,
    }
    base.update(context)
    html = ENV.get_template(template).render(base)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", **PAGE_HEADERS})

"""Forms: read a posted form, run a feature function inside a savepoint so that a refusal
leaves nothing behind, and turn the refusal into messages next to the fields (GOV.UK style:
an error summary that links to each field)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from fastapi import Request
from psycopg import AsyncConnection

from samia.core.problems import AppError, from_db_error
from samia.web.render import LANGS, Translator, lang_of

T = TypeVar("T")
LANG_SWITCH = "_lang"   # a form's language button: re-render the same form, values kept


def form_lang(request: Request, form: dict[str, str]) -> str:
    """The language a posted form is shown in: its language button's, else the request's."""
    chosen = form.get(LANG_SWITCH, "")
    return chosen if chosen in LANGS else lang_of(request)


@dataclass
class Refusal:
    """A refused form: one message per field, or a message for the whole form."""
    code: str
    status: int
    fields: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def messages(self, t: Translator) -> dict[str, str]:
        text = t.maybe(f"error.{self.code}", t("error.generic_form"))
        return {name: t.maybe(f"error.{code}", text) for name, code in self.fields.items()} or {"_form": text}


async def posted(request: Request) -> dict[str, str]:
    """The text fields of a posted form (files are read by the handler that wants them)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and not k.startswith("_csrf")}


def required(form: dict[str, str], *names: str) -> Refusal | None:
    missing = {n: "required" for n in names if not form.get(n, "").strip()}
    return Refusal("required", 422, missing) if missing else None


async def attempt(conn: AsyncConnection, action: Callable[[], Awaitable[T]]) -> tuple[T | None, Refusal | None]:
    """Run `action` in a savepoint: a refusal rolls back what it wrote (unless it asks to keep
    it, such as a counted login failure) and comes back as a Refusal for the form."""
    await conn.execute("savepoint web_form")
    try:
        result = await action()
    except AppError as err:
        if not err.keep:
            await conn.execute("rollback to savepoint web_form")
        return None, _refusal(err)
    except psycopg.Error as exc:
        await conn.execute("rollback to savepoint web_form")
        return None, _refusal(from_db_error(exc))
    await conn.execute("release savepoint web_form")
    return result, None


def _refusal(err: AppError) -> Refusal:
    fields: dict[str, str] = {}
    for e in err.extra.get("errors", []) or []:
        loc = e.get("loc") or []
        if loc:
            fields[str(loc[-1])] = str(e.get("type") or err.code)
    return Refusal(err.code, err.status, fields, {k: v for k, v in err.extra.items() if k != "errors"})


def review_fields(form: dict[str, str]) -> tuple[int, str | None] | Refusal:
    """A review form's rating (1-5) and optional text (at most 2,000 characters)."""
    rating = form.get("rating", "")
    text = form.get("text", "").strip()
    if rating not in ("1", "2", "3", "4", "5"):
        return Refusal("rating_required", 422, {"rating": "rating_required"})
    if len(text) > 2000:
        return Refusal("too_long", 422, {"text": "too_long"})
    return int(rating), text or None


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a local path (no scheme, no host, no //): an open redirect is a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return default
    return target

"""The wallet: balance, history, and a top-up with a card (the local test card processor in
development and tests; Stripe's card form arrives with that integration)."""

from __future__ import annotations

import datetime as dt
import secrets

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.core.access import Ctx, allow
from samia.payments import service as payments
from samia.web.forms import LANG_SWITCH, Refusal, attempt, form_lang, posted
from samia.web.render import Translator, render
from samia.web.session import pages

router = pages("web")
CLIENT_ROLES = ("client", "reader", "monitor", "admin", "superadmin")
TEST_CARDS = ("tok_visa", "tok_mastercard", "tok_chargeDeclined", "tok_insufficientFunds")
AMOUNTS = (1000, 2500, 5000, 10000)


async def _page(request: Request, ctx: Ctx, form: dict[str, str], refusal: Refusal | None = None,
                status: int = 200) -> Response:
    lang = form_lang(request, form)
    wallet = await payments.wallet(ctx.conn)
    for entry in wallet["entries"]:
        entry["at"] = dt.datetime.fromisoformat(entry["created_at"])
    country, methods = await payments.allowed_methods(ctx.conn)
    errors = refusal.messages(Translator(lang)) if refusal else {}
    return render(request, "wallet.html", status=refusal.status if refusal else status, lang=lang, role=ctx.role,
                  wallet=wallet, methods=methods, country=country, form=form, errors=errors,
                  test_cards=TEST_CARDS if ctx.platform.settings.card_provider == "testcard" else (),
                  amounts=AMOUNTS, topped=request.query_params.get("topped") == "1")


@router.get("/account/wallet", response_class=HTMLResponse)
async def wallet(request: Request, ctx: Ctx = allow(*CLIENT_ROLES, cookie=True, probe=payments.WALLET_PROBE)
                 ) -> Response:
    return await _page(request, ctx, {"amount": str(AMOUNTS[1]), "card_token": TEST_CARDS[0]})


@router.post("/account/wallet", response_class=HTMLResponse)
async def top_up(request: Request, ctx: Ctx = allow("client", cookie=True, probe=payments.TOPUP_PROBE)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _page(request, ctx, form)
    try:
        amount = int(form.get("amount", ""))
    except ValueError:
        amount = 0
    if not 100 <= amount <= 1_000_000 or not form.get("card_token"):
        return await _page(request, ctx, form, Refusal("invalid_amount", 422, {"amount": "invalid_amount"}))
    key = f"web-topup-{secrets.token_hex(12)}"
    outcome, refusal = await attempt(ctx.conn, lambda: payments.top_up(
        ctx, amount_minor=amount, currency="USD", card_token=form["card_token"], key=key))
    if refusal is None and outcome is not None and outcome.outcome not in ("settled", "already_settled"):
        refusal = Refusal("payment_failed", 402)
    if refusal:
        return await _page(request, ctx, form, refusal)
    return RedirectResponse("/account/wallet?topped=1", status_code=303)

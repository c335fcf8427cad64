"""Payments: the methods offered in the caller's country, paying a held booking, topping up
the wallet and reading it. The request inserts its transaction as the client under RLS; only
after the processor answered does it switch into `samia_payments` to settle or fail it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.core.access import Ctx, Probe, acting_as
from samia.core.ports import CardProcessor
from samia.core.problems import AppError, invalid, not_found
from samia.payments import usdt

# what paying a booking rests on (API and booking page)
PAY_PROBE = Probe(
    "insert into payment_transactions (user_id, provider, kind, amount_minor, currency) "
    "values (auth.uid(), 'testcard', 'charge', 100, 'USD')")

# what reading the wallet rests on (API and wallet page)
WALLET_PROBE = Probe("select app.my_balance('USD')")

# what a top-up rests on (API and wallet page)
TOPUP_PROBE = Probe(
    "insert into payment_transactions (user_id, provider, kind, amount_minor, currency) "
    "values (auth.uid(), 'testcard', 'topup', 100, 'USD')")


@dataclass(frozen=True)
class Outcome:
    """What became of a charge: settled, already_settled, pending (the customer must act:
    `client_secret`), awaiting_transfer (bank or USDT: `payment_url`), insufficient_funds, failed."""
    txn_id: int
    outcome: str
    client_secret: str | None = None
    payment_url: str | None = None


async def allowed_methods(conn: AsyncConnection) -> tuple[str | None, list[str]]:
    """The caller's country and the payment methods offered there."""
    cur = await conn.execute(
        "select p.country_code::text, array(select app.methods_for_country(p.country_code)) "
        "from profiles p where p.id = auth.uid()")
    row = await cur.fetchone()
    return (row[0], list(row[1])) if row else (None, [])


async def payment(conn: AsyncConnection, txn_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select t.id, t.kind, t.provider, t.status, t.amount_minor, t.currency::text, t.booking_id,
               b.status as booking_status, t.failure_reason, t.created_at,
               (t.metadata->>'proof_media_id')::bigint as proof_media_id
          from payment_transactions t left join bookings b on b.id = t.booking_id
         where t.id = %s""", (txn_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("payment")
    return row


async def charge_card(ctx: Ctx, txn_id: int, amount: int, currency: str, token: str,
                       key: str, processor: CardProcessor | None = None) -> tuple[str, str | None]:
    """Charge at the processor, then settle, park or fail as samia_payments.
    Returns the outcome and, when the customer must act, the client secret."""
    proc = processor or ctx.platform.card()
    result = await ctx.platform.guarded(ctx.conn, proc.name, lambda: proc.charge(
        amount_minor=amount, currency=currency, token=token, idempotency_key=key))
    async with acting_as(ctx, "samia_payments"):
        if result.ok:
            cur = await ctx.conn.execute("select app.settle_charge(%s, %s)", (txn_id, result.ref))
            return str((await cur.fetchone())[0]), None  # type: ignore[index]
        if result.ok is None:  # the customer must act; the provider's webhook settles it
            await ctx.conn.execute("select app.mark_pending(%s, %s)", (txn_id, result.ref))
            return "pending", result.client_secret
        await ctx.conn.execute("select app.fail_charge(%s, %s)", (txn_id, result.reason))
        return "failed", None


async def pay_booking(ctx: Ctx, *, booking_id: int, method: str, card_token: str | None,
                      key: str | None) -> Outcome:
    """Pay for the caller's held booking with a method offered in their country."""
    cur = await ctx.conn.execute(
        "select b.status, b.price_minor, b.currency::text, c.expires_at <= now() from bookings b "
        "join reader_capacity c on c.id = b.capacity_id where b.id = %s and b.client_id = auth.uid()",
        (booking_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("booking")
    booking_status, price, currency, lapsed = row
    if booking_status != "held" or lapsed:
        raise AppError(409, "conflict", "this booking is not awaiting payment (paid, released or its hold lapsed)")
    if price <= 0:
        raise AppError(409, "conflict", "this booking has nothing to pay")
    country, allowed = await allowed_methods(ctx.conn)
    if method not in allowed:
        raise AppError(422, "method_not_allowed_here", f"{method} is not offered in {country}",
                       extra={"allowed": allowed, "errors": [{"loc": ["body", "method"], "msg": "not offered",
                                                              "type": "method_not_allowed_here"}]})
    if method in ("card", "square") and not card_token:
        raise invalid(["body", "card_token"], "card_token is required for card payments")
    if method == "bank_transfer" and not ctx.platform.settings.bank_transfer_instructions:
        raise AppError(503, "provider_not_configured", "bank transfers need BANK_TRANSFER_INSTRUCTIONS",
                       extra={"setting": "BANK_TRANSFER_INSTRUCTIONS"})
    square = ctx.platform.square() if method == "square" else None
    provider = method if method in ("wallet", "bank_transfer", "usdt", "square") else ctx.platform.card().name
    cur = await ctx.conn.execute(
        "insert into payment_transactions (user_id, provider, kind, amount_minor, currency, booking_id, metadata) "
        "values (auth.uid(), %s, 'charge', %s, %s, %s, %s) returning id",
        (provider, price, currency, booking_id, json.dumps({"key": key})))
    txn_id = (await cur.fetchone())[0]  # type: ignore[index]
    if method == "wallet":
        async with acting_as(ctx, "samia_payments"):
            cur = await ctx.conn.execute("select app.settle_charge(%s, null)", (txn_id,))
            outcome, secret = str((await cur.fetchone())[0]), None  # type: ignore[index]
    elif method == "bank_transfer":
        async with acting_as(ctx, "samia_payments"):
            await ctx.conn.execute("select app.await_transfer(%s, %s)",
                                   (txn_id, dt.timedelta(hours=ctx.platform.settings.bank_transfer_hold_hours)))
        outcome, secret = "awaiting_transfer", None
    elif method == "usdt":
        invoice = await ctx.platform.guarded(ctx.conn, "usdt", lambda: usdt.create_invoice(
            ctx.platform.settings, txn_id=txn_id, amount_minor=price, currency=currency,
            idempotency_key=key or f"samia-txn-{txn_id}"))
        async with acting_as(ctx, "samia_payments"):
            await ctx.conn.execute("select app.await_transfer(%s, %s, %s)",
                                   (txn_id, dt.timedelta(minutes=ctx.platform.settings.usdt_hold_minutes), invoice.id))
        return Outcome(txn_id, "awaiting_transfer", payment_url=invoice.url)
    else:
        outcome, secret = await charge_card(ctx, txn_id, price, currency, card_token or "",
                                             key or f"samia-txn-{txn_id}", square)
    return Outcome(txn_id, outcome, secret)


async def top_up(ctx: Ctx, *, amount_minor: int, currency: str, card_token: str, key: str | None) -> Outcome:
    """Add money to the caller's wallet with a card (where cards are offered)."""
    _country, allowed = await allowed_methods(ctx.conn)
    if "card" not in allowed:
        raise AppError(422, "method_not_allowed_here", "cards are not offered in your country",
                       extra={"allowed": allowed})
    cur = await ctx.conn.execute(
        "insert into payment_transactions (user_id, provider, kind, amount_minor, currency, metadata) "
        "values (auth.uid(), %s, 'topup', %s, %s, %s) returning id",
        (ctx.platform.card().name, amount_minor, currency,
         json.dumps({"key": key})))
    txn_id = (await cur.fetchone())[0]  # type: ignore[index]
    outcome, secret = await charge_card(ctx, txn_id, amount_minor, currency, card_token,
                                         key or f"samia-txn-{txn_id}")
    return Outcome(txn_id, outcome, secret)


async def wallet(conn: AsyncConnection) -> dict[str, Any]:
    """The caller's USD balance and their latest 100 ledger entries, newest first."""
    cur = await conn.execute("select app.my_balance('USD')")
    balance = (await cur.fetchone())[0]  # type: ignore[index]
    rows = conn.cursor(row_factory=dict_row)
    await rows.execute("""select amount_minor, memo, txn_id, created_at from ledger_entries
                           where account = 'wallet:' || auth.uid() order by id desc limit 100""")
    entries = [{**r, "created_at": r["created_at"].isoformat()} for r in await rows.fetchall()]
    return {"currency": "USD", "balance_minor": balance, "entries": entries}

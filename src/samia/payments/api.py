"""Paying for bookings, the wallet, and the country gating of payment methods.

The request inserts its payment transaction as the client, under RLS and the RESTRICTIVE
test-account policy; only after the processor has answered does it switch into the narrow
`samia_payments` role to settle (ledger + booking confirmation) or to fail the charge
(releasing the hold: the compensating step)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from samia.core.access import Ctx, Probe, allow
from samia.core.idempotency import Idempotency
from samia.core.models import Id, Input
from samia.core.problems import AppError
from samia.media.store import store_upload
from samia.payments import admin, service

router = APIRouter(tags=["payments"])

IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
Token = Annotated[str, Field(min_length=3, max_length=200, pattern=r"^((tok|pm)_[A-Za-z0-9_]+|cnon:[A-Za-z0-9_-]+)$",
                             description="a card token, a Stripe PaymentMethod id or a Square card nonce")]


class PayIn(Input):
    booking_id: Annotated[int, Field(ge=1, le=9_223_372_036_854_775_807)]
    method: Literal["card", "wallet", "bank_transfer", "usdt", "square"]
    card_token: Token | None = None


class TopUpIn(Input):
    amount_minor: Annotated[int, Field(ge=100, le=1_000_000)]
    currency: Literal["USD"] = "USD"
    card_token: Token


class PaymentOut(BaseModel):
    id: int
    kind: str
    provider: str
    status: str
    amount_minor: int
    currency: str
    booking_id: int | None
    booking_status: str | None
    failure_reason: str | None
    created_at: dt.datetime
    client_secret: str | None = Field(None, description="when status is requires_action: confirm it client-side")
    instructions: str | None = Field(None, description="bank transfer: how to pay; then upload the proof")
    payment_url: str | None = Field(None, description="USDT: the processor's invoice page to pay from a wallet")
    proof_media_id: int | None = None


class WalletOut(BaseModel):
    currency: str
    balance_minor: int
    entries: list[dict[str, Any]]


class MethodsOut(BaseModel):
    country_code: str | None
    methods: list[str]


class MethodPolicyOut(BaseModel):
    code: str
    enabled: bool
    all_countries: bool
    countries: list[str]


class MethodPolicyIn(Input):
    enabled: bool
    all_countries: bool
    countries: Annotated[list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]], Field(max_length=250,
                                                                                 default_factory=list)]


async def _finish(ctx: Ctx, idem: Idempotency, txn_id: int, outcome: str,
                  client_secret: str | None = None, payment_url: str | None = None) -> JSONResponse:
    row = await service.payment(ctx.conn, txn_id)
    ctx.platform.metrics.payments.labels(row["provider"], outcome).inc()
    instructions = (ctx.platform.settings.bank_transfer_instructions
                    if outcome == "awaiting_transfer" and payment_url is None else None)
    body = json.loads(PaymentOut(**row, client_secret=client_secret,
                                 instructions=instructions, payment_url=payment_url).model_dump_json())
    if outcome in ("settled", "already_settled", "pending", "awaiting_transfer"):
        await idem.remember(201, body)
        return JSONResponse(body, status_code=201)
    code = "insufficient_funds" if outcome == "insufficient_funds" else "payment_failed"
    problem = {"type": f"/problems/{code}", "title": code.replace("_", " "), "status": 402, "code": code,
               "detail": body["failure_reason"], "payment": body}
    await idem.remember(402, problem)
    raise AppError(402, code, body["failure_reason"], extra={"payment": body}, keep=True)


@router.get("/payments/methods", response_model=MethodsOut)
async def methods(ctx: Ctx = allow("client", "reader", "monitor", "admin", "superadmin",
                                   probe=Probe("select 1 from payment_methods limit 1"))) -> dict[str, Any]:
    """The payment methods offered in the caller's country."""
    country, allowed = await service.allowed_methods(ctx.conn)
    return {"country_code": country, "methods": allowed}


@router.post("/payments", status_code=status.HTTP_201_CREATED, response_model=PaymentOut,
             responses={402: {"description": "declined or insufficient funds (problem details)"}})
async def pay(body: PayIn, idempotency_key: IdemKey = None, ctx: Ctx = allow("client", probe=service.PAY_PROBE)) -> Any:
    """Pay for a held booking. Honours Idempotency-Key (replay, 422 on a different body,
    409 while in flight); the same key is passed to the card processor."""
    idem = Idempotency(ctx, idempotency_key, body)
    if (replayed := await idem.replay()) is not None:
        return replayed
    outcome = await service.pay_booking(ctx, booking_id=body.booking_id, method=body.method,
                                        card_token=body.card_token, key=idempotency_key)
    return await _finish(ctx, idem, outcome.txn_id, outcome.outcome, outcome.client_secret, outcome.payment_url)


@router.post("/wallet/topups", status_code=status.HTTP_201_CREATED, response_model=PaymentOut,
             responses={402: {"description": "declined (problem details)"}})
async def top_up(body: TopUpIn, idempotency_key: IdemKey = None,
        ctx: Ctx = allow("client", probe=service.TOPUP_PROBE)) -> Any:
    idem = Idempotency(ctx, idempotency_key, body)
    if (replayed := await idem.replay()) is not None:
        return replayed
    outcome = await service.top_up(ctx, amount_minor=body.amount_minor, currency=body.currency,
                                   card_token=body.card_token, key=idempotency_key)
    return await _finish(ctx, idem, outcome.txn_id, outcome.outcome, outcome.client_secret)


@router.get("/wallet", response_model=WalletOut)
async def wallet(ctx: Ctx = allow("client", "reader", "monitor", "admin", "superadmin",
                                  probe=service.WALLET_PROBE)) -> dict[str, Any]:
    return await service.wallet(ctx.conn)


@router.put("/admin/payments/methods/{code}", response_model=MethodPolicyOut)
async def set_method(code: Literal["card", "square", "usdt", "bank_transfer", "wallet"], body: MethodPolicyIn,
                     ctx: Ctx = allow("admin", "superadmin", probe=admin.METHODS_PROBE)) -> dict[str, Any]:
    """Where a method is offered: everywhere, or in the listed countries. Audited."""
    return await admin.set_method_policy(ctx.conn, code, enabled=body.enabled, all_countries=body.all_countries,
                                         countries=body.countries)


PROOF_BODY = {"required": True, "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                            for t in ("image/png", "image/jpeg", "image/webp", "application/pdf")}}


@router.post("/payments/{payment_id}/proof", response_model=PaymentOut, openapi_extra={"requestBody": PROOF_BODY})
async def upload_proof(payment_id: Id, request: Request, ctx: Ctx = allow("client", probe=Probe(
        # what it rests on: owning a payment transaction, which only clients may create
        "insert into payment_transactions (user_id, provider, kind, amount_minor, currency) "
        "values (auth.uid(), 'bank_transfer', 'charge', 100, 'USD')"))) -> Any:
    """Proof of a bank transfer: an image or a PDF (sniffed from the bytes, capped by
    MAX_UPLOAD_BYTES), stored privately; it goes to the admins' approval queue."""
    media_id = await store_upload(ctx, await request.body(), kinds={"image", "pdf"}, prefix=f"proofs/{ctx.user_id}",
                                  purpose="payment_proof")
    await ctx.conn.execute("select app.attach_proof(%s, %s)", (payment_id, media_id))
    return await service.payment(ctx.conn, payment_id)


class TransferOut(PaymentOut):
    user_id: str


class DeclineIn(Input):
    reason: Annotated[str, Field(min_length=3, max_length=500)]


@router.get("/admin/payments/transfers", response_model=list[TransferOut])
async def transfer_queue(ctx: Ctx = allow("admin", "superadmin", probe=admin.TRANSFERS_PROBE)) -> list[dict[str, Any]]:
    """Bank transfers waiting for a decision, oldest first (those with proof first)."""
    return await admin.transfer_queue(ctx.conn)


@router.post("/admin/payments/{payment_id}/approve", response_model=PaymentOut)
async def approve_transfer(payment_id: Id, ctx: Ctx = allow("admin", "superadmin", probe=admin.TRANSFERS_PROBE)
                           ) -> Any:
    """The money arrived: settle it (ledger + booking confirmation). Audited with the admin.
    Once only: a transfer already decided answers 409 `already_decided`."""
    return await admin.approve_transfer(ctx, payment_id)


@router.post("/admin/payments/{payment_id}/decline", response_model=PaymentOut)
async def decline_transfer(payment_id: Id, body: DeclineIn,
                           ctx: Ctx = allow("admin", "superadmin", probe=admin.TRANSFERS_PROBE)) -> Any:
    """No (valid) transfer: fail it, release the booking's hold and tell the client why."""
    return await admin.decline_transfer(ctx, payment_id, body.reason)

"""Refunds when a booking is cancelled: the policy snapshot decides how much and where to;
money going back to the original method is refunded at the provider that took it (the key
makes a retry safe). Used by the cancel route and by the reader no-show job alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from samia.bookings.policy import Actor, Refund, evaluate_refund
from samia.core.ports import CardProcessor


async def refund_for_cancellation(processor_for: Callable[[str], CardProcessor], *, booking_id: int,
                                  policy: dict[str, Any], starts_at: dt.datetime, cancelled_at: dt.datetime,
                                  by: Actor, paid: int, provider: str, charge_ref: str | None,
                                  ) -> tuple[Refund, str | None]:
    """The refund for a paid booking and, when the provider had to do it, its reference."""
    refund = evaluate_refund(policy, price_minor=paid, starts_at=starts_at, cancelled_at=cancelled_at, by=by)
    if not refund.amount_minor or refund.destination != "original" or provider == "wallet":
        return refund, None
    ref = await processor_for(provider).refund(charge_ref=charge_ref or "", amount_minor=refund.amount_minor,
                                               idempotency_key=f"refund-booking-{booking_id}")
    return refund, ref

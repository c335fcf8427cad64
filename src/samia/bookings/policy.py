"""The booking policy, snapshotted on the booking at purchase, and the one pure function
that turns it into a refund. Later edits to a service's policy never reach past bookings:
only the snapshot is ever evaluated."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

Actor = Literal["client", "reader", "admin", "system"]


@dataclass(frozen=True)
class Refund:
    amount_minor: int
    destination: str   # "original" (the payment method) or "wallet"
    reason: str


def evaluate_refund(policy: dict[str, Any], *, price_minor: int, starts_at: dt.datetime,
                    cancelled_at: dt.datetime, by: Actor) -> Refund:
    """Refund for cancelling a confirmed booking.

    A reader, an admin or the system (reader no-show, outage) cancelling refunds in full.
    A client gets the percentage of the first curve step whose `hours_before` they meet,
    steps ordered from the most generous; past the start, nothing.
    """
    destination = policy.get("refund_to", "original")
    if by != "client":
        return Refund(price_minor, destination, f"cancelled by {by}: full refund")
    hours = (starts_at - cancelled_at).total_seconds() / 3600
    steps = sorted(policy.get("refund_curve", []), key=lambda s: -s["hours_before"])
    pct = next((s["refund_pct"] for s in steps if hours >= s["hours_before"]), 0)
    if hours < 0:
        pct = 0
    amount = price_minor * int(pct) // 100  # integer minor units, rounding down
    return Refund(amount, destination, f"{pct}% refund at {max(hours, 0):.1f} h before start")


def may_reschedule(policy: dict[str, Any], *, done: int, starts_at: dt.datetime, now: dt.datetime) -> str | None:
    """None when allowed, else why not."""
    rule = policy.get("reschedule", {})
    if done >= int(rule.get("max", 0)):
        return f"at most {rule.get('max', 0)} reschedule(s) for this booking"
    if (starts_at - now).total_seconds() < float(rule.get("notice_hours", 0)) * 3600:
        return f"reschedule at least {rule.get('notice_hours', 0)} h before the start"
    return None

"""The order workflow as one table: (from, to) → the app roles that may make the move.
Migration 020 holds the same table for the database's trigger; a test keeps them equal."""

from __future__ import annotations

from samia.core.access import ADMINS, STAFF

TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("new", "assigned"): ADMINS,
    ("new", "cancelled"): ("client", *ADMINS),
    ("assigned", "in_progress"): ("reader",),
    ("assigned", "cancelled"): ("client", *ADMINS),
    ("in_progress", "awaiting_approval"): ("reader",),
    ("in_progress", "assigned"): ADMINS,           # reassigned mid-production
    ("awaiting_approval", "approved"): STAFF,
    ("awaiting_approval", "rejected"): STAFF,
    ("rejected", "in_progress"): ("reader",),       # back to work after a rejection
    ("rejected", "assigned"): ADMINS,
    ("approved", "delivered"): STAFF,
    ("delivered", "archived"): ("client", *ADMINS),
    ("cancelled", "archived"): ADMINS,
}


def sources(to: str) -> list[str]:
    """The statuses an order may be in to move to `to`."""
    return [a for (a, b) in TRANSITIONS if b == to]

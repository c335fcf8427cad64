"""The catalogue of analytics event types: the Python mirror of `public.event_types` (seeded by
migrations/005_analytics.sql; a test holds the two equal).

Each type has a schema version and the event columns its schema carries (`dims`); the emitter
(app.analytics_emit) keeps only those. `domain` decides who may see the figures it feeds
(app.metrics_visible). `reserved` types are named so that other work can start emitting them:
the notifications (sent/delivered/opened/clicked) and the horoscope listens.

Adding a type: a new migration inserts its row (and any new code into event_codes), this tuple
gets the same entry, and its emitter calls app.analytics_emit() from an AFTER trigger (or the
function that makes the fact) in the owning domain's schema file. Changing what a type carries
bumps its version in the same way; rows keep the version they were written with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BEIRUT = "Asia/Beirut"   # the business day: every `day` and every date parameter is a date there

Domain = Literal["fulfillment", "payments", "bookings", "calls", "content", "operations", "engagement"]

# The columns of events_raw an event may carry: ids, numbers, times, flags and codes only.
DIMS = ("user_id", "reader_id", "subject_id", "service_id", "country", "provider", "kind", "code", "reason",
        "is_gold", "attempt", "seconds", "amount_minor", "currency", "device")


@dataclass(frozen=True)
class EventType:
    code: str
    version: int
    domain: Domain
    dims: tuple[str, ...]
    counts_active: bool = False
    status: Literal["active", "reserved"] = "active"


def _t(code: str, domain: Domain, dims: str, *, active: bool = False, reserved: bool = False) -> EventType:
    return EventType(code, 1, domain, tuple(dims.split()), active, "reserved" if reserved else "active")


CATALOGUE: tuple[EventType, ...] = (
    _t("order.created", "fulfillment", "user_id subject_id service_id country is_gold amount_minor currency",
       active=True),
    _t("order.assigned", "fulfillment", "user_id reader_id subject_id service_id is_gold"),
    _t("order.first_response", "fulfillment", "user_id reader_id subject_id service_id is_gold seconds"),
    _t("order.submitted", "fulfillment", "reader_id subject_id service_id is_gold"),
    _t("order.approved", "fulfillment", "user_id reader_id subject_id service_id is_gold seconds"),
    _t("order.rejected", "fulfillment", "user_id reader_id subject_id service_id is_gold seconds"),
    _t("order.delivered", "fulfillment", "user_id reader_id subject_id service_id is_gold seconds"),
    _t("order.cancelled", "fulfillment", "user_id reader_id subject_id service_id is_gold"),
    _t("order.clock_breached", "fulfillment", "reader_id subject_id service_id is_gold code"),
    _t("payment.attempted", "payments", "user_id subject_id provider kind country attempt amount_minor currency",
       active=True),
    _t("payment.action_required", "payments", "user_id subject_id provider kind country attempt"),
    _t("payment.succeeded", "payments",
       "user_id subject_id provider kind country attempt seconds amount_minor currency"),
    _t("payment.failed", "payments", "user_id subject_id provider kind country attempt seconds"),
    _t("payment.fallback", "payments", "user_id subject_id provider kind country reason"),
    _t("payment.refunded", "payments", "user_id subject_id provider kind country code reason amount_minor currency"),
    _t("booking.held", "bookings", "user_id reader_id subject_id service_id country amount_minor currency",
       active=True),
    _t("booking.confirmed", "bookings", "user_id reader_id subject_id service_id seconds"),
    _t("booking.rescheduled", "bookings", "user_id reader_id subject_id service_id"),
    _t("booking.cancelled", "bookings", "user_id reader_id subject_id service_id"),
    _t("booking.released", "bookings", "user_id reader_id subject_id service_id"),
    _t("booking.expired", "bookings", "user_id reader_id subject_id service_id"),
    _t("booking.completed", "bookings", "user_id reader_id subject_id service_id"),
    _t("call.created", "calls", "user_id reader_id subject_id kind country", active=True),
    _t("call.answered", "calls", "user_id reader_id subject_id kind seconds"),
    _t("call.ended", "calls", "user_id reader_id subject_id kind reason seconds"),
    _t("call.unanswered", "calls", "user_id reader_id subject_id kind reason"),
    _t("moderation.decision", "content", "reader_id subject_id kind code reason"),
    _t("case.opened", "content", "subject_id kind code reason"),
    _t("case.closed", "content", "subject_id kind code reason seconds"),
    _t("incident.opened", "operations", "subject_id kind code"),
    _t("incident.acknowledged", "operations", "subject_id code seconds"),
    _t("incident.mitigated", "operations", "subject_id code seconds"),
    _t("incident.resolved", "operations", "subject_id code reason seconds"),
    _t("user.signed_up", "engagement", "user_id country kind"),
    _t("user.logged_in", "engagement", "user_id country device", active=True),
    _t("notification.sent", "engagement", "user_id subject_id provider", reserved=True),
    _t("notification.delivered", "engagement", "user_id subject_id provider", reserved=True),
    _t("notification.opened", "engagement", "user_id subject_id provider device", active=True, reserved=True),
    _t("notification.clicked", "engagement", "user_id subject_id provider device", active=True, reserved=True),
    _t("horoscope.listen_started", "engagement", "user_id subject_id device", active=True, reserved=True),
    _t("horoscope.listen_finished", "engagement", "user_id subject_id device seconds", reserved=True),
)

BY_CODE = {t.code: t for t in CATALOGUE}

# End reasons of a connected call that count as a drop: the reader or a monitor cut it, or it
# failed (the same reasons the moderation sweep `call_drop_rate` counts, plus failures).
DROP_REASONS = ("dropped_by_reader", "dropped_by_monitor", "failed")

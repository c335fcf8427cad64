"""The shapes of the analytics answers (the OpenAPI contract the staff consoles read).

Counts are events in the range; rates are 0-1 to 4 places, null when there is nothing to
divide by; durations are whole seconds (`_s`), percentiles observed values."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from samia.core.models import Input

Rate = float | None
Secs = int | None


class Figures(BaseModel):
    """What every answer states: its days' zone, its range, the last day rolled up."""
    timezone: Literal["Asia/Beirut"] = Field(description="every day here is a date in this zone")
    from_: dt.date = Field(alias="from", description="first day, inclusive")
    to: dt.date = Field(description="last day, inclusive")
    reader_id: str | None = Field(description="the reader the figures are narrowed to")
    complete_through: dt.date | None = Field(description="the last day the nightly roll-up covers; later days read 0")


class ServiceTimes(BaseModel):
    service: str
    golden: bool
    first_responses: int
    first_response_p50_s: Secs
    first_response_p90_s: Secs
    deliveries: int
    delivery_p50_s: Secs
    delivery_p90_s: Secs


class ClockBreaches(BaseModel):
    delivery: int = Field(description="the reader's delivery clock ran out")
    review: int = Field(description="the monitors' review clock ran out")


class Fulfillment(Figures):
    orders_created: int | None = Field(description="null at a reader's scope (an order has no reader yet)")
    orders_assigned: int
    orders_delivered: int
    orders_cancelled: int
    approved: int
    rejected: int
    approval_rate: Rate
    refunds: int | None = Field(description="order refunds (admins only)")
    refund_rate: Rate = Field(description="order refunds ÷ orders placed")
    clock_breaches: ClockBreaches
    by_service: list[ServiceTimes] = Field(description="time to first response (placed → a reader starts) and "
                                                       "to delivery (placed → delivered)")


class PaymentFigures(BaseModel):
    attempts: int = Field(description="charges and top-ups started (the method chosen)")
    first_pass_attempts: int = Field(description="attempts with no failure of the payer in the 30 minutes before")
    action_required: int
    succeeded: int
    failed: int
    fallbacks: int = Field(description="retries with another method than the one that failed")
    refunded: int = Field(description="refunds of charges made with this method")
    success_rate: Rate = Field(description="succeeded ÷ (succeeded + failed)")
    first_pass_success_rate: Rate
    fallback_rate: Rate = Field(description="fallbacks ÷ attempts")


class ProviderPayments(PaymentFigures):
    provider: str


class ProviderCountryPayments(ProviderPayments):
    country: str | None = Field(description="the payer's country")


class Payments(Figures, PaymentFigures):
    by_provider: list[ProviderPayments]
    by_provider_country: list[ProviderCountryPayments]


class CallFigures(BaseModel):
    created: int
    answered: int
    unanswered: int
    ended: int = Field(description="connected calls that ended")
    dropped: int = Field(description="connected calls ended by the reader, a monitor or a failure")
    answer_rate: Rate = Field(description="answered ÷ created")
    drop_rate: Rate = Field(description="dropped ÷ ended")
    setup_p50_s: Secs = Field(description="created → connected")
    setup_p90_s: Secs
    duration_p50_s: Secs = Field(description="connected time")
    duration_mean_s: Secs


class KindCalls(CallFigures):
    kind: str


class Calls(Figures, CallFigures):
    drop_reasons: list[str]
    ended_by_reason: dict[str, int]
    by_kind: list[KindCalls]


class Content(Figures):
    decisions: int = Field(description="moderation acts")
    by_action: dict[str, int]
    audio_approved: int
    audio_rejected: int
    approval_rate: Rate = Field(description="readings' audio approved ÷ reviewed")
    reject_reasons: dict[str, int] = Field(description="by reason code; a rejection note is never a code: "
                                                       "'unspecified'")
    cases_opened: int
    cases_by_source: dict[str, int]
    cases_by_reason: dict[str, int]
    cases_closed: int
    cases_by_outcome: dict[str, int]
    resolution_p50_s: Secs
    resolution_p90_s: Secs
    resolution_mean_s: Secs


class DailyActive(BaseModel):
    day: dt.date
    dau: int


class Cohort(BaseModel):
    cohort_week: dt.date = Field(description="the Monday of the week of the users' first activity")
    users: int
    retention: list[Rate] = Field(description="share of the cohort active in week 0, 1, 2 … after")


class Engagement(Figures):
    dau: int = Field(description="active on the last day")
    wau: int = Field(description="active in the 7 days ending on the last day")
    mau: int = Field(description="active in the 30 days ending on the last day")
    daily_active: list[DailyActive]
    signups: int
    signups_by_role: dict[str, int]
    logins: int
    cohorts: list[Cohort]
    notifications: dict[str, int]
    notification_ctr: Rate = Field(description="clicked ÷ delivered (else ÷ sent); null until notification "
                                               "events exist")
    listens: dict[str, int]
    listen_through: Rate = Field(description="horoscope listens finished ÷ started; null until they exist")
    notes: dict[str, str] = Field(description="why a figure is null")


class Operations(Figures):
    incidents_opened: int
    incidents_by_severity: dict[str, int]
    acknowledged: int
    mitigated: int
    resolved: int
    mtta_s: Secs = Field(description="mean opened → first acknowledgement")
    mttr_s: Secs = Field(description="mean opened → mitigated (or → resolved when never mitigated)")
    time_to_resolve_s: Secs
    bookings: int
    double_booked: int = Field(description="bookings overlapping another booking of the same reader")
    double_booking_rate: float = Field(description="must read 0: the capacity ledger's exclusion constraint")
    active_overlaps: int = Field(description="overlaps among the ledger's active rows now; must read 0")


class FulfillmentHeadline(BaseModel):
    orders_created: int | None
    orders_delivered: int
    approval_rate: Rate
    refund_rate: Rate
    first_response_p50_s: Secs
    delivery_p50_s: Secs
    clock_breaches: int


class PaymentsHeadline(BaseModel):
    attempts: int
    succeeded: int
    failed: int
    success_rate: Rate
    first_pass_success_rate: Rate
    fallback_rate: Rate


class CallsHeadline(BaseModel):
    created: int
    answered: int
    answer_rate: Rate
    dropped: int
    drop_rate: Rate
    setup_p50_s: Secs


class ContentHeadline(BaseModel):
    decisions: int
    approval_rate: Rate
    cases_opened: int
    cases_closed: int
    resolution_p50_s: Secs


class EngagementHeadline(BaseModel):
    dau: int
    wau: int
    mau: int
    signups: int
    logins: int
    notification_ctr: Rate
    listen_through: Rate


class OperationsHeadline(BaseModel):
    incidents_opened: int
    mtta_s: Secs
    mttr_s: Secs
    double_booking_rate: float
    active_overlaps: int


class Overview(Figures):
    """One day's headlines; null: a section the caller may not see."""
    fulfillment: FulfillmentHeadline | None
    payments: PaymentsHeadline | None
    calls: CallsHeadline | None
    content: ContentHeadline | None
    engagement: EngagementHeadline | None
    operations: OperationsHeadline | None


class FunnelStages(BaseModel):
    chosen: int = Field(description="charges started with the method")
    action_required: int = Field(description="the payer had to act (3-D Secure, a transfer, an invoice)")
    succeeded: int
    failed: int
    refunded: int = Field(description="refunds of charges made with the method")
    success_rate: Rate


class FunnelMethod(FunnelStages):
    method: str


class PaymentsFunnel(Figures):
    checkouts: int = Field(description="slots held: the step before a method is chosen")
    stages: list[str]
    total: FunnelStages
    methods: list[FunnelMethod]


class UtilisationRow(BaseModel):
    reader_id: str
    week: dt.date = Field(description="Monday; the week runs from 00:00 Asia/Beirut")
    available_minutes: int
    booked_minutes: int
    utilisation: Rate = Field(description="booked ÷ available")


class ReaderUtilisation(Figures):
    weeks_start: str
    rows: list[UtilisationRow]


class Arm(BaseModel):
    kind: str
    variant: Literal["personalised", "control", "opted_out"]
    decisions: int
    users: int
    conversions: int = Field(description="decisions followed within 7 days by use of one of their first 3 items")
    mean_confidence: float | None
    conversion_rate: Rate


class PersonalizationMetrics(Figures):
    personalised_pct: dict[str, int] = Field(description="per kind: the share of users in the personalised arm")
    arms: list[Arm]
    lift: dict[str, Rate] = Field(description="personalised conversion rate ÷ control's")


# ---- personalization -----------------------------------------------------------------------

class RecommendIn(Input):
    user_id: uuid.UUID
    kind: Literal["readers", "services", "horoscopes", "notifications"] = "readers"
    device: Literal["web", "ios", "android", "api"] | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 10


class RankedItem(BaseModel):
    id: str = Field(description="a reader (uuid), service, horoscope id, or a notification campaign code")
    rank: int


class Recommendation(BaseModel):
    decision_id: int
    user_id: str
    kind: str
    variant: Literal["personalised", "control", "opted_out"]
    items: list[RankedItem]


class PersonalisedIn(Input):
    personalised: bool


class PersonalisedOut(BaseModel):
    personalised: bool = Field(description="false: rankings use the non-personalised order for you")

"""Incidents and on-call (seeds 000 M32): declare, follow the timeline, acknowledge pages,
change status; Alertmanager's webhook opens and updates incidents; the rota decides who is
paged, and unacknowledged pages climb Monitor → Admin → Super Admin (the job engine).
Also the cost guards' views (M29): provider usage against monthly budgets, and one health
overview for admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, field_validator

from samia.core.access import (
    ADMIN_PROBE,
    ADMINS,
    APP_ROLES,
    PUBLIC,
    STAFF,
    STAFF_PROBE,
    Ctx,
    Probe,
    acting_as,
    allow,
    machine_token,
)
from samia.core.models import Id, Input
from samia.core.problems import AppError, not_found
from samia.notifications import prefs

router = APIRouter(tags=["ops"])

Severity = Literal["SEV1", "SEV2", "SEV3"]
RUNBOOK = {"SEV1": "/admin/runbooks/incident-sev1", "SEV2": "/admin/runbooks/incident-sev2",
           "SEV3": "/admin/runbooks/incident-sev3"}


class DeclareIn(Input):
    title: Annotated[str, Field(min_length=3, max_length=200)]
    severity: Severity
    note: Annotated[str, Field(max_length=2000)] | None = None
    runbooks: list[Annotated[str, Field(pattern=r"^/admin/runbooks/[a-z0-9-]{1,60}$")]] = Field(
        default_factory=list, max_length=10)


class StatusIn(Input):
    status: Literal["open", "mitigated", "resolved"]
    note: Annotated[str, Field(max_length=2000)] | None = None


class RotaIn(Input):
    level: Annotated[int, Field(ge=1, le=3, description="1 monitor, 2 admin, 3 super admin")]
    user_id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]
    starts_at: dt.datetime
    ends_at: dt.datetime


class QuietIn(Input):
    starts: dt.time
    ends: dt.time
    tz: Annotated[str, Field(max_length=64)]

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        return prefs.known_zone(v)


class Alert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    fingerprint: str | None = None
    startsAt: str | None = None


class AlertmanagerIn(BaseModel):
    """Alertmanager's webhook payload (version 4)."""
    version: str
    status: Literal["firing", "resolved"]
    groupKey: str
    alerts: list[Alert] = Field(max_length=500)


class BudgetIn(Input):
    monthly_calls: Annotated[int, Field(ge=1, le=10**12)]
    alert_pct: Annotated[int, Field(ge=1, le=100)] = 80
    degrade: bool = True


INCIDENT_COLS = sql.SQL("id, title, severity, status, source, runbooks, level, declared_by::text, created_at, "
                        "mitigated_at, resolved_at")


async def _incident(ctx: Ctx, incident_id: int) -> dict[str, Any]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from incidents where id = %s").format(INCIDENT_COLS), (incident_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("incident")
    await cur.execute("select kind, level, note, actor::text, at from incident_events where incident_id = %s "
                      "order by at, id", (incident_id,))
    row["timeline"] = await cur.fetchall()
    await cur.execute("select id, level, user_id::text, paged_at, send_after, acked_at from incident_pages "
                      "where incident_id = %s order by id", (incident_id,))
    row["pages"] = await cur.fetchall()
    return row


@router.post("/admin/incident/declare", status_code=status.HTTP_201_CREATED)
async def declare(body: DeclareIn, ctx: Ctx = allow(*ADMINS, probe=Probe(
        "select app.incident_declare('probe', 'SEV3', '{}', null)"))) -> dict[str, Any]:
    """Declare an incident: its severity's runbook is linked and the on-call monitor paged."""
    runbooks = sorted({RUNBOOK[body.severity], *body.runbooks})
    cur = await ctx.conn.execute("select app.incident_declare(%s, %s, %s, %s)",
                                 (body.title, body.severity, runbooks, body.note))
    return await _incident(ctx, (await cur.fetchone())[0])  # type: ignore[index]


@router.get("/admin/incidents")
async def incidents(ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE),
                    status_: Annotated[Literal["open", "mitigated", "resolved"] | None,
                                       Query(alias="status")] = None) -> list[dict[str, Any]]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from incidents where %s::text is null or status = %s "
                              "order by (status = 'resolved'), severity, created_at desc limit 100"
                              ).format(INCIDENT_COLS), (status_, status_))
    return await cur.fetchall()


@router.get("/admin/incidents/{incident_id}")
async def incident(incident_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """The incident with its timeline and pages."""
    return await _incident(ctx, incident_id)


@router.post("/admin/incidents/{incident_id}/ack")
async def ack(incident_id: Id, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    """Acknowledge your page: the escalation stops."""
    await ctx.conn.execute("select app.incident_ack(%s)", (incident_id,))
    return await _incident(ctx, incident_id)


@router.post("/admin/incidents/{incident_id}/status")
async def set_status(incident_id: Id, body: StatusIn, ctx: Ctx = allow(*STAFF, probe=STAFF_PROBE)) -> dict[str, Any]:
    await ctx.conn.execute("select app.incident_status(%s, %s, %s)", (incident_id, body.status, body.note))
    return await _incident(ctx, incident_id)


@router.post("/admin/oncall", status_code=status.HTTP_201_CREATED)
async def add_rota(body: RotaIn, ctx: Ctx = allow(*ADMINS, probe=Probe(
        "insert into oncall_rota (level, user_id, during) values (1, auth.uid(), tstzrange(now(), now() + '1h'))"))
        ) -> dict[str, Any]:
    if body.ends_at <= body.starts_at:
        raise AppError(422, "validation_error", "ends_at must be after starts_at")
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("insert into oncall_rota (level, user_id, during) values (%s, %s, tstzrange(%s, %s)) "
                      "returning id, level, user_id::text, lower(during) as starts_at, upper(during) as ends_at",
                      (body.level, body.user_id, body.starts_at, body.ends_at))
    row = await cur.fetchone()
    assert row is not None
    return row


@router.put("/me/quiet-hours")
async def quiet_hours(body: QuietIn, ctx: Ctx = allow(*APP_ROLES, probe=Probe(
        "insert into quiet_hours (user_id, starts, ends, tz) values (auth.uid(), '22:00', '07:00', 'UTC')"))
        ) -> dict[str, Any]:
    """Every user's quiet hours, in their own time zone: SEV3 pages and ordinary messages wait
    for the end of the window (sirens, SEV1 and SEV2 pages and security codes do not)."""
    await prefs.set_quiet_hours(ctx.conn, body.starts, body.ends, body.tz)
    return body.model_dump(mode="json")


@router.post("/webhooks/alertmanager", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def alertmanager(body: AlertmanagerIn, authorization: str | None = Header(None),
                       ctx: Ctx = allow(PUBLIC, readonly=False, bearer=False)) -> Response:
    """Alertmanager's receiver (`webhook_configs` with `http_config.authorization`): firing
    alerts open or update an incident (keyed by fingerprint), resolved ones mitigate it."""
    machine_token(authorization, ctx.platform.settings.alertmanager_token, "ALERTMANAGER_TOKEN")
    async with acting_as(ctx, "samia_alerts"):
        for alert in body.alerts:
            labels = alert.labels
            severity = {"critical": "SEV1", "page": "SEV2"}.get(labels.get("severity", ""), "SEV3")
            title = (alert.annotations.get("summary") or labels.get("alertname", "alert"))[:200]
            key = "alert:" + (alert.fingerprint or body.groupKey)[:200]
            runbook = alert.annotations.get("runbook_url")
            runbooks = sorted({RUNBOOK[severity], *([runbook] if runbook else [])})
            await ctx.conn.execute("select app.incident_alert(%s, %s, %s, %s, %s, %s)",
                                   (alert.status, title, severity, key, runbooks,
                                    f"{labels.get('alertname', '')} {alert.status}"))
    return Response(status_code=204)


# ---- cost guards (M29) --------------------------------------------------------------------------

@router.get("/admin/budget")
async def budget(ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> list[dict[str, Any]]:
    """This month's calls per provider against its budget; over budget with degrade on, the
    provider answers 503 `budget_exhausted` until the month turns or the budget is raised."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select p.provider, coalesce(u.calls, 0) as calls, coalesce(u.failures, 0) as failures, b.monthly_calls,
               b.alert_pct, coalesce(b.degrade, false) as degrade,
               case when b.monthly_calls is null then null
                    else round(100.0 * coalesce(u.calls, 0) / b.monthly_calls, 1) end as used_pct,
               app.provider_within_budget(p.provider) as within_budget
          from (select provider from provider_toggles union select provider from provider_budgets
                union select provider from provider_usage) p
          left join provider_budgets b on b.provider = p.provider
          left join provider_usage u on u.provider = p.provider and u.month = date_trunc('month', now())::date
         order by p.provider""")
    return await cur.fetchall()


@router.put("/admin/budget/{provider}")
async def set_budget(provider: Annotated[str, Field(pattern=r"^[a-z_]{2,20}$")], body: BudgetIn,
                     ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> dict[str, Any]:
    await ctx.conn.execute("insert into provider_budgets (provider, monthly_calls, alert_pct, degrade) "
                           "values (%s, %s, %s, %s) on conflict (provider) do update set "
                           "monthly_calls = excluded.monthly_calls, alert_pct = excluded.alert_pct, "
                           "degrade = excluded.degrade, updated_at = now()",
                           (provider, body.monthly_calls, body.alert_pct, body.degrade))
    await ctx.conn.execute("select app.audit('provider.budget', 'provider', %s, %s::jsonb)",
                           (provider, body.model_dump_json()))
    return {"provider": provider, **body.model_dump()}


@router.get("/admin/health/overview")
async def overview(ctx: Ctx = allow(*ADMINS, probe=ADMIN_PROBE)) -> dict[str, Any]:
    """One page for the admin on duty: database, job queue, providers (switch, breaker,
    budget), SLO status, open incidents and sirens, audit sealing lag."""
    from samia.ops import slo

    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select status, jobs, oldest_seconds from app.queue_stats()")
    queue = await cur.fetchall()
    await cur.execute("select provider, enabled from provider_toggles order by provider")
    toggles = {r["provider"]: r["enabled"] for r in await cur.fetchall()}
    await cur.execute("select severity, count(*) as n from incidents where status = 'open' group by severity")
    open_incidents = {r["severity"]: r["n"] for r in await cur.fetchall()}
    await cur.execute("select count(*) as n from emergency_requests where status = 'ringing'")
    sirens = (await cur.fetchone())["n"]  # type: ignore[index]
    await cur.execute("select count(*) as n, extract(epoch from now() - min(created_at)) as oldest "
                      "from audit_log where row_hash is null")
    unsealed = await cur.fetchone()
    providers = [{"provider": p, "enabled": on,
                  "breaker": (b.state if (b := ctx.platform.breakers.get(p)) else "closed")}
                 for p, on in toggles.items()]
    slos = slo.status(ctx.platform.metrics.registry)
    worst = "ok"
    if open_incidents.get("SEV1") or sirens or any(s["status"] == "exhausted" for s in slos):
        worst = "critical"
    elif open_incidents or any(p["breaker"] != "closed" or not p["enabled"] for p in providers):
        worst = "degraded"
    return {"status": worst, "database": "ok", "queue": queue, "providers": providers, "slos": slos,
            "open_incidents": open_incidents, "sirens_ringing": sirens,
            "audit_unsealed": {"rows": unsealed["n"], "oldest_seconds": unsealed["oldest"]}}  # type: ignore[index]
